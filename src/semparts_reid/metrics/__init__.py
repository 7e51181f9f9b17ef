"""Layer 0 evaluation: distances, CMC/mAP under the re-ID protocols, re-ranking."""
