"""The trainer's loaders: one epoch of seeded global batches per (stage, epoch, domain)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from semparts_reid.data import PKSampler, RandomIndexSampler
from semparts_reid.engine.loaders import build_train_loader, train_sampler

PIDS = [i // 3 for i in range(24)]  # 8 identities x 3 images


def test_ranks_take_slices_of_the_same_global_batches() -> None:
    whole = train_sampler(10, [0] * 10, global_batch=4, steps=5, seed=3).local_batches()
    r0, r1 = (train_sampler(10, [0] * 10, global_batch=4, steps=5, seed=3, rank=r, world=2)
              for r in range(2))
    assert isinstance(r0, RandomIndexSampler)
    assert np.array_equal(np.concatenate([r0.local_batches(), r1.local_batches()], 1), whole)
    again = train_sampler(10, [0] * 10, global_batch=4, steps=5, seed=3).local_batches()
    assert np.array_equal(again, whole)  # a pure function of the seed
    other = train_sampler(10, [0] * 10, global_batch=4, steps=5, seed=4).local_batches()
    assert not np.array_equal(other, whole)
    assert len(set(whole[:2].reshape(-1).tolist())) == 8  # a permutation before any repeat
    pk = train_sampler(24, PIDS, global_batch=8, steps=3, seed=0, num_instances=2)
    assert isinstance(pk, PKSampler) and (pk.p, pk.k) == (4, 2)
    for batch in pk.local_batches():
        ids = [PIDS[i] for i in batch]
        assert ids[0::2] == ids[1::2]  # K = 2 images of each identity in a row
    with pytest.raises(ValueError, match="batch_size=5: expected a positive multiple"):
        train_sampler(10, [0] * 10, global_batch=5, steps=1, seed=0, world=2)
    with pytest.raises(ValueError, match="global_batch=6 is not a multiple of num_instances=4"):
        train_sampler(24, PIDS, global_batch=6, steps=1, seed=0, num_instances=4)
    with pytest.raises(ValueError, match="num_items=0"):
        train_sampler(0, [], global_batch=2, steps=1, seed=0)


def test_a_seed_keeps_the_batches_of_earlier_releases() -> None:
    """Pinned batches (drawn before the samplers became one family): the demo's figures
    depend on them. ``20017`` / ``20016`` are the trainer's target / source seeds of
    ``seed=0``, stage ``adapt``, epoch 1."""
    target = train_sampler(24, PIDS, global_batch=8, steps=3, seed=20017, rank=1, world=2)
    assert target.local_batches().tolist() == [[12, 18, 16, 14], [0, 20, 8, 17], [5, 22, 21, 4]]
    uniform = train_sampler(24, PIDS, global_batch=8, steps=3, seed=20016, rank=0, world=2)
    assert uniform.local_batches().tolist() == [[17, 1, 11, 8], [7, 22, 6, 21], [3, 23, 20, 4]]
    pk = train_sampler(24, PIDS, global_batch=8, steps=3, seed=20016, num_instances=4, world=2)
    assert pk.local_batches().tolist() == [[8, 7, 7, 7], [2, 1, 0, 0], [3, 4, 5, 3]]


def test_build_train_loader_yields_this_ranks_batches() -> None:
    cfg = SimpleNamespace(runtime=SimpleNamespace(num_workers=0))
    loader = build_train_loader(list(range(24)), PIDS, cfg, global_batch=8, steps=3, seed=7,
                                num_instances=4, rank=1, world=2)
    expected = train_sampler(24, PIDS, global_batch=8, steps=3, seed=7, num_instances=4,
                             rank=1, world=2).local_batches().tolist()
    assert len(loader) == 3
    assert [b.tolist() for b in loader] == expected


# ---------------------------------------------------------------- keeping a GPU fed


def _data_cfg() -> dict:
    return {"input_size": (64, 32), "mean": (0.5,) * 3, "std": (0.25,) * 3}


def _epoch(batches, which: str, epoch: int) -> list[dict]:
    """Two batches of an epoch, finished on the CPU as the trainer's loop does."""
    from semparts_reid.engine.loaders import move_batch
    from semparts_reid.precision import resolve_precision

    policy = resolve_precision("cpu", "fp32", channels_last=False)
    it = batches.iterator(which, "adapt", epoch, 2)
    return [move_batch(next(it), policy) for _ in range(2)]


def _same(x: list[dict], y: list[dict]) -> bool:
    keys = ("image", "image_cam", "parts", "index")
    return all(torch.equal(a[k], b[k]) for a, b in zip(x, y, strict=True) for k in keys if k in a)


