"""Candidate detection: local maxima of a filtered frame above a threshold."""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy.spatial import cKDTree

from .expr import threshold_value
from .filters import apply_filter


def local_maxima(
    image: np.ndarray,
    threshold: float | np.ndarray = 0.0,
    *,
    min_distance: float = 1.0,
    border: int = 0,
) -> np.ndarray:
    """Local maxima of a 2D ``image`` strictly above ``threshold``.

    Parameters
    ----------
    image
        Filtered frame.
    threshold
        A number or a per-pixel array of ``image``'s shape.
    min_distance
        Minimum distance (px) between two maxima: 1 means the 8-neighbourhood; larger values
        keep the brightest of maxima closer than this (greedy, brightest first).
    border
        Maxima closer than this to the edge are dropped.

    Returns
    -------
    ``(n, 2)`` int array of (row, column), brightest first.
    """
    image = np.asarray(image, np.float64)
    if image.ndim != 2:
        raise ValueError(f"local_maxima takes a 2D frame, got shape {image.shape}")
    if image.size == 0 or min(image.shape) < 3:
        return np.empty((0, 2), np.intp)
    thr = np.broadcast_to(np.asarray(threshold, np.float64), image.shape)
    border = max(int(border), 0)
    coords = _maxima_above(np.ascontiguousarray(image), np.ascontiguousarray(thr), border)
    if len(coords) == 0:
        return np.empty((0, 2), np.intp)
    values = image[coords[:, 0], coords[:, 1]]
    order = np.argsort(-values, kind="stable")
    coords = coords[order]
    # plateaus give neighbouring equal maxima; min_distance removes them and close pairs
    radius = float(min_distance) - 1e-9 if min_distance > 1.5 else 1.5
    pairs = cKDTree(coords).query_pairs(radius, output_type="ndarray")
    if len(pairs):
        keep = np.ones(len(coords), bool)
        neighbours: list[list[int]] = [[] for _ in range(len(coords))]
        for a, b in pairs:
            neighbours[a].append(b)
            neighbours[b].append(a)
        for i in range(len(coords)):  # brightest first: suppress the dimmer neighbours
            if keep[i]:
                for j in neighbours[i]:
                    if j > i:
                        keep[j] = False
        coords = coords[keep]
    return coords.astype(np.intp)


@njit(cache=True)
def _maxima_above(image, threshold, border):  # pragma: no cover - numba
    """(row, col) of the pixels above ``threshold`` and not below any of their 8 neighbours
    inside the image, at least ``border`` px from the edge, in row-major order."""
    rows, cols = image.shape
    found = np.empty((rows * cols, 2), np.intp)
    n = 0
    for i in range(border, rows - border):
        for j in range(border, cols - border):
            v = image[i, j]
            if not v > threshold[i, j]:
                continue
            peak = True
            for di in range(-1, 2):
                r = i + di
                if r < 0 or r >= rows:
                    continue
                for dj in range(-1, 2):
                    c = j + dj
                    if c < 0 or c >= cols or (di == 0 and dj == 0):
                        continue
                    if image[r, c] > v:
                        peak = False
                        break
                if not peak:
                    break
            if peak:
                found[n, 0] = i
                found[n, 1] = j
                n += 1
    return found[:n].copy()


def detect_frame(
    frame: np.ndarray,
    *,
    filter: str = "wavelet",
    threshold: str | float = "0.7*localnoise(Wave.F1)",
    sigma: float = 1.3,
    min_distance: float = 1.0,
    border: int = 3,
    detect_on: np.ndarray | None = None,
    full: bool = False,
    **filter_options: float,
) -> tuple:
    """Candidates of one frame: ``(coords (n, 2) row/col, filtered image)``.

    ``detect_on`` (e.g. a denoised copy of ``frame``) is filtered instead of ``frame`` when
    given. The threshold is a number or an expression over the filter's images.
    """
    source = frame if detect_on is None else detect_on
    filtered = apply_filter(source, filter, sigma=sigma, **filter_options)  # type: ignore[arg-type]
    thr = threshold_value(threshold, filtered.images)
    coords = local_maxima(filtered.F, thr, min_distance=min_distance, border=border)
    return (coords, filtered.F, thr) if full else (coords, filtered.F)
