"""Remote training: a job folder in Google Cloud Storage, the worker that trains it, and the
launchers that start a worker on a Cloud TPU VM, in Colab or on this computer (no Qt)."""
