"""Deep denoising: configs, the method registry, training and prediction (TensorFlow lazy)."""

# the methods register their configs in the TrainConfig union when their modules are imported
from . import registry as _registry  # noqa: F401
