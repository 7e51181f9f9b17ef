"""Tests for the weight registry, the downloader (against a local HTTP server) and the loader."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from semparts_reid import _download, hub
from semparts_reid.errors import InputError
from semparts_reid.hub import (
    ChecksumError,
    DownloadError,
    PretrainedCfg,
    WeightsMismatchError,
    download_weights,
    get_pretrained_cfg,
    list_pretrained,
    load_pretrained,
    register_pretrained,
)

PAYLOAD = bytes(range(256)) * 1600  # 409600 bytes: several network blocks
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Server:
    """A tiny HTTP server with Range support and switchable failure modes."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_next: int = 0  # cut the next N GET responses half-way
        # while set, every answer waits for ``release`` (at most ``hold_limit`` seconds)
        self.hold = False
        self.release = threading.Event()
        self.hold_limit = 30.0
        self.ignore_range = False
        self.requests: list[dict[str, Any]] = []
        self._received = threading.Condition()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:  # noqa: N802
                with server._received:
                    server.requests.append(
                        {"path": self.path, "range": self.headers.get("Range")}
                    )
                    server._received.notify_all()
                if server.hold:
                    server.release.wait(server.hold_limit)
                data = server.files.get(self.path)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                match = re.match(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if match and not server.ignore_range:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if server.cut_next > 0:
                    server.cut_next -= 1
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def wait_for_requests(self, n: int, timeout: float = 30.0) -> int:
        """Wait until ``n`` requests have arrived (or ``timeout``); return how many did."""
        with self._received:
            self._received.wait_for(lambda: len(self.requests) >= n, timeout)
            return len(self.requests)


@pytest.fixture()
def server() -> Iterator[_Server]:
    srv = _Server()
    srv.thread.start()
    yield srv
    srv.release.set()  # let any held answer finish
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(hub.ENV_HOME, str(tmp_path / "home"))
    monkeypatch.delenv(hub.ENV_OFFLINE, raising=False)


FAST = {"progress": False, "timeout": 2.0, "retries": 2, "backoff": 0.01}


# ----------------------------------------------------------------------------- registry


def test_registry_has_torchvision_resnets() -> None:
    names = list_pretrained(kind="backbone")
    assert {"resnet18.tv_in1k", "resnet34.tv_in1k", "resnet50.tv_in1k"} <= set(names)
    cfg = get_pretrained_cfg("resnet50.tv_in1k")
    assert cfg.url == "https://download.pytorch.org/models/resnet50-0676ba61.pth"
    assert cfg.sha256 == "0676ba61" and cfg.filename == "resnet50-0676ba61.pth"
    assert get_pretrained_cfg("resnet18.tv_in1k").sha256 == "f37072fd"
    assert get_pretrained_cfg("resnet34.tv_in1k").sha256 == "b627a593"
    for name in names:
        cfg = get_pretrained_cfg(name)
        assert cfg.url.endswith(f"-{cfg.sha256}.pth")
        assert cfg.licence and cfg.data_config["mean"] == hub.IMAGENET_MEAN
    with pytest.raises(KeyError, match="resnet18.tv_in1k"):
        get_pretrained_cfg("nope")
    with pytest.raises(ValueError, match="kind"):
        list_pretrained(kind="weird")


def test_imagenet_resolves_by_arch() -> None:
    assert hub.resolve_pretrained_name("imagenet", "semparts_resnet50") == "resnet50.tv_in1k"
    assert hub.resolve_pretrained_name("imagenet", "semparts_resnet18") == "resnet18.tv_in1k"
    assert hub.resolve_pretrained_name("./x.pth", "semparts_resnet18") is None
    with pytest.raises(ValueError, match="arch"):
        hub.resolve_pretrained_name("imagenet", "vit_b16")


def test_register_needs_full_sha_for_reid() -> None:
    cfg = PretrainedCfg("t.reid", "http://x/y.pth", "abcdef12", "semparts_resnet18", "reid",
                        {}, "MIT")
    with pytest.raises(ValueError, match="full 64-digit"):
        register_pretrained(cfg)
    with pytest.raises(ValueError, match="already registered"):
        register_pretrained(get_pretrained_cfg("resnet18.tv_in1k"))


# ----------------------------------------------------------------------------- download


def test_download_success_and_cache_hit(server: _Server, tmp_path: Path) -> None:
    server.files["/w/model.pth"] = PAYLOAD
    path = download_weights(server.url("/w/model.pth"), sha256=PAYLOAD_SHA, **FAST)
    assert path == tmp_path / "home" / "weights" / "model.pth"
    assert path.read_bytes() == PAYLOAD
    assert [p.name for p in path.parent.iterdir()] == ["model.pth"]  # no temp files left
    n = len(server.requests)
    assert download_weights(server.url("/w/model.pth"), sha256=PAYLOAD_SHA, **FAST) == path
    assert len(server.requests) == n  # served from the cache


def test_hash_prefix_in_file_name_is_verified(server: _Server, tmp_path: Path) -> None:
    good, bad = f"/m-{PAYLOAD_SHA[:8]}.pth", "/m-deadbeef.pth"
    server.files[good] = server.files[bad] = PAYLOAD
    cache = tmp_path / "c"
    assert download_weights(server.url(good), cache_dir=cache, **FAST).read_bytes() == PAYLOAD
    with pytest.raises(ChecksumError, match="deadbeef"):
        download_weights(server.url(bad), cache_dir=cache, **FAST)


def test_checksum_mismatch_leaves_nothing(server: _Server, tmp_path: Path) -> None:
    server.files["/model.pth"] = PAYLOAD
    wrong = "0" * 64
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError) as info:
        download_weights(server.url("/model.pth"), sha256=wrong, cache_dir=cache, **FAST)
    assert wrong in str(info.value) and PAYLOAD_SHA in str(info.value)
    assert list(cache.iterdir()) == []


