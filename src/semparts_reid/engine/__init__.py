"""Layer 2 training: configuration, the domain-adaptation trainer, checkpoints."""
