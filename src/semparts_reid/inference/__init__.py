"""Layer 2 inference: feature extraction, tracker adapters, export.

* :class:`FeatureExtractor`: paths, PIL images, numpy crops or tensors -> L2-normalised
  features, batched, with the shared precision policy (bf16 autocast + channels_last
  where the hardware runs them natively).
* :class:`TrackerEmbedder`: the deep-sort-realtime (``predict``) and boxmot
  (``get_features``) embedder contracts.
* :func:`evaluate_model`: THE evaluation path (trainer, CLI and demo): features from a
  :class:`FeatureExtractor` streamed into ``evaluate_cmc_map``.
* :func:`export_onnx`: ONNX export checked against PyTorch (``onnx`` extra).
"""

from .evaluation import SplitFeatures, evaluate_model, extract_split
from .export import export_onnx
from .extractor import FeatureExtractor, PartFeatures, load_model_from_checkpoint
from .fusion import fuse_resnet_conv_bn
from .trackers import TrackerEmbedder, clip_boxes, crop_boxes

__all__ = [
    "FeatureExtractor",
    "PartFeatures",
    "TrackerEmbedder",
    "SplitFeatures",
    "clip_boxes",
    "crop_boxes",
    "evaluate_model",
    "extract_split",
    "export_onnx",
    "fuse_resnet_conv_bn",
    "load_model_from_checkpoint",
]
