"""Pretrained weights: a registry, a resumable verified downloader and a key-matching loader.

One job per module:

* :mod:`.registry`: :func:`list_pretrained` / :func:`get_pretrained_cfg` (name -> URL,
  sha256, architecture, data config, licence). It holds torchvision's ImageNet
  ResNet-18/34/50 weights and has room for re-ID checkpoints (:func:`register_pretrained`).
* :mod:`.sources`: :func:`download_weights`, a registry name, URL or local file to a
  verified local path.
* :mod:`.download`: the machinery behind it: streams to a partial file in the cache folder
  with timeouts, bounded retries with back-off and HTTP ``Range`` resume, verifies the
  sha256, then moves the file into place atomically; one download per file across
  processes. ``SEMPARTS_REID_OFFLINE=1`` uses only the cache.
* :mod:`.weights`: :func:`load_weights_file` (``torch.load(weights_only=True)``),
  :func:`load_matching_weights` and :func:`load_pretrained`: ``module.`` / ``_orig_mod.``
  prefixes stripped, missing, unexpected and shape-mismatched keys reported in one summary
  (strict for our checkpoints, lenient for ImageNet backbones, which must still fill half
  of the backbone's weight kernels, else :class:`WeightsMismatchError`).
* :mod:`.peer_formats`: torchreid and fast-reid ResNet-50 keys renamed to ours
  (:func:`detect_weights_format`, :func:`map_peer_state`), so ``load_pretrained(model,
  "their.pth")`` fills the backbone, the BNNeck and (same classes) the classifier.
* :mod:`.constants`: ``IMAGENET_MEAN`` / ``IMAGENET_STD``.

Cache folder: ``$SEMPARTS_REID_HOME/weights`` (default ``~/.cache/semparts_reid/weights``).

Example:
    >>> sorted(list_pretrained(kind="backbone"))[:2]
    ['resnet18.tv_in1k', 'resnet34.tv_in1k']
"""

from __future__ import annotations

from .constants import IMAGENET_MEAN, IMAGENET_STD
from .download import (
    ENV_HOME,
    ENV_OFFLINE,
    ChecksumError,
    DownloadError,
    file_sha256,
    get_cache_dir,
)
from .peer_formats import WEIGHT_FORMATS, PeerState, detect_weights_format, map_peer_state
from .registry import (
    PretrainedCfg,
    get_pretrained_cfg,
    list_pretrained,
    register_pretrained,
    resolve_pretrained_name,
)
from .sources import download_weights
from .weights import (
    MIN_FILL,
    LoadReport,
    StrictWeightsError,
    WeightsMismatchError,
    load_matching_weights,
    load_pretrained,
    load_weights_file,
)

__all__ = [
    "ENV_HOME",
    "ENV_OFFLINE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MIN_FILL",
    "WEIGHT_FORMATS",
    "ChecksumError",
    "DownloadError",
    "LoadReport",
    "PeerState",
    "PretrainedCfg",
    "StrictWeightsError",
    "WeightsMismatchError",
    "detect_weights_format",
    "download_weights",
    "file_sha256",
    "get_cache_dir",
    "get_pretrained_cfg",
    "list_pretrained",
    "load_matching_weights",
    "load_pretrained",
    "load_weights_file",
    "map_peer_state",
    "register_pretrained",
    "resolve_pretrained_name",
]
