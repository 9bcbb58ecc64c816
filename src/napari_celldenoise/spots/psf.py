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
    """Add pixel-integrated Gaussians (no background) to ``image`` in place, each over
    ``+-(ceil(4 sigma) + 1)`` px around its pixel; the spots of one window size at once."""
    yx = np.asarray(yx, float).reshape(-1, 2)
    if len(yx) == 0:
        return
    rows, cols = image.shape
    photons = np.asarray(photons, float)
    sx, sy = np.asarray(sx, float), np.asarray(sy, float)
    ra = np.ceil(4 * sy).astype(int) + 1
    ca = np.ceil(4 * sx).astype(int) + 1
    canvas = np.zeros(rows * cols)
    iy, ix = yx[:, 0].astype(int), yx[:, 1].astype(int)  # int(): towards zero, as before
    inside = (iy + ra >= 0) & (iy - ra < rows) & (ix + ca >= 0) & (ix - ca < cols)
    for r, c in set(zip(ra[inside].tolist(), ca[inside].tolist())):
        sel = np.flatnonzero(inside & (ra == r) & (ca == c))
        rr = iy[sel, None] + np.arange(-r, r + 1)  # (m, 2r+1) rows
        cc = ix[sel, None] + np.arange(-c, c + 1)
        y, x = yx[sel, 0:1], yx[sel, 1:2]
        b, a = np.sqrt(2) * sy[sel, None], np.sqrt(2) * sx[sel, None]
        ey = 0.5 * (erf((rr - y + 0.5) / b) - erf((rr - y - 0.5) / b))
        ex = 0.5 * (erf((cc - x + 0.5) / a) - erf((cc - x - 0.5) / a))
        patches = photons[sel, None, None] * ey[:, :, None] * ex[:, None, :]
        keep = ((rr >= 0) & (rr < rows))[:, :, None] & ((cc >= 0) & (cc < cols))[:, None, :]
        flat = rr[:, :, None] * cols + cc[:, None, :]
        np.add.at(canvas, flat[keep], patches[keep])
    image += canvas.reshape(rows, cols)