def test_cut_transfer_is_resumed_with_range(server: _Server, tmp_path: Path) -> None:
    server.files["/big.pth"] = PAYLOAD
    server.cut_next = 1
    path = download_weights(server.url("/big.pth"), sha256=PAYLOAD_SHA, cache_dir=tmp_path,
                            **FAST)
    assert path.read_bytes() == PAYLOAD
    ranges = [r["range"] for r in server.requests]
    assert ranges[0] is None and len(ranges) == 2
    resumed_at = int(re.match(r"bytes=(\d+)-$", ranges[1]).group(1))  # type: ignore[union-attr]
    assert 0 < resumed_at <= len(PAYLOAD) // 2  # at most the cut point (whole blocks kept)


def test_partial_from_an_earlier_call_is_resumed(server: _Server, tmp_path: Path) -> None:
    server.files["/big.pth"] = PAYLOAD
    server.cut_next = 10  # every attempt is cut: the call fails but keeps the partial
    with pytest.raises(DownloadError, match="partial file"):
        download_weights(server.url("/big.pth"), cache_dir=tmp_path,
                         **{**FAST, "retries": 0})
    partial = tmp_path / "big.pth.partial"
    kept = partial.stat().st_size
    assert 0 < kept <= len(PAYLOAD) // 2
    server.cut_next = 0
    path = download_weights(server.url("/big.pth"), sha256=PAYLOAD_SHA, cache_dir=tmp_path,
                            **FAST)
    assert path.read_bytes() == PAYLOAD and not partial.exists()
    assert server.requests[-1]["range"] == f"bytes={kept}-"


def test_server_ignoring_range_restarts_cleanly(server: _Server, tmp_path: Path) -> None:
    server.files["/big.pth"] = PAYLOAD
    server.ignore_range = True
    (tmp_path / "big.pth.partial").write_bytes(b"garbage")
    path = download_weights(server.url("/big.pth"), sha256=PAYLOAD_SHA, cache_dir=tmp_path,
                            **FAST)
    assert path.read_bytes() == PAYLOAD


def test_concurrent_downloads_fetch_once(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.files["/shared.pth"] = PAYLOAD
    n_clients = 3
    # The server holds its answer until every client has found the cache empty and gone
    # for the download lock, so the lock (not timing) is what makes them download once.
    server.hold = True
    at_lock = threading.Semaphore(0)
    real_lock = _download._file_lock

    @contextlib.contextmanager
    def counted_lock(path: Path) -> Iterator[None]:
        at_lock.release()
        with real_lock(path):
            yield

    monkeypatch.setattr(_download, "_file_lock", counted_lock)
    results: list[Path] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(download_weights(server.url("/shared.pth"), sha256=PAYLOAD_SHA,
                                            cache_dir=tmp_path, **{**FAST, "timeout": 60.0}))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(n_clients)]
    for t in threads:
        t.start()
    for _ in range(n_clients):
        assert at_lock.acquire(timeout=30), "a client never reached the download lock"
    assert server.wait_for_requests(1) == 1
    server.release.set()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert not errors and len(results) == n_clients and len(set(results)) == 1
    assert results[0].read_bytes() == PAYLOAD
    assert len(server.requests) == 1  # the waiters found the file in the cache
    assert [p.name for p in tmp_path.iterdir()] == ["shared.pth"]  # no lock or partial left


