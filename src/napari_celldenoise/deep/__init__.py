"""Self-supervised deep denoising (TensorFlow, imported lazily; runs in a child process)."""
