"""FeatureExtractor: input kinds, preprocessing, precision, parts, flip and bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from inference_helpers import SIZE, StandIn, random_crops
from PIL import Image
from torch import nn

from semparts_reid.inference import FeatureExtractor, PartFeatures, load_model_from_checkpoint
from semparts_reid.inference.preprocess import resize_crops


def reference_features(model: nn.Module, crops_rgb: list[np.ndarray]) -> np.ndarray:
    """Plain fp32 pipeline: float resize per crop, normalise, forward, L2-normalise."""
    cfg = model.data_config
    mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    batch = torch.cat([
        F.interpolate(torch.from_numpy(c).permute(2, 0, 1)[None].float() / 255,
                      size=cfg["input_size"], mode="bilinear", antialias=True,
                      align_corners=False)
        for c in crops_rgb
    ])
    with torch.no_grad():
        out = model.float().to(memory_format=torch.contiguous_format)((batch - mean) / std)
    return F.normalize(out.global_feat, dim=1).numpy()


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_bgr_crops_match_reference_pipeline(tiny_model: nn.Module) -> None:
    crops = random_crops(7)
    ref = reference_features(tiny_model, crops)
    ext = FeatureExtractor(tiny_model, device="cpu", precision="fp32", batch_size=3)
    bgr = [np.ascontiguousarray(c[..., ::-1]) for c in crops]
    feats = ext(bgr, bgr=True)
    assert isinstance(feats, np.ndarray) and feats.dtype == np.float32
    assert feats.shape == (7, tiny_model.feat_dim)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    assert cosine(feats, ref).min() > 0.999  # only uint8 rounding of the resize differs
    np.testing.assert_allclose(ext(crops, bgr=False), feats, atol=1e-5)


def test_every_input_kind_gives_the_same_features(tmp_path: Path, tiny_model: nn.Module) -> None:
    rng = np.random.default_rng(1)
    arrays = [rng.integers(0, 256, (80, 40, 3), dtype=np.uint8) for _ in range(5)]
    paths = []
    for i, a in enumerate(arrays):
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(a).save(paths[-1])
    ext = FeatureExtractor(tiny_model, device="cpu", precision="fp32", batch_size=2)
    ref = ext(arrays)
    stacked = np.stack(arrays)
    chw = torch.from_numpy(stacked).permute(0, 3, 1, 2)
    variants = {
        "paths": ext(paths),
        "str paths": ext([str(p) for p in paths]),
        "pil": ext([Image.fromarray(a) for a in arrays]),
        "nhwc array": ext(stacked),
        "uint8 tensor": ext(chw, return_numpy=True),
        "float tensor": ext(chw.float() / 255, return_numpy=True),
        "tensor list": ext(list(chw.contiguous())),
    }
    for name, feats in variants.items():
        np.testing.assert_allclose(feats, ref, atol=2e-3, err_msg=name)
    single = ext(paths[0])
    assert single.shape == (1, tiny_model.feat_dim)
    np.testing.assert_allclose(single[0], ref[0], atol=1e-4)
    as_torch = ext(chw)
    assert isinstance(as_torch, torch.Tensor) and as_torch.dtype == torch.float32


def test_batch_size_does_not_change_results(tiny_model: nn.Module) -> None:
    crops = random_crops(9, seed=3)
    a = FeatureExtractor(tiny_model, device="cpu", precision="fp32", batch_size=2)(crops)
    b = FeatureExtractor(tiny_model, device="cpu", precision="fp32", batch_size=16)(crops)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_resize_crops_groups_shapes_and_matches_per_crop() -> None:
    crops = [torch.from_numpy(c).permute(2, 0, 1) for c in random_crops(6, seed=2)]
    crops += [crops[0], crops[0].clone()]  # equal shapes share one interpolate call
    batch = resize_crops(crops, (32, 16), torch.device("cpu"))
    assert batch.shape == (8, 3, 32, 16) and batch.dtype == torch.uint8
    for i, c in enumerate(crops):
        one = F.interpolate(c[None].float(), size=(32, 16), mode="bilinear", antialias=True,
                            align_corners=False)
        assert (batch[i].float() - one[0]).abs().max() <= 1.0  # uint8 rounding
    assert torch.equal(batch[0], batch[6]) and torch.equal(batch[0], batch[7])


def test_bf16_policy_close_to_fp32(tiny_model: nn.Module) -> None:
    crops = random_crops(6, seed=4)
    fp32 = FeatureExtractor(tiny_model, device="cpu", precision="fp32")(crops)
    ext = FeatureExtractor(tiny_model, device="cpu", precision="bf16")
    assert ext.policy.amp_dtype == torch.bfloat16 and ext.policy.channels_last
    assert tiny_model.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    bf16 = ext(crops)
    assert bf16.dtype == np.float32
    assert cosine(bf16, fp32).min() > 0.99


def test_extract_parts(tiny_model: nn.Module) -> None:
    ext = FeatureExtractor(tiny_model, device="cpu", precision="fp32")
    out = ext.extract_parts(random_crops(4), bgr=True)
    assert isinstance(out, PartFeatures)
    d = tiny_model.feat_dim
    assert out.global_feat.shape == (4, d)
    assert out.part_feats.shape == (4, 3, d) and out.visibility.shape == (4, 3)
    norms = np.linalg.norm(out.part_feats, axis=-1)
    visible = out.visibility > 0
    np.testing.assert_allclose(norms[visible], 1.0, atol=1e-4)
    assert set(np.unique(out.visibility)) <= {0.0, 1.0}
    np.testing.assert_allclose(out.global_feat, ext(random_crops(4), bgr=True), atol=1e-6)


def test_flip_averaging_is_mirror_invariant(tiny_model: nn.Module) -> None:
    rng = np.random.default_rng(5)
    crops = [rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8) for _ in range(3)]
    mirrored = [np.ascontiguousarray(c[:, ::-1]) for c in crops]
    plain = FeatureExtractor(tiny_model, device="cpu", precision="fp32")
    flip = FeatureExtractor(tiny_model, device="cpu", precision="fp32", flip=True)
    a, b = flip(crops), flip(mirrored)
    np.testing.assert_allclose(a, b, atol=1e-4)
    manual = F.normalize(
        torch.from_numpy(_raw(plain, crops) + _raw(plain, mirrored)), dim=1
    ).numpy()
    np.testing.assert_allclose(a, manual, atol=1e-4)
    assert np.abs(a - plain(crops)).max() > 1e-3  # the flip did something


def _raw(ext: FeatureExtractor, crops: list[np.ndarray]) -> np.ndarray:
    cfg = ext.data_config
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(cfg["mean"]).view(1, 3, 1, 1)) / torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        return ext.model(x).global_feat.numpy()


def test_checkpoint_and_name_construction(tmp_path: Path, tiny_model: nn.Module) -> None:
    ckpt = {
        "format": "semparts-reid/1",
        "arch": tiny_model.arch,
        "model_kwargs": tiny_model.build_kwargs,
        "data_config": tiny_model.data_config,
        "model": tiny_model.state_dict(),
    }
    path = tmp_path / "ckpt.pth"
    torch.save(ckpt, path)
    crops = random_crops(3)
    ref = FeatureExtractor(tiny_model, device="cpu", precision="fp32")(crops)
    from_file = FeatureExtractor(path, device="cpu", precision="fp32")
    assert from_file.input_size == SIZE
    np.testing.assert_allclose(from_file(crops), ref, atol=1e-5)
    assert load_model_from_checkpoint(str(path)).arch == "semparts_resnet18"
    by_name = FeatureExtractor("ecn_resnet18", device="cpu")
    assert by_name(crops).shape == (3, 512)
    assert by_name.extract_parts(crops).part_feats.shape == (3, 0, 512)
    torch.save(tiny_model.state_dict(), tmp_path / "bare.pth")
    with pytest.raises(ValueError, match="bare state dict"):
        FeatureExtractor(tmp_path / "bare.pth")


def test_stand_in_module_and_plain_tensor_models(stand_in: StandIn) -> None:
    ext = FeatureExtractor(stand_in, device="cpu", precision="fp32", batch_size=4)
    crops = random_crops(5, lo=10, hi=30)
    out = ext.extract_parts(crops)
    assert out.global_feat.shape == (5, 8) and out.part_feats.shape == (5, 3, 8)

    class Plain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 6, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x).mean((2, 3))

    with pytest.raises(ValueError, match="data_config"):
        FeatureExtractor(Plain(), device="cpu")
    cfg = {"input_size": (12, 6), "mean": (0.5,) * 3, "std": (0.5,) * 3}
    with pytest.raises(ValueError, match="mean/std"):
        FeatureExtractor(Plain(), device="cpu", data_config={**cfg, "std": (0.5, 0.5)})
    with pytest.raises(ValueError, match="input_size"):
        FeatureExtractor(Plain(), device="cpu", data_config={**cfg, "input_size": (12,)})
    plain = FeatureExtractor(Plain(), device="cpu", data_config=cfg)
    assert plain(crops).shape == (5, 6)
    assert plain([]).shape == (0, 6)  # D found with one blank forward
    with pytest.raises(TypeError, match="no part features"):
        plain.extract_parts(crops)


def test_empty_inputs(tiny_model: nn.Module) -> None:
    ext = FeatureExtractor(tiny_model, device="cpu")
    empty = ext([])
    assert isinstance(empty, np.ndarray) and empty.shape == (0, 512) and empty.dtype == np.float32
    parts = ext.extract_parts([])
    assert parts.part_feats.shape == (0, 3, 512) and parts.visibility.shape == (0, 3)
    assert ext(np.zeros((0, 20, 10, 3), np.uint8)).shape == (0, 512)
    assert ext(torch.zeros(0, 3, 20, 10)).shape == (0, 512)


def test_bad_inputs_raise_clear_errors(tmp_path: Path, stand_in: StandIn) -> None:
    ext = FeatureExtractor(stand_in, device="cpu")
    good = np.zeros((20, 10, 3), np.uint8)
    with pytest.raises(ValueError, match=r"H x W x 3.*\(20, 10, 4\)"):
        ext([good, np.zeros((20, 10, 4), np.uint8)])
    with pytest.raises(ValueError, match="grayscale"):
        ext([np.zeros((20, 10), np.uint8)])
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        ext(torch.zeros(2, 1, 20, 10))
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        ext([torch.zeros(4, 20, 10)])
    with pytest.raises(TypeError, match="uint8"):
        ext([good.astype(np.float32)])
    missing = tmp_path / "nope" / "missing.jpg"
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        ext([str(missing)])
    with pytest.raises(TypeError, match=r"mixes input kinds.*file paths.*numpy arrays"):
        ext(["a.jpg", good])
    with pytest.raises(TypeError, match="mixes uint8"):
        ext([torch.zeros(3, 8, 4, dtype=torch.uint8), torch.zeros(3, 8, 4)])
    with pytest.raises(TypeError, match=r"inputs\[1\] has unsupported type int"):
        ext([good, 3])
    with pytest.raises(TypeError, match="dict"):
        ext({"a": good})
    with pytest.raises(ValueError, match="bgr=True"):
        ext([Image.fromarray(good)], bgr=True)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="broken.jpg"):
        ext([broken])
    with pytest.raises(ValueError, match="batch_size"):
        FeatureExtractor(stand_in, batch_size=0)
    with pytest.raises(ValueError, match="precision"):
        FeatureExtractor(stand_in, precision="int8")
    with pytest.raises(TypeError, match="nn.Module"):
        FeatureExtractor(42)  # type: ignore[arg-type]


def test_float_inputs_outside_unit_range_are_rejected(stand_in: StandIn) -> None:
    from semparts_reid.errors import InputError

    ext = FeatureExtractor(stand_in, device="cpu", precision="fp32")
    h, w = stand_in.data_config["input_size"]  # no resize: the range seen is the input's
    ramp = torch.linspace(0, 255, 3 * h * w).reshape(1, 3, h, w).repeat(2, 1, 1, 1)
    with pytest.raises(InputError, match=r"values in \[0, 255\].*uint8 or float in \[0, 1\]"):
        ext(ramp)
    with pytest.raises(ValueError, match=r"\[0, 255\].*0-255 data"):  # a list of crops too
        ext(list(ramp))
    with pytest.raises(InputError, match="already normalised"):
        ext((ramp / 255 - 0.5) / 0.25)
    with pytest.raises(InputError, match="NaN"):
        ext(torch.full((1, 3, h, w), float("nan")))
    # 0-1 floats, and rounding within the tolerance, are accepted and match uint8 input
    unit = ramp / 255
    ref = ext(ramp.round().to(torch.uint8))
    np.testing.assert_allclose(ext(unit), ref, atol=2e-3)
    assert ext((unit * (1 + 0.5 / 255)).clamp_min(0)).shape == ref.shape


def test_float_range_check_is_one_aminmax_per_batch(
    monkeypatch: pytest.MonkeyPatch, stand_in: StandIn
) -> None:
    calls: list[tuple[int, ...]] = []
    real = torch.aminmax

    def counting(x: torch.Tensor, *args: object, **kwargs: object) -> object:
        calls.append(tuple(x.shape))
        return real(x, *args, **kwargs)

    monkeypatch.setattr(torch, "aminmax", counting)
    ext = FeatureExtractor(stand_in, device="cpu", precision="fp32", batch_size=2)
    ext(torch.rand(5, 3, 20, 10))
    assert [c[0] for c in calls] == [2, 2, 1]
    calls.clear()
    ext(torch.randint(0, 256, (5, 3, 20, 10), dtype=torch.uint8))  # uint8: nothing to check
    assert calls == []


def _compiler_error(kind: str) -> Exception:
    import torch._dynamo.exc as dynamo_exc
    import torch._inductor.exc as inductor_exc

    if kind == "no compiler":
        return inductor_exc.InvalidCxxCompiler()
    if kind == "backend":  # what torch.compile raises when Inductor fails
        return _backend_failed(RuntimeError("lowering"))
    return dynamo_exc.InternalTorchDynamoError("unsupported op")


def _backend_failed(inner: Exception) -> Exception:
    import torch._dynamo.exc as dynamo_exc

    cls = dynamo_exc.BackendCompilerFailed
    try:
        return cls(lambda *a: None, inner, None)
    except TypeError:  # older torch: (backend_fn, inner_exception)
        return cls(lambda *a: None, inner)  # type: ignore[call-arg]


@pytest.mark.parametrize("kind", ["no compiler", "backend", "dynamo"])
def test_compile_failure_falls_back_to_eager(
    kind: str, stand_in: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    calls = []

    def broken_compiled_forward(x: torch.Tensor) -> None:
        calls.append(x.shape[0])
        raise _compiler_error(kind)

    crops = random_crops(3, lo=10, hi=30)
    ref = FeatureExtractor(stand_in, device="cpu", precision="fp32")(crops)
    ext = FeatureExtractor(stand_in, device="cpu", precision="fp32")
    ext._forward_fn, ext._compiled = broken_compiled_forward, True
    with caplog.at_level(logging.WARNING):
        out = ext(crops)
    assert "torch.compile failed" in caplog.text and len(calls) == 1
    np.testing.assert_allclose(out, ref, atol=1e-6)
    assert not ext._compiled and ext._forward_fn is ext.model


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        torch.cuda.OutOfMemoryError("out of memory"),
        ValueError("images must have shape (B, 3, H, W)"),
    ],
    ids=["runtime-oom", "torch-oom", "bad-input"],
)
def test_compiled_model_errors_that_are_not_compiler_errors_propagate(
    error: Exception, stand_in: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    def failing_compiled_forward(x: torch.Tensor) -> None:
        raise error

    ext = FeatureExtractor(stand_in, device="cpu", precision="fp32")
    ext._forward_fn, ext._compiled = failing_compiled_forward, True
    with caplog.at_level(logging.WARNING), pytest.raises(type(error), match=str(error)[:12]):
        ext(random_crops(2, lo=10, hi=30))
    assert "torch.compile failed" not in caplog.text
    assert ext._compiled  # still the compiled model: nothing was silently swapped


def test_out_of_memory_inside_a_compiler_error_propagates(stand_in: StandIn) -> None:
    import torch._dynamo.exc as dynamo_exc

    oom = torch.cuda.OutOfMemoryError("out of memory while autotuning")

    def failing_compiled_forward(x: torch.Tensor) -> None:
        raise _backend_failed(oom)

    ext = FeatureExtractor(stand_in, device="cpu", precision="fp32")
    ext._forward_fn, ext._compiled = failing_compiled_forward, True
    with pytest.raises(dynamo_exc.BackendCompilerFailed):
        ext(random_crops(2, lo=10, hi=30))
    assert ext._compiled


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.cuda
def test_cuda_path_matches_cpu(tmp_path: Path, tiny_model: nn.Module) -> None:
    crops = random_crops(6)
    cpu = FeatureExtractor(tiny_model, device="cpu", precision="fp32")(crops)
    paths = []
    for i, c in enumerate(crops):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(c).save(paths[-1])
    gpu = FeatureExtractor(tiny_model, device="cuda", precision="fp32", num_workers=2)
    assert cosine(gpu(crops), cpu).min() > 0.999
    assert cosine(gpu(paths), cpu).min() > 0.999
    amp = FeatureExtractor(tiny_model, device="cuda", precision="auto")
    assert amp.policy.amp_dtype in (torch.bfloat16, torch.float16)
    assert cosine(amp(crops), cpu).min() > 0.99
