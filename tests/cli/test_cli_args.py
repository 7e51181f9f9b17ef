"""``cli/args.py``: dataclass fields become command-line flags, and only given flags override."""

import argparse
import dataclasses
from typing import Literal

import pytest

from semparts_reid.cli.args import add_dataclass_arguments, dataclass_from_args


@dataclasses.dataclass
class ToyConfig:
    lr: float = dataclasses.field(default=3e-4, metadata={"help": "learning rate"})
    epochs: int = 80
    arch: str = "semparts_resnet50"
    amp: bool = True
    input_size: tuple[int, int] = (256, 128)
    part_labels: Literal["gt", "pseudo", "none"] = "gt"
    resume_from: str | None = None
    milestones: list[int] = dataclasses.field(default_factory=lambda: [40, 60])


def _parse(argv: list[str], base: ToyConfig | None = None) -> ToyConfig:
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, ToyConfig)
    return dataclass_from_args(ToyConfig, parser.parse_args(argv), base)


def test_defaults_kept_when_no_flag() -> None:
    assert _parse([]) == ToyConfig()


def test_every_type_parses() -> None:
    cfg = _parse(
        ["--lr", "0.1", "--epochs", "3", "--no-amp", "--input-size", "64", "32",
         "--part-labels", "pseudo", "--resume-from", "x.pth", "--milestones", "1", "2", "3"]
    )
    assert cfg == ToyConfig(
        lr=0.1, epochs=3, amp=False, input_size=(64, 32), part_labels="pseudo",
        resume_from="x.pth", milestones=[1, 2, 3],
    )
    assert _parse(["--resume-from", "none"]).resume_from is None


def test_only_given_flags_override_a_base() -> None:
    base = ToyConfig(epochs=5, arch="x")
    assert _parse(["--lr", "1"], base) == ToyConfig(lr=1.0, epochs=5, arch="x")


def test_bad_value_is_rejected() -> None:
    with pytest.raises(SystemExit):
        _parse(["--part-labels", "nonsense"])
    with pytest.raises(SystemExit):
        _parse(["--epochs", "three"])


def test_help_mentions_field_help_and_default() -> None:
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, ToyConfig)
    text = parser.format_help()
    assert "learning rate (default: 0.0003)" in text
    assert "--no-amp" in text
