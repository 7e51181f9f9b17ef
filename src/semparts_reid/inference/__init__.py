"""Layer 2 inference: feature extraction, tracker adapters, export."""
