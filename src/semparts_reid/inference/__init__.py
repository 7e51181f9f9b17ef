"""Layer 2 inference: feature extraction, tracker adapters, export.

* :class:`FeatureExtractor`: paths, PIL images, numpy crops or tensors -> L2-normalised
  features, batched, with the shared precision policy (bf16 autocast + channels_last
  where the hardware runs them natively).
* :class:`TrackerEmbedder`: the deep-sort-realtime (``predict``) and boxmot
  (``get_features``) embedder contracts.
* :func:`evaluate_model`: THE evaluation path (trainer, CLI and demo): features from a
  :class:`FeatureExtractor` streamed into ``evaluate_cmc_map``.
* :func:`export_onnx`: ONNX export checked against PyTorch (``onnx`` extra).
* :func:`predict_part_maps`: a model's part probabilities at image resolution;
  :func:`rank_gallery`: the top-k gallery lists of a few queries (for figures).
"""

from .evaluation import evaluate_model, extract_split
from .export import export_onnx
from .extractor import FeatureExtractor, PartFeatures, load_model_from_checkpoint
from .fusion import fuse_resnet_conv_bn
from .part_maps import predict_part_maps
from .ranking import RankedResults, pick_queries, rank_gallery, top_k_ranked
from .trackers import TrackerEmbedder, clip_boxes, crop_boxes

__all__ = [
    "FeatureExtractor",
    "PartFeatures",
    "RankedResults",
    "TrackerEmbedder",
    "clip_boxes",
    "crop_boxes",
    "evaluate_model",
    "extract_split",
    "export_onnx",
    "fuse_resnet_conv_bn",
    "load_model_from_checkpoint",
    "pick_queries",
    "predict_part_maps",
    "rank_gallery",
    "top_k_ranked",
]