@pytest.mark.slow
def test_persistent_workers_replay_any_epoch_exactly(tiny_pair, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """One loader per domain keeps its workers across epochs; the augmented batches of an
    epoch are the same whatever the workers served before (resume) and however many
    workers there are."""
    from engine_helpers import tiny_config

    from semparts_reid.engine.batches import EpochBatches, epoch_seed

    a, b = tiny_pair
    cfg = tiny_config(str(tmp_path), num_workers=2, camstyle=True)
    run = EpochBatches(a, b, cfg, _data_cfg())
    first = _epoch(run, "target", 0)
    loader = run._loaders["target"][1]
    second = _epoch(run, "target", 1)
    assert run._loaders["target"][1] is loader and loader.persistent_workers
    assert not _same(first, second)
    expected = train_sampler(len(b.train), [r.pid for r in b.train], global_batch=8, steps=2,
                             seed=epoch_seed(0, "adapt", 1, True)).local_batches().tolist()
    assert [x["index"].tolist() for x in second] == expected
    resumed = EpochBatches(a, b, cfg, _data_cfg())
    assert _same(_epoch(resumed, "target", 1), second)
    one_worker = EpochBatches(a, b, tiny_config(str(tmp_path), num_workers=1, camstyle=True),
                              _data_cfg())
    assert _same(_epoch(one_worker, "target", 1), second)
    assert "parts" not in second[0] and "image_cam" in second[0]  # target maps withheld
    run.close()
    assert run._loaders == {}


def test_without_workers_each_epoch_gets_a_light_loader(tiny_pair, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from engine_helpers import tiny_config

    from semparts_reid.engine.batches import EpochBatches

    a, b = tiny_pair
    run = EpochBatches(a, b, tiny_config(str(tmp_path), num_workers=0), _data_cfg())
    _epoch(run, "source", 0)
    assert run._loaders == {}


@pytest.mark.slow
def test_resume_with_workers_reproduces_the_losses(tiny_pair, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from engine_helpers import tiny_config, tiny_model

    from semparts_reid.engine.trainer import DomainAdaptTrainer

    a, b = tiny_pair

    def make(out: str) -> DomainAdaptTrainer:
        cfg = tiny_config(out, epochs=2, num_workers=2, camstyle=True)
        return DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, cfg)

    full = make(str(tmp_path / "full"))
    full.fit()
    part = make(str(tmp_path / "part"))
    part.adapt(1)
    resumed = make(str(tmp_path / "resumed"))
    resumed.resume(tmp_path / "part" / "last.pt")
    resumed.fit()
    losses = [[r[k] for k in ("epoch", "loss", "target_memory", "part_map")]
              for r in full.history]
    assert [[r[k] for k in ("epoch", "loss", "target_memory", "part_map")]
            for r in resumed.history] == losses


def test_which_domains_ship_part_maps(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from engine_helpers import tiny_config

    from semparts_reid.engine.batches import EpochBatches

    def ships(part_model: bool = True, **kw) -> tuple[bool, bool]:  # type: ignore[no-untyped-def]
        run = EpochBatches(None, None, tiny_config(str(tmp_path), **kw), _data_cfg(),
                           part_model=part_model)
        return run.ships_parts("source"), run.ships_parts("target")

    assert ships() == (True, False)  # the target's maps are withheld by default
    assert ships(target_part_maps=True) == (True, True)  # "auto" reads maps where they exist
    assert ships(target_part_maps=True, target_part_loss=False) == (True, False)
    assert ships(part_labels="gt", target_part_loss=False) == (True, False)
    for source in ("pseudo", "band", "none"):  # no map is read for these
        assert ships(part_labels=source) == (False, False)
    assert ships(part_model=False) == (False, False)


def test_collate_summarises_the_part_labels_on_the_host() -> None:
    from semparts_reid.engine.loaders import collate_batch

    full = torch.zeros(4, 2, dtype=torch.uint8)
    none = torch.full((4, 2), 255, dtype=torch.uint8)
    item = lambda parts: {"image": torch.zeros(3, 4, 2), "parts": parts, "index": 0}  # noqa: E731
    batch = collate_batch([item(full), item(none)])
    assert batch["parts_known"] == "some" and batch["has_parts"].tolist() == [True, False]
    assert collate_batch([item(full)] * 2)["parts_known"] == "all"
    assert collate_batch([item(none)] * 2)["parts_known"] == "none"
    assert "parts_known" not in collate_batch([{"image": torch.zeros(1)}])
    assert collate_batch([1, 2]).tolist() == [1, 2]


def test_move_batch_copies_non_blocking_only_to_cuda(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from semparts_reid.engine.loaders import move_batch

    calls: list[tuple[str, bool]] = []

    def fake_to(self, device, non_blocking=False, **kw):  # type: ignore[no-untyped-def]
        calls.append((str(device), non_blocking))
        return self

    monkeypatch.setattr(torch.Tensor, "to", fake_to)
    for device in ("cuda:0", "cpu"):
        calls.clear()
        policy = SimpleNamespace(
            device=torch.device(device),
            prepare_input=lambda x, non_blocking=False: fake_to(x, "img", non_blocking),
        )
        out = move_batch({"image": torch.zeros(1, 3, 2, 2), "pid": torch.zeros(1),
                          "parts_known": "all"}, policy)  # type: ignore[arg-type]
        assert out["parts_known"] == "all"
        assert [nb for _, nb in calls] == [device != "cpu"] * 2


def _loader_batches(tiny_pair, staged: bool, n: int = 2) -> list[dict]:  # type: ignore[no-untyped-def]
    from engine_helpers import tiny_config

    from semparts_reid.engine.loaders import build_train_dataset, build_train_loader, move_batch
    from semparts_reid.precision import resolve_precision

    _, b = tiny_pair
    cfg = tiny_config("unused", camstyle=True)
    data = build_train_dataset(b.train, cfg, _data_cfg(), camstyle=True, staged=staged)
    loader = build_train_loader(data, [r.pid for r in b.train], cfg, global_batch=8, steps=n,
                                seed=5)
    policy = resolve_precision("cpu", "fp32", channels_last=False)
    torch.manual_seed(0)
    return [move_batch(x, policy) for x in loader]


def test_staged_uint8_batches_finish_to_the_same_images(tiny_pair) -> None:  # type: ignore[no-untyped-def]
    """The trainer's uint8 path (collated as PendingImages, finished by move_batch) gives
    the batches of the float path, bit for bit."""
    assert _same(_loader_batches(tiny_pair, staged=True), _loader_batches(tiny_pair, False))


def test_pending_images_are_finished_where_they_are_moved() -> None:
    from semparts_reid.engine.loaders import PendingImages, TrainCollate, move_batch
    from semparts_reid.precision import resolve_precision

    g = torch.Generator().manual_seed(0)

    def item(i: int) -> dict:
        noise = torch.randn(3, 2, 3, generator=g)
        return {"image": torch.randint(0, 256, (3, 6, 4), dtype=torch.uint8, generator=g),
                "image_erase": (1, 0, noise) if i % 2 else None, "index": i}

    items = [item(i) for i in range(4)]
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.3, 0.4)
    now = TrainCollate(mean, std)([dict(x) for x in items])
    later = TrainCollate(mean, std, defer=True)([dict(x) for x in items])
    assert isinstance(later["image"], PendingImages) and len(later["image"].boxes) == 2
    assert later["image"].pixels.dtype == torch.uint8 and later["index"].tolist() == [0, 1, 2, 3]
    moved = move_batch(later, resolve_precision("cpu", "fp32", channels_last=True))
    assert moved["image"].is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(moved["image"], now["image"])
    assert torch.equal(now["image"][1, :, 1:3, 0:3], items[1]["image_erase"][2])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_pending_images_pin_and_finish_on_the_gpu() -> None:
    from semparts_reid.engine.loaders import TrainCollate, move_batch
    from semparts_reid.precision import resolve_precision

    items = [{"image": torch.full((3, 4, 4), 200, dtype=torch.uint8),
              "image_erase": (0, 0, torch.ones(3, 2, 2))} for _ in range(2)]
    cpu = TrainCollate((0.5,) * 3, (0.5,) * 3)([dict(x) for x in items])["image"]
    pending = TrainCollate((0.5,) * 3, (0.5,) * 3, defer=True)(items)
    pinned = pending["image"].pin_memory()
    assert pinned.pixels.is_pinned() and pinned.noise.is_pinned()
    pending["image"] = pinned
    moved = move_batch(pending, resolve_precision("cuda", "fp32"))
    # a GPU may divide by a scalar as a multiplication by its reciprocal: ulps apart
    assert moved["image"].is_cuda and torch.allclose(moved["image"].cpu(), cpu, rtol=0, atol=1e-6)


def test_trainer_close_stops_the_loader_workers(tiny_pair, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from engine_helpers import tiny_config, tiny_model

    from semparts_reid.engine.trainer import DomainAdaptTrainer

    a, b = tiny_pair
    trainer = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b,
                                 tiny_config(str(tmp_path), num_workers=1, epochs=1))
    trainer.batches.iterator("source", "adapt", 0, 1)
    assert set(trainer.batches._loaders) == {"source"}
    trainer.close()
    assert trainer.batches._loaders == {}
