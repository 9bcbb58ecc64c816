"""Nearest-neighbour upsampling that XLA compiles on the CPU as well as on TPUs.

Keras' ``UpSampling2D`` resizes with ``tf.image.resize(..., "nearest")``, whose gradient
``ResizeNearestNeighborGrad`` has an XLA kernel for TPUs but none for the CPU (TensorFlow
2.21): a training step compiled with ``jit_compile=True`` on the CPU, the stand-in for a TPU
in the tests, fails on it.
Repeating each pixel by broadcasting and reshaping gives the same values, and its gradient is
a sum over the broadcast axes, which XLA compiles on the CPU. The layers keep Keras' classes
(subclasses, no weights), so models built with them load the same weight files.

:func:`xla_friendly_layers` returns the two classes (given TensorFlow);
:func:`use_in_n2v` makes n2v's U-Net build with them.
"""

from __future__ import annotations

import functools
from typing import Any


def _repeat(tf: Any, x: Any, factors: tuple[int, ...]) -> Any:
    """``x`` (batch, *spatial, channels) with each spatial axis repeated ``factors`` times
    (one axis at a time: TensorFlow broadcasts up to rank 6 only)."""
    for axis, factor in enumerate(factors, start=1):
        if factor == 1:
            continue
        shape = tf.unstack(tf.shape(x))
        index = (slice(None),) * (axis + 1) + (None,)
        target = [*shape[: axis + 1], factor, *shape[axis + 1 :]]
        merged = [*shape[:axis], shape[axis] * factor, *shape[axis + 1 :]]
        x = tf.reshape(tf.broadcast_to(x[index], tf.stack(target)), tf.stack(merged))
    return x


@functools.cache
def xla_friendly_layers(tf: Any) -> tuple[type, type]:
    """``(UpSampling2D, UpSampling3D)``: Keras' layers whose nearest upsampling in
    ``channels_last`` repeats by broadcasting (other settings fall back to Keras' own).
    ``tf`` is TensorFlow as :func:`._tf.import_tensorflow` returns it (legacy Keras)."""
    layers = tf.keras.layers

    class UpSampling2D(layers.UpSampling2D):
        def call(self, inputs: Any) -> Any:
            if self.interpolation != "nearest" or self.data_format != "channels_last":
                return super().call(inputs)
            return _repeat(tf, inputs, tuple(int(s) for s in self.size))

    class UpSampling3D(layers.UpSampling3D):
        def call(self, inputs: Any) -> Any:
            if self.data_format != "channels_last":
                return super().call(inputs)
            return _repeat(tf, inputs, tuple(int(s) for s in self.size))

    return UpSampling2D, UpSampling3D


def use_in_n2v(tf: Any) -> None:
    """Make n2v's U-Net blocks (``n2v.nets.unet_blocks``, which look the classes up when a
    model is built) upsample with :func:`xla_friendly_layers`."""
    from n2v.nets import unet_blocks

    unet_blocks.UpSampling2D, unet_blocks.UpSampling3D = xla_friendly_layers(tf)
