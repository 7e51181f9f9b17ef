"""Pins the public surface: a name cannot disappear from ``semparts_reid`` unnoticed."""

import importlib
import subprocess
import sys

import pytest

import semparts_reid

PUBLIC_NAMES = [
    "ClusterMemory",
    "DomainAdaptTrainer",
    "ExemplarMemory",
    "FeatureExtractor",
    "InputError",
    "PartMaskPooling",
    "ReIDMetrics",
    "ReIDOutput",
    "SemPartsNet",
    "SemanticPartClassifier",
    "TrainConfig",
    "__version__",
    "build_dataset",
    "build_model",
    "compute_distance",
    "download_weights",
    "evaluate_cmc_map",
    "export_onnx",
    "list_datasets",
    "list_models",
    "list_pretrained",
    "load_pretrained",
    "part_aware_distance",
    "part_mask_pool",
    "re_ranking",
]


def test_all_is_pinned() -> None:
    assert sorted(semparts_reid.__all__) == sorted(PUBLIC_NAMES)


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_every_public_name_resolves(name: str) -> None:
    obj = getattr(semparts_reid, name)
    assert obj is not None
    assert name in dir(semparts_reid)


def test_unknown_name_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        semparts_reid.no_such_name  # noqa: B018


def test_version_is_a_string() -> None:
    assert isinstance(semparts_reid.__version__, str)
    assert semparts_reid.__version__.count(".") >= 2


def test_import_is_lazy() -> None:
    # importing the package must not import torch-heavy submodules
    code = (
        "import sys, semparts_reid; "
        "print(any(m.startswith('semparts_reid.models') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_subpackages_import() -> None:
    for sub in ("layers", "metrics", "models", "data", "engine", "inference"):
        importlib.import_module(f"semparts_reid.{sub}")


def test_every_public_name_is_documented() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    missing = [n for n in PUBLIC_NAMES if n != "__version__" and f"### `{n}`" not in text]
    assert not missing, f"docs/api.md lacks {missing}"


def test_input_error_is_a_value_error_and_the_library_raises_it() -> None:
    from semparts_reid.data import DatasetLayoutError
    from semparts_reid.errors import InputNotFoundError

    assert issubclass(semparts_reid.InputError, ValueError)
    assert issubclass(InputNotFoundError, semparts_reid.InputError)
    assert issubclass(InputNotFoundError, FileNotFoundError)
    assert issubclass(DatasetLayoutError, semparts_reid.InputError)
    with pytest.raises(semparts_reid.InputError, match="no/such/folder"):
        semparts_reid.build_dataset("market1501:/no/such/folder")
    with pytest.raises(semparts_reid.InputError, match="seed=-1"):
        semparts_reid.TrainConfig().replace(seed=-1)
