"""Layer 0 evaluation: distances, CMC/mAP under the re-ID protocols, re-ranking, and the
sparse k-reciprocal encoding (re-ranking and the Jaccard distance for clustering)."""

from .kreciprocal import jaccard_distance, k_reciprocal_encoding

__all__ = ["jaccard_distance", "k_reciprocal_encoding"]
