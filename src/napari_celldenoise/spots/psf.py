"""The fits' spot model drawn as pixels: expected counts in fit boxes, and spots added to a frame.

The model is the pixel-integrated Gaussian of :mod:`.fit` (Smith et al. 2010, Nat. Methods
7:373): a spot of ``N`` photons at ``(x, y)`` puts ``N * Ex(j) * Ey(i)`` in pixel (row i,
column j), ``Ex(j) = (erf((j - x + 0.5) / (sqrt(2) sx)) - erf((j - x - 0.5) / (sqrt(2) sx))) / 2``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
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
    """Add pixel-integrated Gaussians (no background) to ``image`` in place, each over
    ``+-(ceil(4 sigma) + 1)`` px around its pixel; the spots of one window size at once."""
    yx = np.asarray(yx, float).reshape(-1, 2)
    if len(yx) == 0:
        return
    n = len(yx)
    photons = np.broadcast_to(np.asarray(photons, float), n)
    sx = np.broadcast_to(np.asarray(sx, float), n)
    sy = np.broadcast_to(np.asarray(sy, float), n)
    canvas = np.zeros(image.shape)
    _render(canvas, np.ascontiguousarray(yx), *(np.ascontiguousarray(a) for a in (photons, sx, sy)))
    image += canvas


@njit(cache=True)
def _render(canvas, yx, photons, sx, sy):  # pragma: no cover - numba
    """Add each spot of :func:`render_spots` to ``canvas`` (zeros, float64), in order."""
    rows, cols = canvas.shape
    root2 = math.sqrt(2.0)
    for s in range(len(yx)):
        y, x = yx[s, 0], yx[s, 1]
        r = math.ceil(4 * sy[s]) + 1
        c = math.ceil(4 * sx[s]) + 1
        iy, ix = int(y), int(x)  # towards zero
        if iy + r < 0 or iy - r >= rows or ix + c < 0 or ix - c >= cols:
            continue
        b, a = root2 * sy[s], root2 * sx[s]
        ex = np.empty(2 * c + 1)
        for q in range(2 * c + 1):
            cc = ix - c + q
            ex[q] = 0.5 * (math.erf((cc - x + 0.5) / a) - math.erf((cc - x - 0.5) / a))
        for p in range(2 * r + 1):
            rr = iy - r + p
            if rr < 0 or rr >= rows:
                continue
            ey = 0.5 * (math.erf((rr - y + 0.5) / b) - math.erf((rr - y - 0.5) / b))
            w = photons[s] * ey
            for q in range(2 * c + 1):
                cc = ix - c + q
                if 0 <= cc < cols:
                    canvas[rr, cc] += w * ex[q]
