"""Recipes: named, documented sets of :class:`~.config.TrainConfig` choices, one per method.

A recipe says which choices make a method; everything it does not name keeps the
``TrainConfig()`` default, and any field can still be changed on top
(``TrainConfig.from_recipe("parts-aux", epochs=20)``, ``semparts-reid adapt --recipe
parts-aux --epochs 20``). ``docs/recipes.md`` describes each one and where it was
measured.

* ``paper``: the seed paper's method, ECN's exemplar memory + semantic parts with
  identity and memory losses on the global and the three part features. It is
  ``TrainConfig()`` exactly.
* ``parts-aux``: ECN with the pixel-wise part-map loss only (the part features get no
  identity or memory loss), retrieval on global + parts.
* ``cluster-parts``: the clustering objective + semantic parts, with the current
  cluster defaults.
* ``video``: ``cluster-parts`` on a camera's own video, with the video constraints and a
  human parser's maps as the target's part labels (needs ``parser_maps``).

The registry is :data:`RECIPES`; a new method adds one entry (:func:`register_recipe`).
This module is data only (it does not import the config, which imports it to build
``TrainConfig.from_recipe``); ``tests/engine/test_config_groups.py`` builds every
recipe's config.

Example:
    >>> from semparts_reid.engine.config import TrainConfig
    >>> list_recipes()[:3]
    ['paper', 'parts-aux', 'cluster-parts']
    >>> cfg = TrainConfig.from_recipe("parts-aux", epochs=2)
    >>> cfg.parts.use_parts, cfg.parts.part_labels, cfg.runtime.eval_mode, cfg.optim.epochs
    (False, 'auto', 'concat', 2)
    >>> TrainConfig.from_recipe("paper") == TrainConfig()
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InputError

__all__ = ["RECIPES", "Recipe", "get_recipe", "list_recipes", "register_recipe"]


@dataclass(frozen=True)
class Recipe:
    """One method as a frozen set of :class:`~.config.TrainConfig` choices.

    Attributes:
        name: the name ``--recipe`` and :meth:`TrainConfig.from_recipe` take.
        summary: what the method is, in one sentence.
        choices: ``(flat field name, value)`` pairs set on top of ``TrainConfig()``:
            the choices that make the method (some equal the defaults; they are named
            so the recipe says them whatever the defaults become).
        measured: where its accuracy was measured.
    """

    name: str
    summary: str
    choices: tuple[tuple[str, Any], ...]
    measured: str

    def overrides(self) -> dict[str, Any]:
        """:attr:`choices` as a dict (flat field names)."""
        return dict(self.choices)


#: every recipe by name, in the order ``--recipe`` lists them
RECIPES: dict[str, Recipe] = {}


def register_recipe(recipe: Recipe) -> Recipe:
    """Add ``recipe`` to :data:`RECIPES`; a name that is taken raises ``InputError``."""
    if recipe.name in RECIPES:
        raise InputError(f"recipe {recipe.name!r} exists already")
    RECIPES[recipe.name] = recipe
    return recipe


def list_recipes() -> list[str]:
    """The names of the registered recipes."""
    return list(RECIPES)


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; an unknown name raises ``InputError`` listing them."""
    try:
        return RECIPES[name]
    except KeyError:
        raise InputError(f"unknown recipe {name!r}; known: {list_recipes()}") from None


register_recipe(Recipe(
    name="paper",
    summary="the seed paper's method: ECN's exemplar memory + semantic parts, identity and "
    "memory losses on the global and the head / upper / lower features, the part-map loss "
    "on both domains; retrieval on the global feature. TrainConfig()'s defaults.",
    choices=(("target_objective", "ecn"), ("use_parts", True), ("part_labels", "auto")),
    measured="the demo's 'ECN + semantic parts' row (README; docs/semantic_parts.md, "
    "'Measured on the synthetic domains'; benchmarks/RESULTS.md)",
))
register_recipe(Recipe(
    name="parts-aux",
    summary="ECN + the pixel-wise part-map loss only: the part features get no identity or "
    "memory loss (use_parts=False), the part classifier still learns the maps; retrieval "
    "on the global + part features (eval_mode='concat').",
    choices=(("target_objective", "ecn"), ("use_parts", False), ("part_labels", "auto"),
             ("eval_mode", "concat")),
    measured="'ECN + part-map loss only' of bench_semantic_parts.py --diagnostics "
    "(docs/semantic_parts.md, 'Which half of \"+ semantic parts\" costs accuracy'): "
    "global + parts mAP 34.9 / 60.2 / 41.1 on a->b / b->a / a->c against 30.4 / 46.8 / "
    "33.8 for ECN; the best variant over ECN on the synthetic pair",
))
register_recipe(Recipe(
    name="cluster-parts",
    summary="the clustering objective (DBSCAN pseudo-identities + cluster memory) + "
    "semantic parts, with part-guided refinement of the global target and no part "
    "smoothing (the current cluster defaults).",
    choices=(("target_objective", "cluster"), ("use_parts", True), ("part_labels", "auto"),
             ("cluster_refine_global", True), ("cluster_part_smoothing", False)),
    measured="the demo's 'Clustering + semantic parts' row and the clustering table of "
    "docs/semantic_parts.md (mAP global / global + parts 32.0 / 33.2, 53.9 / 60.3, "
    "39.0 / 43.3 on a->b / b->a / a->c)",
))


register_recipe(Recipe(
    name="video",
    summary="a camera's own unlabeled video as the target: clustering + semantic parts, "
    "the video's tracklets as must-links and same-frame crops as cannot-links "
    "(video_constraints; the IoU tracker links crops without a tracklet), and a human "
    "parser's maps as the target's part labels (part_labels='parser': pass --parser-maps "
    "DIR, the output of 'semparts-reid parse'; crops without a pose keep the classifier's "
    "own labels); retrieval on the global + part features.",
    choices=(("target_objective", "cluster"), ("use_parts", True), ("part_labels", "parser"),
             ("parser_domains", "target"), ("video_constraints", True),
             ("video_tracker", "iou"), ("cluster_refine_global", True),
             ("cluster_part_smoothing", False), ("eval_mode", "concat")),
    measured="'+ video, parser labels' of benchmarks/bench_real_camera.py (docs/real_cameras.md): "
    "5 seeds on the temporal split of two MOTChallenge 2015 sequences, the best of the three "
    "uses of the parser's maps measured there",
))
