"""Layer 0 evaluation: distances, CMC/mAP under the re-ID protocols, re-ranking, and the
sparse k-reciprocal encoding (re-ranking and the Jaccard distance for clustering), and the
re-association protocol of a video (``reassociation``), and multi-object tracking metrics
(``tracking``: IDF1, MOTA, ID switches through TrackEval, imported only when called)."""

from .kreciprocal import jaccard_distance, k_reciprocal_encoding
from .reassociation import ReassociationMetrics, evaluate_reassociation, reassociation_queries
from .tracking import TrackingMetrics, evaluate_tracking

__all__ = [
    "ReassociationMetrics",
    "TrackingMetrics",
    "evaluate_reassociation",
    "evaluate_tracking",
    "jaccard_distance",
    "k_reciprocal_encoding",
    "reassociation_queries",
]
