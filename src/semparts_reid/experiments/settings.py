"""What an experiment runs: the demo's sizes and schedule, its methods, its directions.

:class:`DemoSettings` fixes the data, network, sizes and schedule; an
:class:`Adaptation` is one adapted method (a row of the table); :data:`ADAPTATIONS` are
the demo's four methods and :data:`FEATURES` the two retrieval features every method is
scored with. The folders a run writes are named here once (:func:`source_checkpoint`,
:func:`adapted_checkpoint`, :func:`method_folder`).

Example:
    >>> [m.name for m in chosen_adaptations(DemoSettings(objectives=("ecn",)))]
    ['ECN', 'ECN + semantic parts']
    >>> method_folder(ADAPTATIONS[1])
    'ecn_semantic_parts'
    >>> source_checkpoint(Path("out/a2b")).as_posix()
    'out/a2b/source/source_final.pt'
    >>> synthetic_spec("a", DemoSettings.quick(), seed=3)
    'synthetic:a?size=tiny&seed=3'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "ADAPTATIONS", "DIRECTIONS", "FEATURES", "Adaptation", "DemoSettings", "adapted_checkpoint",
    "chosen_adaptations", "is_part_figure_method", "label_source", "method_folder",
    "source_checkpoint", "synthetic_spec",
]  # fmt: skip

#: the demo's directions: key -> (source domain, target domain) of the synthetic pair
DIRECTIONS = {"a2b": ("a", "b"), "b2a": ("b", "a")}


@dataclass(frozen=True)
class DemoSettings:
    """Sizes and schedule of the demo (``quick`` is the tiny preset the tests run)."""

    dataset_size: str = "default"
    backbone: str = "resnet18"
    input_size: tuple[int, int] = (80, 40)
    source_epochs: int = 8
    adapt_epochs: int = 4
    batch_size: int = 32
    target_batch_size: int = 32
    num_instances: int = 4
    neighbour_start_epoch: int = 2
    lr: float = 3.5e-4
    parts_eval_mode: str = "concat"
    target_part_maps: bool = False
    unlabeled_part_labels: Literal["self", "pseudo", "none"] = "self"
    self_label_class_portion: float = 0.0
    objectives: tuple[str, ...] = ("ecn", "cluster")

    @classmethod
    def quick(cls) -> DemoSettings:
        """The tiny preset: tiny domains, 64x32 inputs, 2 source and 1 adaptation epoch."""
        return cls(
            dataset_size="tiny",
            input_size=(64, 32),
            source_epochs=2,
            adapt_epochs=1,
            batch_size=16,
            target_batch_size=16,
            neighbour_start_epoch=0,
        )

    @property
    def arch(self) -> str:
        """The network's registry name: ``semparts_<backbone>``."""
        return f"semparts_{self.backbone}"


@dataclass(frozen=True)
class Adaptation:
    """One adapted method of the table: its name, target objective and part use.

    ``parts``: identity and target losses on the head / upper / lower features too
    (``False``: the global feature only). ``part_map_loss``: the pixel-wise part loss
    during adaptation; ``None`` follows ``parts`` (the demo's methods). The benchmarks'
    diagnostic rows set it apart from ``parts`` to separate the two effects.
    ``target_part_maps``: this method trains with the target's ground-truth part maps
    whatever the settings say (an oracle that real data does not have: only for the
    benchmarks' diagnostic rows, which name it; the demo's methods never set it).
    ``detach_masks``: adapt with :class:`~semparts_reid.models.SemPartsNet`'s
    ``detach_masks=True`` (the part classifier learns from the part-map loss only, not
    from the part features' identity and memory losses through its masks).
    ``overrides``: ``(field, value)`` pairs of :class:`~semparts_reid.engine.config.TrainConfig`
    set for this adaptation after everything above (a diagnostic row's one change, e.g.
    ``(("part_head_weight", 1 / 3),)``; the demo's methods have none). An unknown field
    is refused by :func:`~semparts_reid.experiments.train_config`, naming it.
    """

    name: str
    objective: str
    parts: bool
    part_map_loss: bool | None = None
    target_part_maps: bool = False
    detach_masks: bool = False
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def trains_part_maps(self) -> bool:
        """Whether the adaptation keeps the pixel-wise part loss."""
        return self.parts if self.part_map_loss is None else self.part_map_loss


ADAPTATIONS = (
    Adaptation("ECN", "ecn", False),
    Adaptation("ECN + semantic parts", "ecn", True),
    Adaptation("Clustering", "cluster", False),
    Adaptation("Clustering + semantic parts", "cluster", True),
)
#: the two retrieval features every method is scored with: (row suffix, eval mode)
FEATURES = (("global", "global"), ("global + parts", "concat"))


def method_folder(method: Adaptation) -> str:
    """The name of the folder a method's adaptation run writes to under a direction's
    output folder: its name in lower case, ``" + "`` and spaces replaced by ``_`` (e.g.
    ``"ECN + semantic parts"`` -> ``"ecn_semantic_parts"``); any other character but a
    letter, a digit, ``_``, ``-`` or ``,`` (the ``/`` of ``"part heads 1/3"``) becomes
    ``_`` too, so the folder is one path component."""
    name = method.name.lower().replace(" + ", "_").replace(" ", "_")
    return re.sub(r"[^\w,-]", "_", name)


def source_checkpoint(direction_dir: Path) -> Path:
    """The source model of a direction: ``direction_dir / "source" / "source_final.pt"``
    (every adaptation of the direction starts from it)."""
    return Path(direction_dir) / "source" / "source_final.pt"


def adapted_checkpoint(direction_dir: Path, method: Adaptation) -> Path:
    """The model ``method``'s adaptation leaves in a direction's folder."""
    return Path(direction_dir) / method_folder(method) / "adapt_final.pt"


def synthetic_spec(domain: str, settings: DemoSettings, seed: int) -> str:
    """The dataset spec of synthetic ``domain`` at the settings' size and ``seed``."""
    return f"synthetic:{domain}?size={settings.dataset_size}&seed={seed}"


def label_source(settings: DemoSettings) -> str:
    """Where the target's part labels came from, for the table header."""
    if settings.target_part_maps:
        return "target part maps: synthetic ground truth (--target-part-maps; real data has none)"
    return ("target part maps: withheld (as on real data); part loss on the target from "
            "the classifier's own confident predictions")


def chosen_adaptations(settings: DemoSettings) -> list[Adaptation]:
    """The methods of :data:`ADAPTATIONS` whose objective ``settings.objectives`` names."""
    return [m for m in ADAPTATIONS if m.objective in settings.objectives]


def is_part_figure_method(method: Adaptation) -> bool:
    """The method whose model draws ``part_maps.png`` and ``ranked.png``: ECN + parts."""
    return method == ADAPTATIONS[1]
