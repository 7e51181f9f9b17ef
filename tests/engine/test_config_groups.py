"""The grouped ``TrainConfig``: groups, flat names, old flat checkpoints, recipes."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

import pytest

from semparts_reid.engine import config as config_module
from semparts_reid.engine.config import (
    ClusterConfig,
    OptimConfig,
    TrainConfig,
    field_choices,
    flat_fields,
)
from semparts_reid.engine.recipes import RECIPES, Recipe, get_recipe, list_recipes
from semparts_reid.errors import InputError

FLAT = Path(__file__).parent / "fixtures" / "train_config_flat.json"


def test_at_most_twelve_top_level_fields_and_every_flat_name_once() -> None:
    assert len(dataclasses.fields(TrainConfig)) <= 12
    flat = json.loads(FLAT.read_text())  # TrainConfig().to_dict() before the groups
    # every old name is still there; fields added since load with their defaults
    assert list(flat_fields()) != [] and set(flat) <= set(flat_fields())
    assert len(flat_fields()) == len(set(flat_fields()))


def test_a_flat_dict_of_an_old_checkpoint_loads_as_the_same_config() -> None:
    flat = json.loads(FLAT.read_text())
    assert TrainConfig.from_dict(flat) == TrainConfig()
    new = TrainConfig().to_flat_dict()
    assert {k: new[k] for k in flat} == flat
    changed = {**flat, "lr": 0.01, "cluster_eps": 0.5, "use_parts": False, "device": "cpu"}
    cfg = TrainConfig.from_dict(changed)
    assert (cfg.optim.lr, cfg.cluster.cluster_eps, cfg.parts.use_parts) == (0.01, 0.5, False)
    assert cfg.runtime.device == "cpu"
    assert {k: v for k, v in cfg.to_flat_dict().items() if k in flat} == changed
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg  # the nested layout too


def test_replace_routes_flat_names_and_names_the_unknown_ones() -> None:
    cfg = TrainConfig().replace(lr=1e-3, target_objective="cluster", cluster_k1=10, seed=4)
    assert (cfg.optim.lr, cfg.target_objective, cfg.cluster.cluster_k1, cfg.seed) == (
        1e-3, "cluster", 10, 4)
    assert TrainConfig().optim.lr == 3e-4  # copies, not edits
    assert cfg.replace(optim=OptimConfig(epochs=3)).optim.epochs == 3
    with pytest.raises(InputError, match=r"\['lrr', 'nope'\]"):
        TrainConfig().replace(lrr=1, nope=2)
    with pytest.raises(InputError, match=r"unknown cluster field\(s\) \['eps'\]"):
        TrainConfig.from_dict({"cluster": {"eps": 0.5}})


def test_each_group_validates_itself_from_its_literals() -> None:
    with pytest.raises(InputError, match="cluster_eps"):
        ClusterConfig(cluster_eps=1.5)
    with pytest.raises(InputError, match="optimizer='rmsprop'"):
        OptimConfig(optimizer="rmsprop")  # type: ignore[arg-type]
    assert field_choices(OptimConfig, "optimizer") == ("adam", "sgd")
    assert field_choices(TrainConfig, "target_objective") == config_module.OBJECTIVES
    # no restated choice lists: each Literal of a group is what validate() accepts
    for name, group in flat_fields().items():
        cls = type(getattr(TrainConfig(), group)) if group else TrainConfig
        tp = typing.get_type_hints(cls)[name]
        if typing.get_origin(tp) is typing.Literal:
            for value in typing.get_args(tp):
                TrainConfig().replace(**{name: value})


def test_recipes_are_registered_documented_and_paper_is_the_default() -> None:
    assert list_recipes()[:3] == ["paper", "parts-aux", "cluster-parts"]
    assert TrainConfig.from_recipe("paper") == TrainConfig()
    aux = TrainConfig.from_recipe("parts-aux")
    assert (aux.target_objective, aux.parts.use_parts, aux.parts.part_labels) == (
        "ecn", False, "auto")
    assert aux.runtime.eval_mode == "concat"
    cp = TrainConfig.from_recipe("cluster-parts", epochs=3)
    assert (cp.target_objective, cp.parts.use_parts, cp.optim.epochs) == ("cluster", True, 3)
    assert cp.cluster == ClusterConfig()  # the current cluster defaults
    for recipe in RECIPES.values():  # each one's choices are known, valid fields
        assert recipe.summary and recipe.measured and isinstance(recipe, Recipe)
        assert TrainConfig.from_recipe(recipe.name).to_flat_dict().items() >= (
            recipe.overrides().items())
    with pytest.raises(InputError, match="unknown recipe 'nope'"):
        get_recipe("nope")
    with pytest.raises(dataclasses.FrozenInstanceError):
        RECIPES["paper"].name = "x"  # type: ignore[misc]


def test_docs_describe_every_recipe() -> None:
    text = (Path(__file__).parents[2] / "docs" / "recipes.md").read_text()
    for name in list_recipes():
        assert f"`{name}`" in text, name
