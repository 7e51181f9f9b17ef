"""Layer 0 evaluation: distances, CMC/mAP under the re-ID protocols, re-ranking, and the
sparse k-reciprocal encoding (re-ranking and the Jaccard distance for clustering), and the
re-association protocol of a video (``reassociation``)."""

from .kreciprocal import jaccard_distance, k_reciprocal_encoding
from .reassociation import ReassociationMetrics, evaluate_reassociation, reassociation_queries

__all__ = [
    "ReassociationMetrics",
    "evaluate_reassociation",
    "jaccard_distance",
    "k_reciprocal_encoding",
    "reassociation_queries",
]
