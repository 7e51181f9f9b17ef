"""A human parser's maps in training: part labels (``part_labels="parser"``) and pooling
masks (``pool_with_parser_maps``), on a parse folder written for the tiny synthetic pair."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from engine_helpers import tiny_config, tiny_model

from semparts_reid.engine.batches import EpochBatches
from semparts_reid.engine.config import TrainConfig
from semparts_reid.engine.loaders import TrainCollate
from semparts_reid.engine.losses import part_map_term
from semparts_reid.errors import InputError
from semparts_reid.layers.parts import IGNORE_INDEX
from semparts_reid.parsers import PartMapWriter, open_parsed_maps
from semparts_reid.parsers.maps import ParsedPartMapsSet

DATA_CONFIG = {"input_size": (64, 32), "mean": (0.5,) * 3, "std": (0.5,) * 3}


def write_parse(records: Any, out: Path, *, every: int = 2) -> set[str]:
    """A parse folder: every ``every``-th crop gets a map (top third head, then upper,
    then lower), the others none. Returns the paths with a map."""
    from PIL import Image

    writer = PartMapWriter(out, root=None)
    found = set()
    for i, rec in enumerate(records):
        with Image.open(rec.path) as img:
            w, h = img.size
        lab = np.zeros((h, w), np.uint8)
        lab[: h // 3, 2:-2], lab[h // 3 : 2 * h // 3, 1:-1], lab[2 * h // 3 :, 3:-3] = 1, 2, 3
        ok = i % every == 0
        writer.add("train", i, rec.path, lab if ok else None, confidence=0.9 if ok else 0.0,
                   found=ok, size=(w, h))
        if ok:
            found.add(rec.path)
    writer.finish({"spec": "test"})
    return found


@pytest.fixture(scope="module")
def parsed(tiny_pair: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    out = tmp_path_factory.mktemp("parsed")
    return out, write_parse(tiny_pair[1].train, out)


def _cfg(tmp_path: Path, parsed_dir: Path | None, **kw: Any) -> TrainConfig:
    return tiny_config(str(tmp_path), parser_maps=None if parsed_dir is None else str(parsed_dir),
                       **kw)


def test_config_fields_choices_and_old_dicts(tmp_path: Path) -> None:
    cfg = TrainConfig()
    assert (cfg.parts.parser_maps, cfg.parts.parser_domains, cfg.parts.pool_with_parser_maps) \
        == (None, "target", False)
    old = cfg.to_flat_dict()
    for key in ("parser_maps", "parser_domains", "pool_with_parser_maps"):
        del old[key]
    assert TrainConfig.from_dict(old) == cfg  # a checkpoint written before the fields
    with pytest.raises(InputError, match="parser_domains"):
        cfg.replace(parser_domains="nowhere")
    both = cfg.replace(part_labels="parser", parser_maps="x", parser_domains="both")
    assert both.parts.uses_parser("source") and both.parts.uses_parser("target")
    assert not cfg.replace(pool_with_parser_maps=True, parser_maps="x").parts.uses_parser("source")


def test_a_bad_folder_or_none_raises_input_error_naming_it(tiny_pair: Any, tmp_path: Path) -> None:
    a, b = tiny_pair
    with pytest.raises(InputError, match="no_such_parse"):
        EpochBatches(a, b, _cfg(tmp_path, tmp_path / "no_such_parse", part_labels="parser"),
                     DATA_CONFIG)
    with pytest.raises(InputError, match="parser_maps=None"):
        EpochBatches(a, b, _cfg(tmp_path, None, pool_with_parser_maps=True), DATA_CONFIG)


def test_parser_labels_reach_the_loss_with_the_fallback_elsewhere(
    tiny_pair: Any, parsed: tuple[Path, set[str]], tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = tiny_pair
    cfg = _cfg(tmp_path, parsed[0], part_labels="parser", random_erasing=0.0)
    batches = EpochBatches(a, b, cfg, DATA_CONFIG)
    assert batches.ships_parts("target") and batches.ships_parts("source")
    with caplog.at_level(logging.INFO, logger="semparts_reid.engine.batches"):
        target = batches.dataset("target")
        batches.dataset("target")  # built once: logged once
    missing = len({r.path for r in b.train} - parsed[1])
    assert batches.parser_fallback == {"target": missing} and missing > 0
    logged = [r.getMessage() for r in caplog.records if "parser maps" in r.getMessage()]
    assert len(logged) == 1 and f"{missing} without one keep the 'self' labels" in logged[0]
    items = [target[i] for i in range(8)]
    batch = TrainCollate((0.5,) * 3, (0.5,) * 3)(items)
    found = torch.tensor([it["path"] in parsed[1] for it in items])
    assert torch.equal(batch["has_parts"], found) and batch["parts_known"] == "some"
    # the loss: parser labels where present, the classifier's confident labels elsewhere
    model = tiny_model(a.num_train_pids).train()
    out = model(batch["image"])
    logits = out.part_logits.detach().clone().requires_grad_(True)
    fmap = torch.zeros(8, 512, 2, 1)
    loss = part_map_term({"part_logits": logits, "feature_map": fmap}, batch, cfg)
    same = part_map_term({"part_logits": logits, "feature_map": fmap}, batch,
                         cfg.replace(part_labels="auto"))
    assert loss is not None and same is not None and torch.equal(loss, same)
    # the source domain is not parsed: it keeps its maps beside the images ("auto")
    assert "source" not in batches.parser_fallback


def test_parser_pooling_ships_pool_parts_and_trains(
    tiny_pair: Any, parsed: tuple[Path, set[str]], tmp_path: Path,
) -> None:
    a, b = tiny_pair
    cfg = _cfg(tmp_path, parsed[0], pool_with_parser_maps=True, epochs=1,
               max_steps_per_epoch=1)
    batches = EpochBatches(a, b, cfg, DATA_CONFIG)
    items = [batches.dataset("target")[i] for i in range(4)]
    batch = TrainCollate((0.5,) * 3, (0.5,) * 3)(items)
    assert batch["pool_parts"].shape == (4, 64, 32)
    assert batch["pool_known"].tolist() == [it["path"] in parsed[1] for it in items]
    assert "parts" not in items[0]  # auto labels: the target ships no maps of its own
    assert "pool_parts" not in batches.dataset("source")[0]  # parser_domains="target"
    from semparts_reid.engine.trainer import DomainAdaptTrainer

    trainer = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, cfg, loggers=[])
    trainer.fit()
    assert trainer.global_step == 1


def test_several_folders_read_as_one(tiny_pair: Any, tmp_path: Path) -> None:
    a, b = tiny_pair
    found_a = write_parse(a.train[:6], tmp_path / "pa", every=1)
    found_b = write_parse(b.train[:6], tmp_path / "pb", every=1)
    maps = open_parsed_maps(f"{tmp_path / 'pa'}, {tmp_path / 'pb'}")
    assert isinstance(maps, ParsedPartMapsSet) and len(maps) == 12
    for path in (*found_a, *found_b):
        assert maps.read(path) is not None and path in maps
    assert maps.read("/nowhere.jpg") is None and maps.row("/nowhere.jpg") is None
    lab = maps.read(next(iter(found_b)))
    assert lab is not None and int(lab.max()) == 3 and IGNORE_INDEX not in lab
