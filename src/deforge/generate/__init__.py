"""Image generators: the interface (base), the diffusers backend and the tiny test model."""