def test_404_fails_fast(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="404"):
        download_weights(server.url("/missing.pth"), cache_dir=tmp_path, **FAST)
    assert len(server.requests) == 1  # a 404 is not retried


def test_timeout_is_bounded(server: _Server, tmp_path: Path) -> None:
    server.files["/slow.pth"] = PAYLOAD
    server.hold = True  # the server answers only after hold_limit (30 s), or at teardown
    with pytest.raises(DownloadError, match="2 attempts"):
        download_weights(server.url("/slow.pth"), cache_dir=tmp_path, progress=False,
                         timeout=0.2, retries=1, backoff=0.01)
    # the client gave up on both attempts instead of waiting for the held answer, which
    # would have made the download succeed
    assert server.wait_for_requests(2) == 2
    assert [r["range"] for r in server.requests] == [None, None]  # nothing was received
    assert not (tmp_path / "slow.pth").exists()


def test_offline_uses_only_cache(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.files["/model.pth"] = PAYLOAD
    url = server.url("/model.pth")
    monkeypatch.setenv(hub.ENV_OFFLINE, "1")
    with pytest.raises(DownloadError, match="SEMPARTS_REID_OFFLINE"):
        download_weights(url, cache_dir=tmp_path, **FAST)
    assert server.requests == []
    monkeypatch.delenv(hub.ENV_OFFLINE)
    path = download_weights(url, cache_dir=tmp_path, **FAST)
    monkeypatch.setenv(hub.ENV_OFFLINE, "1")
    server.httpd.shutdown()
    assert download_weights(url, cache_dir=tmp_path, **FAST) == path


def test_local_paths_and_unknown_sources(tmp_path: Path) -> None:
    f = tmp_path / "w.pth"
    f.write_bytes(PAYLOAD)
    assert download_weights(f, sha256=PAYLOAD_SHA) == f
    with pytest.raises(ChecksumError):
        download_weights(f, sha256="abcdef")
    assert f.exists()  # a user's own file is never deleted
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        download_weights(tmp_path / "nope.pth")
    with pytest.raises(ValueError, match="sha256"):
        download_weights(f, sha256="xyz")


# ----------------------------------------------------------------------------- loading


class _Trunk(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.bn1 = nn.BatchNorm2d(4)


class _Net(nn.Module):
    arch = "semparts_resnet18"

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.backbone = _Trunk()
        self.head = nn.Linear(4, classes)


def test_load_checkpoint_dict_strips_module_prefix(tmp_path: Path) -> None:
    src = _Net()
    ckpt = {"format": "semparts-reid/1", "arch": "semparts_resnet18", "model_kwargs": {},
            "data_config": {},
            "model": {f"module.{k}": v for k, v in src.state_dict().items()}}
    path = tmp_path / "ckpt.pth"
    torch.save(ckpt, path)
    dst = _Net()
    report = load_pretrained(dst, path)
    assert report.ok and report.target == "model" and report.strict
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v)


def test_strict_mismatch_raises_one_summary() -> None:
    state = _Net(classes=7).state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["backbone.bn1.bias"]
    dst = _Net(classes=5)
    before = dst.head.weight.clone()
    with pytest.raises(RuntimeError) as info:
        load_pretrained(dst, state)
    msg = str(info.value)
    assert "missing in weights (1): backbone.bn1.bias" in msg
    assert "unexpected in weights (1): extra.weight" in msg
    assert "head.weight (7, 4) vs model (5, 4)" in msg
    assert torch.equal(dst.head.weight, before)  # nothing loaded
    report = load_pretrained(dst, state, strict=False)
    assert not report.ok and "backbone.conv1.weight" in report.loaded
    assert torch.equal(dst.head.weight, before)


def test_torchvision_style_weights_go_into_backbone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    trunk = _Trunk()
    state = {**trunk.state_dict(), "fc.weight": torch.zeros(10, 4), "fc.bias": torch.zeros(10)}
    path = tmp_path / "resnet-like.pth"
    torch.save(state, path)
    dst = _Net()
    with caplog.at_level(logging.INFO, logger="semparts_reid.hub"):
        report = load_pretrained(dst, path)
    assert report.target == "backbone" and not report.strict
    assert report.unexpected == ["fc.weight", "fc.bias"]
    assert (report.filled, report.counted, report.fill) == (1, 1, 1.0)
    assert torch.equal(dst.backbone.conv1.weight, trunk.conv1.weight)
    # the ImageNet classifier has no counterpart in a backbone: expected, so not a warning
    assert [r.levelno for r in caplog.records if "resnet-like" in r.getMessage()] == [logging.INFO]


def _names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}.weight" for i in range(n)]


