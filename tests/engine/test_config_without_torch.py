"""``TrainConfig`` is built and validated without torch (e.g. by a launcher or a linter)."""

from __future__ import annotations

import subprocess
import sys

_SCRIPT = """
import sys
sys.modules["torch"] = None  # any "import torch" raises ImportError
import semparts_reid.engine
from semparts_reid.engine.config import TrainConfig
from semparts_reid.errors import InputError

cfg = TrainConfig().replace(arch="ecn_resnet18", part_table="lip")
cfg.validate()
TrainConfig.from_dict(cfg.to_dict())
for bad in ({"arch": "resnet9000"}, {"part_table": "nope"}):
    try:
        TrainConfig().replace(**bad)
    except InputError as err:
        print(type(err).__name__, err)
    else:
        raise SystemExit(f"{bad} was accepted")
print("torch-free:", sys.modules["torch"] is None)
"""


def test_train_config_validates_with_torch_unimportable() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "InputError arch='resnet9000': expected one of" in out and "semparts_resnet50" in out
    assert "InputError part_table='nope': expected one of" in out and "'lip'" in out
    assert "torch-free: True" in out


def test_the_torch_free_names_are_the_factory_and_part_label_names() -> None:
    from semparts_reid.data import part_labels, part_tables
    from semparts_reid.models.factory import list_models
    from semparts_reid.models.names import MODEL_NAMES

    assert list(MODEL_NAMES) == list_models()
    assert part_labels.GROUPING_TABLES is part_tables.GROUPING_TABLES
