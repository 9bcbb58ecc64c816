"""Predictors: callables ``window -> denoised window`` that :func:`.tiling.predict_tiled` runs.

The network wrappers are built by each method's predictor factory (``deep/methods/``);
:class:`Stabilised` and :class:`Dihedral` wrap any predictor.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class KerasPredictor:
    """A Keras network on normalised data: ``(window - mean) / std`` in, back to image units."""

    def __init__(self, keras_model: Any, mean: float, std: float):
        self.model, self.mean, self.std = keras_model, mean, std

    def __call__(self, window: np.ndarray) -> np.ndarray:
        x = ((window - self.mean) / self.std)[None, ..., None]
        return self.model(x, training=False).numpy()[0, ..., 0] * self.std + self.mean


class Stabilised:
    """Run a predictor on Anscombe-stabilised data; back with the exact unbiased inverse."""

    def __init__(self, inner: Any, gat: Any):
        self.inner, self.gat = inner, gat

    def __call__(self, window: np.ndarray) -> np.ndarray:
        return self.gat.inverse(self.inner(self.gat.forward(window)), exact=True)


class Dihedral:
    """Self-ensemble: the mean of the predictions of the 8 flips/90° rotations of the YX plane.

    The "geometric self-ensemble" of Lim et al., "Enhanced Deep Residual Networks for Single
    Image Super-Resolution", CVPRW 2017; each prediction is transformed back before averaging.
    """

    def __init__(self, inner: Any):
        self.inner = inner

    def __call__(self, window: np.ndarray) -> np.ndarray:
        total = np.zeros(window.shape, np.float64)
        for flip in (False, True):
            w = window[..., ::-1] if flip else window
            for turns in range(4):
                out = np.rot90(self.inner(np.ascontiguousarray(np.rot90(w, turns, (-2, -1)))),
                               -turns, (-2, -1))  # fmt: skip
                total += out[..., ::-1] if flip else out
        return (total / 8).astype(np.float32)
