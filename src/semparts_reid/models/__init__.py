"""Layer 1 models: backbones, the semantic-part network and the model factory."""
