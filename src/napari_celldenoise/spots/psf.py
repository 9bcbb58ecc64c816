"""The fits' spot model drawn as pixels: expected counts in fit boxes, and spots added to a frame.

The model is the pixel-integrated Gaussian of :mod:`.fit` (Smith et al. 2010, Nat. Methods
7:373): a spot of ``N`` photons at ``(x, y)`` puts ``N * Ex(j) * Ey(i)`` in pixel (row i,
column j), ``Ex(j) = (erf((j - x + 0.5) / (sqrt(2) sx)) - erf((j - x - 0.5) / (sqrt(2) sx))) / 2``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf


def model_boxes(params: np.ndarray, box: int) -> np.ndarray:
    """Expected photoelectrons ``(n, box, box)`` for fitted ``params`` (x, y, N, bg, sx, sy)."""
    params = np.asarray(params, float).reshape(-1, 6)
    g = np.arange(box)[None, :]
    sx = np.sqrt(2) * params[:, 4:5]
    sy = np.sqrt(2) * params[:, 5:6]
    ex = 0.5 * (erf((g - params[:, 0:1] + 0.5) / sx) - erf((g - params[:, 0:1] - 0.5) / sx))
    ey = 0.5 * (erf((g - params[:, 1:2] + 0.5) / sy) - erf((g - params[:, 1:2] - 0.5) / sy))
    return params[:, 2, None, None] * ey[:, :, None] * ex[:, None, :] + params[:, 3, None, None]


def render_spots(
    image: np.ndarray, yx: np.ndarray, photons: np.ndarray, sx: np.ndarray, sy: np.ndarray
) -> None:
    """Add pixel-integrated Gaussians (no background) to ``image`` in place."""
    rows, cols = image.shape
    for (y, x), n, a, b in zip(yx, photons, sx, sy):
        ra = int(np.ceil(4 * b)) + 1
        ca = int(np.ceil(4 * a)) + 1
        r0, r1 = max(int(y) - ra, 0), min(int(y) + ra + 1, rows)
        c0, c1 = max(int(x) - ca, 0), min(int(x) + ca + 1, cols)
        if r0 >= r1 or c0 >= c1:
            continue
        rr = np.arange(r0, r1)
        cc = np.arange(c0, c1)
        ey = 0.5 * (erf((rr - y + 0.5) / (np.sqrt(2) * b)) - erf((rr - y - 0.5) / (np.sqrt(2) * b)))
        ex = 0.5 * (erf((cc - x + 0.5) / (np.sqrt(2) * a)) - erf((cc - x - 0.5) / (np.sqrt(2) * a)))
        image[r0:r1, c0:c1] += n * np.outer(ey, ex)
