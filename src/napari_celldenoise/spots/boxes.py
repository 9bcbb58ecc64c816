"""Boxes around spots: crops of a table's spots from their frames, and the normalisation that
makes boxes of bright and dim spots alike (the inputs of the classifier and the centroid models).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit


def spot_images(
    frames: np.ndarray,
    table: pd.DataFrame,
    box: int = 7,
    axes: str | None = None,
    *,
    normalise: bool = True,
) -> np.ndarray:
    """``(n, box, box)`` crops around each spot's rounded position, background-subtracted and
    scaled to sum 1 (:func:`normalise_boxes`; ``normalise=False``: as they are).
    Spots near the edge get edge-replicated crops.

    ``frames`` is a 2D frame or a stack whose leading axes are ``T`` (the table's ``frame``)
    and/or ``Z`` (its ``z``), as in ``axes`` (default ``TYX`` / ``TZYX``).
    """
    n = len(table)
    out = np.zeros((n, box, box))
    if n == 0:
        return out
    half = box // 2
    lead = np.ndim(frames) - 2
    letters = (axes or {0: "YX", 1: "TYX", 2: "TZYX"}[lead])[:lead]
    index_cols = [table["frame" if a == "T" else "z"].to_numpy(int) for a in letters]
    keys = np.column_stack(index_cols) if lead else np.zeros((n, 0), int)
    ys_all = np.rint(table["y"].to_numpy(float)).astype(int) + half + 1
    xs_all = np.rint(table["x"].to_numpy(float)).astype(int) + half + 1
    offs = np.arange(-half, half + 1)
    for key in np.unique(keys, axis=0):
        idx = np.flatnonzero((keys == key).all(1))
        plane = np.asarray(frames[tuple(int(k) for k in key)] if lead else frames, float)
        padded = np.pad(plane, half + 1, mode="edge")
        ys = np.clip(ys_all[idx], half, padded.shape[0] - half - 1)
        xs = np.clip(xs_all[idx], half, padded.shape[1] - half - 1)
        out[idx] = padded[ys[:, None, None] + offs[None, :, None], xs[:, None, None] + offs]
    return normalise_boxes(out) if normalise else out


def normalise_boxes(boxes: np.ndarray) -> np.ndarray:
    """Boxes minus their background, scaled so that the positive part sums to 1.

    The background is the mean of the two dimmer of the four box sides (top and bottom rows,
    left and right columns): the sides away from the spot.
    """
    b = np.ascontiguousarray(boxes, np.float64)
    out = np.empty_like(b)
    _normalise(b, out)
    return out


@njit(cache=True, inline="always")
def side_background(b):
    """The background of one box: the mean of its two dimmer sides (numba, inlined)."""
    h, w = b.shape
    top = 0.0
    bottom = 0.0
    for j in range(w):
        top += b[0, j]
        bottom += b[h - 1, j]
    left = 0.0
    right = 0.0
    for i in range(h):
        left += b[i, 0]
        right += b[i, w - 1]
    top /= w
    bottom /= w
    left /= h
    right /= h
    lo1 = min(top, bottom)
    hi1 = max(top, bottom)
    lo2 = min(left, right)
    hi2 = max(left, right)
    return 0.5 * (min(lo1, lo2) + min(max(lo1, lo2), min(hi1, hi2)))


@njit(cache=True)
def _normalise(boxes, out):
    n, h, w = boxes.shape
    for s in range(n):
        b = boxes[s]
        bg = side_background(b)
        total = 0.0
        for i in range(h):
            for j in range(w):
                v = b[i, j] - bg
                out[s, i, j] = v
                if v > 0:
                    total += v
        if total < 1e-9:
            total = 1e-9
        for i in range(h):
            for j in range(w):
                out[s, i, j] /= total
