"""semparts-reid: cross-domain person re-identification with semantic part features.

The names below are the stable public API. They are imported lazily (PEP 562), so
``import semparts_reid`` is cheap and a third-party pipeline that only needs, say,
:func:`evaluate_cmc_map` never pays for the model or data modules.

Example:
    >>> from semparts_reid import build_model, evaluate_cmc_map
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> module (relative to this package) that defines it
_EXPORTS: dict[str, str] = {
    # errors: bad user input, raised by every layer
    "InputError": ".errors",
    # layer 0: pure tensor code
    "PartMaskPooling": ".layers.part_pooling",
    "part_mask_pool": ".layers.part_pooling",
    "SemanticPartClassifier": ".layers.part_classifier",
    "ExemplarMemory": ".memory",
    "ClusterMemory": ".memory",
    "evaluate_cmc_map": ".metrics.rank",
    "ReIDMetrics": ".metrics.rank",
    "compute_distance": ".metrics.distance",
    "re_ranking": ".metrics.rerank",
    "part_aware_distance": ".metrics.part_distance",
    # layer 1: models, data, weights
    "build_model": ".models.factory",
    "list_models": ".models.factory",
    "SemPartsNet": ".models.sempartsnet",
    "ReIDOutput": ".models.sempartsnet",
    "build_dataset": ".data.datasets",
    "list_datasets": ".data.datasets",
    "download_weights": ".hub",
    "load_pretrained": ".hub",
    "list_pretrained": ".hub",
    # layer 2: training and inference
    "DomainAdaptTrainer": ".engine.trainer",
    "TrainConfig": ".engine.config",
    "FeatureExtractor": ".inference.extractor",
    "export_onnx": ".inference.export",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'semparts_reid' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # cache: later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static checkers and IDEs see the real objects
    from .data.datasets import build_dataset, list_datasets
    from .engine.config import TrainConfig
    from .engine.trainer import DomainAdaptTrainer
    from .errors import InputError
    from .hub import download_weights, list_pretrained, load_pretrained
    from .inference.export import export_onnx
    from .inference.extractor import FeatureExtractor
    from .layers.part_classifier import SemanticPartClassifier
    from .layers.part_pooling import PartMaskPooling, part_mask_pool
    from .memory import ClusterMemory, ExemplarMemory
    from .metrics.distance import compute_distance
    from .metrics.part_distance import part_aware_distance
    from .metrics.rank import ReIDMetrics, evaluate_cmc_map
    from .metrics.rerank import re_ranking
    from .models.factory import build_model, list_models
    from .models.sempartsnet import ReIDOutput, SemPartsNet
