"""``train`` / ``adapt``: the cluster objective's flags reach the TrainConfig."""

from __future__ import annotations

import pytest
from cli_helpers import TINY

from semparts_reid.cli import main
from semparts_reid.cli.main import build_parser
from semparts_reid.cli.train import config_for


def _config(*argv: str):  # noqa: ANN202 - a TrainConfig
    args = build_parser().parse_args(["adapt", "--source", "s", "--target", "t", *argv])
    return config_for(args)


def test_cluster_flags_reach_the_config() -> None:
    cfg = _config("--target-objective", "cluster", "--cluster-eps", "0.45",
                  "--cluster-min-samples", "3", "--cluster-k1", "15", "--cluster-k2", "4",
                  "--cluster-temperature", "0.07", "--cluster-momentum", "0.2",
                  "--cluster-hard-update", "--no-cluster-refine-global",
                  "--no-cluster-part-smoothing", "--cluster-beta", "0.6",
                  "--cluster-agreement-k", "10", "--cluster-images-per-identity", "7")
    assert cfg.target_objective == "cluster"
    c = cfg.cluster
    assert (c.cluster_eps, c.cluster_min_samples, c.cluster_k1, c.cluster_k2) == (0.45, 3, 15, 4)
    assert (c.cluster_temperature, c.cluster_momentum, c.cluster_hard_update) == (0.07, 0.2, True)
    assert (cfg.cluster.cluster_refine_global, cfg.cluster.cluster_part_smoothing) == (False, False)
    assert (cfg.cluster.cluster_beta, cfg.cluster.cluster_agreement_k) == (0.6, 10)
    assert cfg.cluster.cluster_images_per_identity == 7.0
    default = _config()
    d = default.cluster
    assert default.target_objective == "ecn" and d.cluster_images_per_identity is None
    assert d.cluster_refine_global and not d.cluster_part_smoothing
    assert _config("--cluster-part-smoothing").cluster.cluster_part_smoothing
    c = _config("--cluster-images-per-identity", "none").cluster
    assert c.cluster_images_per_identity is None


def test_unknown_objective_and_bad_eps_are_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["adapt", "--source", "s", "--target", "t",
                                   "--target-objective", "spcl"])
    code = main(["train", "--source", TINY.format("a"), "--cluster-eps", "1.5"])
    assert code == 2
    assert "cluster_eps=1.5: expected 0 < eps < 1" in capsys.readouterr().err
