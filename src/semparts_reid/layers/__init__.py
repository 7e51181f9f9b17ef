"""Layer 0 network building blocks: pure tensor code, no I/O, no global state."""
