"""The XLA-friendly nearest upsampling equals Keras' own and compiles with XLA on the CPU."""

import numpy as np
import pytest

pytestmark = pytest.mark.tf


@pytest.mark.parametrize(
    ("shape", "size", "dims"),
    [((2, 5, 7, 3), (2, 2), 2), ((1, 4, 6, 2), (3, 2), 2), ((2, 3, 4, 5, 2), (2, 2, 2), 3)],
)
def test_same_values_as_keras_and_a_gradient_xla_compiles(shape, size, dims):
    from napari_celldenoise.deep._tf import import_tensorflow, keras
    from napari_celldenoise.deep.upsampling import xla_friendly_layers

    tf = import_tensorflow()
    ours = xla_friendly_layers(tf)[dims - 2](size)
    theirs = (keras().layers.UpSampling2D if dims == 2 else keras().layers.UpSampling3D)(size)
    x = tf.constant(np.random.default_rng(0).normal(size=shape).astype(np.float32))
    np.testing.assert_array_equal(ours(x).numpy(), theirs(x).numpy())

    weights = tf.constant(np.random.default_rng(1).normal(size=ours(x).shape).astype(np.float32))

    @tf.function(jit_compile=True)
    def gradient(v):
        with tf.GradientTape() as tape:
            tape.watch(v)
            loss = tf.reduce_sum(ours(v) * weights)
        return tape.gradient(loss, v)

    # each input pixel's gradient is the sum of the weights of the pixels it was copied to
    expected = weights.numpy()
    for axis, factor in enumerate(size, start=1):
        moved = np.moveaxis(expected, axis, -1)
        moved = moved.reshape(*moved.shape[:-1], -1, factor).sum(-1)
        expected = np.moveaxis(moved, -1, axis)
    np.testing.assert_allclose(gradient(x).numpy(), expected, rtol=1e-5, atol=1e-5)
