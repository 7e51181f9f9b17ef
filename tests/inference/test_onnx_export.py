"""ONNX export: outputs equal PyTorch within 1e-4; skips cleanly without the extra."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from inference_helpers import StandIn
from torch import nn

from semparts_reid.inference import export_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _run_both(model: nn.Module, path: Path, x: torch.Tensor) -> tuple[list, list]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    got = session.run(names, {"images": x.numpy()})
    with torch.no_grad():
        out = model(x)
    expected = [getattr(out, n).numpy() for n in names]
    return got, expected


def test_stand_in_export_dynamic_batch(tmp_path: Path, stand_in: StandIn) -> None:
    path = export_onnx(stand_in, tmp_path / "sub" / "m.onnx")
    assert path.exists() and sorted(p.name for p in path.parent.iterdir()) == ["m.onnx"]
    for batch in (1, 5):
        x = torch.randn(batch, 3, *stand_in.data_config["input_size"])
        got, expected = _run_both(stand_in, path, x)
        for a, b in zip(got, expected):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, atol=1e-4)
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["arch"] == "standin"
    assert json.loads(meta["data_config"])["input_size"] == [16, 8]


def test_static_batch_and_model_left_untouched(tmp_path: Path, stand_in: StandIn) -> None:
    stand_in.train()
    before = {k: v.clone() for k, v in stand_in.state_dict().items()}
    path = export_onnx(stand_in, tmp_path / "s.onnx", dynamic_batch=False, input_size=(24, 12))
    assert stand_in.training
    assert all(torch.equal(v, before[k]) for k, v in stand_in.state_dict().items())
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 24, 12]


def test_bad_arguments(tmp_path: Path, stand_in: StandIn) -> None:
    with pytest.raises(TypeError, match="nn.Module"):
        export_onnx("model", tmp_path / "x.onnx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="input_size"):
        export_onnx(stand_in, tmp_path / "x.onnx", input_size=(0, 4))
    assert not list(tmp_path.iterdir())


def test_mismatch_is_detected(tmp_path: Path, stand_in: StandIn,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    import semparts_reid.inference.export as export_mod

    real = export_mod._compare

    def tampered(wrapper: nn.Module, *args: object) -> None:
        class Off(nn.Module):
            def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
                return tuple(t + 1e-3 for t in wrapper(x))

        real(Off(), *args)

    monkeypatch.setattr(export_mod, "_compare", tampered)
    with pytest.raises(RuntimeError, match="differs from PyTorch"):
        export_onnx(stand_in, tmp_path / "bad.onnx")
    assert not list(tmp_path.iterdir())  # the temporary file was removed


@pytest.mark.slow
def test_real_model_export(tmp_path: Path, tiny_model: nn.Module) -> None:
    path = export_onnx(tiny_model, tmp_path / "semparts.onnx")
    x = torch.randn(2, 3, 64, 32)
    got, expected = _run_both(tiny_model, path, x)
    assert [a.shape for a in got] == [(2, 512), (2, 3, 512), (2, 3)]
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, atol=1e-4)


class _WarnsWhileTraced(StandIn):
    """Warns from its own forward, only while the exporter traces it."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> object:
        if torch.jit.is_tracing():
            if self.kind == "user":
                warnings.warn("model-side warning while tracing", UserWarning, stacklevel=1)
            elif self.kind == "deprecation":
                warnings.warn("model-side deprecation", DeprecationWarning, stacklevel=1)
            elif x.mean() > 0:  # data-dependent branch: the trace freezes it (TracerWarning)
                x = x * 1.0
        return super().forward(x)


@pytest.mark.parametrize(
    ("kind", "category", "match"),
    [
        ("user", UserWarning, "model-side warning while tracing"),
        ("deprecation", DeprecationWarning, "model-side deprecation"),
        ("tracer", torch.jit.TracerWarning, "Converting a tensor to a Python boolean"),
    ],
)
def test_export_does_not_hide_the_models_own_warnings(
    tmp_path: Path, kind: str, category: type[Warning], match: str
) -> None:
    torch.manual_seed(0)
    model = _WarnsWhileTraced(kind).eval()
    with pytest.warns(category, match=match):
        export_onnx(model, tmp_path / "w.onnx", check=False)


def test_export_of_a_real_model_gives_no_known_exporter_noise(tmp_path: Path) -> None:
    from inference_helpers import tiny_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_onnx(tiny_model(), tmp_path / "r.onnx", check=False)
    assert [str(w.message)[:80] for w in caught] == []
