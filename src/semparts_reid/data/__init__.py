"""Layer 1 data: dataset layouts, synthetic domains, part labels, transforms, samplers."""