def test_lenient_load_warns_with_counts_and_first_names(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state: dict[str, torch.Tensor] = dict(_Net(classes=7).state_dict())
    del state["backbone.bn1.bias"]
    for key in _names("extra", 8):
        state[key] = torch.zeros(1)
    dst = _Net(classes=5)
    with caplog.at_level(logging.INFO, logger="semparts_reid.hub"):
        report = load_pretrained(dst, state, strict=False)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.text
    msg = warnings[0].getMessage()
    assert "missing in weights (1): backbone.bn1.bias" in msg
    # counts, the first five names, and how many more there are
    assert "unexpected in weights (8): " + ", ".join(_names("extra", 5)) + ", ... (+3)" in msg
    assert "shape mismatch (2): head.weight (7, 4) vs model (5, 4), head.bias" in msg
    assert "filled 1 of 2 weight kernels, 50%" in msg
    assert report.fill == 0.5 and "backbone.conv1.weight" in report.loaded


def test_backbone_weights_of_another_architecture_raise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    trunk = _Trunk()
    other = nn.Conv2d(3, 4, 5)  # same key, another kernel size: another architecture
    state = {**trunk.state_dict(), "conv1.weight": other.weight.detach().clone(),
             "fc.weight": torch.zeros(10, 4)}
    path = tmp_path / "other_arch.pth"
    torch.save(state, path)
    dst = _Net()
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(WeightsMismatchError) as info:
        load_pretrained(dst, path)
    msg = str(info.value)
    assert str(path) in msg and "0 of the 1 weight kernels of the backbone (0%" in msg
    assert "backbone.conv1.weight" not in msg and "conv1.weight (4, 3, 5, 5)" in msg
    assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)
    for key, value in dst.state_dict().items():
        assert torch.equal(value, before[key]), key  # nothing was loaded
    # the caller can insist: what matches is loaded, with a warning
    with caplog.at_level(logging.INFO, logger="semparts_reid.hub"):
        report = load_pretrained(dst, path, strict=False)
    assert report.fill == 0.0 and "bn1.running_var" in report.loaded
    assert torch.equal(dst.backbone.bn1.running_var, trunk.bn1.running_var)
    assert [r.levelno for r in caplog.records if "other_arch" in r.getMessage()] == [
        logging.WARNING
    ]


def test_load_matching_weights_fill_rule_counts_kernels() -> None:
    dst = _Net(classes=5)
    half = {"backbone.conv1.weight": torch.zeros(4, 3, 3, 3), "head.weight": torch.zeros(9, 4)}
    report = hub.load_matching_weights(dst, half)  # 1 of 2 kernels: exactly half is enough
    assert (report.filled, report.counted) == (1, 2)
    assert torch.equal(dst.backbone.conv1.weight, torch.zeros(4, 3, 3, 3))
    bn_only = {k: v for k, v in _Net().state_dict().items() if k.startswith("backbone.bn1")}
    with pytest.raises(WeightsMismatchError, match="<state dict>: the weights fill only 0 of"):
        hub.load_matching_weights(dst, bn_only)  # BatchNorm vectors alone do not count
    # a module without kernels counts its tensors (the num_batches_tracked counter aside)
    report = hub.load_matching_weights(nn.BatchNorm1d(3), {"weight": torch.ones(3)},
                                       strict=False)
    assert (report.filled, report.counted) == (1, 4)
    with pytest.raises(RuntimeError, match="missing in weights"):
        hub.load_matching_weights(nn.BatchNorm1d(3), {"weight": torch.ones(3)}, strict=True)


def test_imagenet_from_offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trunk = _Trunk()
    cfg = get_pretrained_cfg("resnet18.tv_in1k")
    cache = tmp_path / "home" / "weights"
    cache.mkdir(parents=True)
    torch.save(trunk.state_dict(), cache / cfg.filename)
    monkeypatch.setenv(hub.ENV_OFFLINE, "1")
    # the cached file is not torchvision's, so the hash prefix check must refuse it
    with pytest.raises(ChecksumError, match="f37072fd"):
        load_pretrained(_Net(), "imagenet")
    monkeypatch.setattr(_download, "_check_hash", lambda *a, **k: None)
    report = load_pretrained(_Net(), "imagenet")
    assert report.source == "resnet18.tv_in1k" and report.target == "backbone"


def test_load_pretrained_type_errors() -> None:
    with pytest.raises(TypeError, match="nn.Module"):
        load_pretrained("model", {})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no tensors"):
        load_pretrained(_Net(), {"model": {"a": 1}})
    with pytest.raises(TypeError, match="registry name"):
        load_pretrained(_Net(), True)  # type: ignore[arg-type]
