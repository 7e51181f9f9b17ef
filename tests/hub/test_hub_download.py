"""The downloader (``semparts_reid.hub.download`` behind ``download_weights``), against a
local HTTP server with Range support and switchable failures."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from semparts_reid import hub
from semparts_reid.hub import ChecksumError, DownloadError, download_weights
from semparts_reid.hub import download as hub_download

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


FAST = {"progress": False, "timeout": 2.0, "retries": 2, "backoff": 0.01}


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
    real_lock = hub_download.file_lock

    @contextlib.contextmanager
    def counted_lock(path: Path) -> Iterator[None]:
        at_lock.release()
        with real_lock(path):
            yield

    monkeypatch.setattr(hub_download, "file_lock", counted_lock)
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


def test_negative_retries_is_refused(server: _Server, tmp_path: Path) -> None:
    server.files["/model.pth"] = PAYLOAD
    with pytest.raises(ValueError, match="retries=-1"):
        download_weights(server.url("/model.pth"), cache_dir=tmp_path,
                         **{**FAST, "retries": -1})
    assert server.requests == []


def test_file_names_hashes_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert hub_download.filename_from_url("https://h/a/resnet18-f37072fd.pth?x=1") == (
        "resnet18-f37072fd.pth"
    )
    assert hub_download.filename_from_url("https://h/a b/w eights.pth") == "w_eights.pth"
    unnamed = hub_download.filename_from_url("https://h/")
    assert re.fullmatch(r"weights-[0-9a-f]{16}", unnamed)
    assert hub_download.hash_prefix_from_url("https://h/resnet18-f37072fd.pth") == "f37072fd"
    assert hub_download.hash_prefix_from_url("https://h/model.pth") is None
    assert hub_download.is_url("https://h/x.pth") and hub_download.is_url("http://h/x")
    assert not hub_download.is_url("/data/x.pth") and not hub_download.is_url("resnet50.tv_in1k")
    for value, offline in (("1", True), ("ON", True), ("0", False), ("", False)):
        monkeypatch.setenv(hub.ENV_OFFLINE, value)
        assert hub_download.is_offline() is offline
    monkeypatch.setenv(hub.ENV_HOME, str(tmp_path / "h"))
    assert hub.get_cache_dir() == tmp_path / "h" / "weights"
    f = tmp_path / "w.bin"
    f.write_bytes(PAYLOAD)
    hub_download.check_hash(f, PAYLOAD_SHA[:8], delete=True)  # a matching prefix passes
    hub_download.check_hash(f, None, delete=True)  # nothing to check
    with pytest.raises(ChecksumError, match="sha256 prefix 000000"):
        hub_download.check_hash(f, "000000", delete=False)
    assert f.exists()
    with pytest.raises(ChecksumError, match="the file was deleted"):
        hub_download.check_hash(f, "0" * 64, delete=True)
    assert not f.exists()
    assert issubclass(ChecksumError, DownloadError)
