"""The checkpoint loaders are named for what they load; the old engine name still works."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from semparts_reid.engine import checkpoint
from semparts_reid.engine.checkpoint import (
    load_training_checkpoint,
    model_payload,
    save_checkpoint,
)
from semparts_reid.errors import InputError


def _saved(tmp_path: Path) -> Path:
    payload = {**model_payload(nn.Linear(3, 2)), "epoch": 4, "stage": "adapt"}
    return save_checkpoint(payload, tmp_path / "run.pt")


def test_load_training_checkpoint_reads_what_save_checkpoint_wrote(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new name does not warn
        ckpt = load_training_checkpoint(path)
    assert ckpt["epoch"] == 4 and ckpt["format"] == checkpoint.CHECKPOINT_FORMAT
    assert set(ckpt["model"]) == {"weight", "bias"}
    plain = tmp_path / "plain.pt"
    torch.save(nn.Linear(3, 2).state_dict(), plain)  # weights, but not a training checkpoint
    with pytest.raises(InputError, match="plain.pt is not a semparts-reid checkpoint"):
        load_training_checkpoint(plain)
