"""Super-resolution images rendered from localizations (pure numpy/scipy).

Positions are in nm, ``x`` the column and ``y`` the row, as in the spot CSV
(:mod:`~napari_celldenoise.io.spots_csv`: ``nm = (px + 0.5) * camera pixel``, so 0 nm is the
outer edge of the camera's first pixel). A render's pixel ``(i, j)`` covers
``y0 + i * pixel_nm <= y < y0 + (i + 1) * pixel_nm`` and likewise in x, ``(x0, y0)`` being the
origin of the extent. At a magnification ``M`` the render's pixel is the camera pixel / ``M``.

- :func:`render_histogram`: the number of localizations per pixel (ThunderSTORM's and
  Picasso's histogram rendering).
- :func:`render_gaussian`: each localization a normalised 2D Gaussian whose sigma is its own
  localization uncertainty, integrated over the pixels (so a localization inside the extent
  adds exactly 1 to the image's sum), as in the Gaussian rendering of Baddeley et al.,
  Microsc. Microanal. 2010.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import ndtr

MAX_PIXELS = 400_000_000
"""The largest render (pixels) accepted: 1.6 GB of float32."""

_TRUNCATE = 3.0  # Gaussian windows reach this many sigma either side (then renormalised)
_CHUNK = 4_000_000  # window elements splatted at once (bounds the temporary memory)


class RenderError(ValueError):
    """Localizations or settings that cannot make an image (the message says why)."""


class Rendered(NamedTuple):
    """A render: ``image`` (float32, rows y, columns x), ``pixel_nm`` and the nm position
    ``origin_nm`` ``(x0, y0)`` of its first pixel's outer corner."""

    image: np.ndarray
    pixel_nm: float
    origin_nm: tuple[float, float]


Extent = tuple[float, float, float, float]
"""``(x0, x1, y0, y1)`` in nm."""


def default_extent(
    x_nm: np.ndarray, y_nm: np.ndarray, pixel_nm: float, margin_nm: float = 0.0
) -> Extent:
    """From 0 nm (or below it, for localizations at negative positions) to ``margin_nm`` past
    the farthest localization, in whole render pixels: a render then lies on the camera frame
    (whose corner is at 0 nm)."""
    x, y = _finite_positions(x_nm, y_nm)
    if x.size == 0:
        raise RenderError("no localizations to render")
    lo_x = min(0.0, np.floor(x.min() / pixel_nm) * pixel_nm)
    lo_y = min(0.0, np.floor(y.min() / pixel_nm) * pixel_nm)
    hi_x = (np.floor((x.max() + margin_nm) / pixel_nm) + 1) * pixel_nm
    hi_y = (np.floor((y.max() + margin_nm) / pixel_nm) + 1) * pixel_nm
    return float(lo_x), float(hi_x), float(lo_y), float(hi_y)


def render_shape(extent: Extent, pixel_nm: float) -> tuple[int, int]:
    """``(rows, columns)`` of a render of ``extent``; RenderError when it is empty or over
    :data:`MAX_PIXELS`."""
    if not np.isfinite(pixel_nm) or pixel_nm <= 0:
        raise RenderError(f"the render pixel must be a positive size in nm, got {pixel_nm}")
    x0, x1, y0, y1 = (float(v) for v in extent)
    if not all(np.isfinite([x0, x1, y0, y1])) or x1 <= x0 or y1 <= y0:
        raise RenderError(f"the extent {extent} is empty (give x0 < x1 and y0 < y1 in nm)")
    cols = int(np.ceil((x1 - x0) / pixel_nm - 1e-9))
    rows = int(np.ceil((y1 - y0) / pixel_nm - 1e-9))
    if rows * cols > MAX_PIXELS:
        raise RenderError(
            f"a {rows} x {cols} render at {pixel_nm:g} nm pixels is {rows * cols / 1e6:.0f} "
            f"megapixels, over the limit of {MAX_PIXELS / 1e6:.0f}: use a lower magnification"
        )
    return rows, cols


def render_histogram(
    x_nm: np.ndarray, y_nm: np.ndarray, *, pixel_nm: float, extent: Extent | None = None
) -> Rendered:
    """The number of localizations in each pixel; those outside ``extent`` are left out."""
    x, y = _finite_positions(x_nm, y_nm)
    extent = default_extent(x, y, pixel_nm) if extent is None else extent
    rows, cols = render_shape(extent, pixel_nm)
    col = np.floor((x - extent[0]) / pixel_nm).astype(np.int64)
    row = np.floor((y - extent[2]) / pixel_nm).astype(np.int64)
    inside = (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
    flat = row[inside] * cols + col[inside]
    counts = np.zeros(rows * cols, np.float32)  # exact counts up to 2**24 per pixel
    np.add.at(counts, flat, 1.0)
    return Rendered(counts.reshape(rows, cols), float(pixel_nm), (extent[0], extent[2]))


def render_gaussian(
    x_nm: np.ndarray,
    y_nm: np.ndarray,
    sigma_nm: np.ndarray | float,
    *,
    pixel_nm: float,
    extent: Extent | None = None,
) -> Rendered:
    """Each localization as a normalised 2D Gaussian of sigma ``sigma_nm`` (its uncertainty).

    Sigmas below ``pixel_nm / 2`` (and missing ones) are raised to it, so that no localization
    falls between pixels. The Gaussian is integrated over each pixel and cut at 3 sigma, its
    weights normalised to sum to 1; the part of it outside ``extent`` is left out. The default
    extent (:func:`default_extent`) reaches 3 sigma past the farthest localization.

    Localizations are splatted in groups of equal window size, each group as one vectorised
    outer product of its separable x and y weights: no Python loop per localization.
    """
    x, y = np.asarray(x_nm, float).ravel(), np.asarray(y_nm, float).ravel()
    sigma = np.broadcast_to(np.asarray(sigma_nm, float), x.shape).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    sigma = np.fmax(np.nan_to_num(sigma[keep], nan=0.0, posinf=np.inf), pixel_nm / 2)
    x, y = x[keep], y[keep]
    if extent is None:  # room for the Gaussians past the last localization (outliers aside)
        finite = sigma[np.isfinite(sigma)]
        wide = float(np.percentile(finite, 99)) if finite.size else 0.0
        margin = _TRUNCATE * wide + 2 * pixel_nm  # a window reaches 1 px past 3 sigma
        extent = default_extent(x, y, pixel_nm, margin)
    rows, cols = render_shape(extent, pixel_nm)
    # Pixel coordinates: pixel k spans [k, k + 1).
    u = (x - extent[0]) / pixel_nm
    v = (y - extent[2]) / pixel_nm
    s = sigma / pixel_nm
    half = np.ceil(_TRUNCATE * s).astype(np.int64)
    # Far outside the extent (or an infinite sigma): nothing to draw.
    near = (
        (u + half >= 0) & (u - half < cols) & (v + half >= 0) & (v - half < rows) & (half < 10**6)
    )
    order = np.flatnonzero(near)[np.argsort(v[near], kind="stable")]  # rows in order: cache
    u, v, s, half = u[order], v[order], s[order], half[order]
    image = np.zeros(rows * cols, np.float32)
    for h in np.unique(half):
        group = np.flatnonzero(half == h)
        width = 2 * int(h) + 1
        step = max(1, _CHUNK // (width * width))
        for start in range(0, group.size, step):
            idx = group[start : start + step]
            _splat(image, u[idx], v[idx], s[idx], int(h), rows, cols)
    return Rendered(image.reshape(rows, cols), float(pixel_nm), (extent[0], extent[2]))


def _axis_weights(
    pos: np.ndarray, s: np.ndarray, half: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per localization, the pixel indices of its window (``n x (2 half + 1)``) and the
    normalised Gaussian mass in each, zero for pixels outside ``0..size - 1``."""
    first = np.floor(pos).astype(np.int64) - half
    index = first[:, None] + np.arange(2 * half + 1)[None, :]
    edges = np.concatenate([index, index[:, -1:] + 1], axis=1).astype(float)
    cdf = ndtr((edges - pos[:, None]) / s[:, None])
    mass = np.diff(cdf, axis=1)
    mass /= mass.sum(axis=1, keepdims=True)
    mass[(index < 0) | (index >= size)] = 0.0
    return np.clip(index, 0, size - 1), mass


def _splat(
    image: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    s: np.ndarray,
    half: int,
    rows: int,
    cols: int,
) -> None:
    col, wx = _axis_weights(u, s, half, cols)
    row, wy = _axis_weights(v, s, half, rows)
    flat = row[:, :, None] * cols + col[:, None, :]
    weights = wy[:, :, None] * wx[:, None, :]
    # float32 weights: add.at is several times slower when it must cast; no image-sized
    # temporary per chunk, as bincount would make
    np.add.at(image, flat.ravel(), weights.astype(np.float32).ravel())


def _finite_positions(x_nm: np.ndarray, y_nm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x_nm, float).ravel(), np.asarray(y_nm, float).ravel()
    if x.shape != y.shape:
        raise RenderError(f"x and y differ in length ({x.size} and {y.size})")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def render_table(
    table, *, magnification: float, method: str = "gaussian", camera_pixel: float | None = None
) -> Rendered:
    """A spot table's render at ``magnification`` (render pixel = camera pixel /
    magnification): ``"histogram"`` or ``"gaussian"`` (each localization's own
    ``uncertainty``). Positions go to nm as the CSV has them (``(px + 0.5) * pixel_size``);
    ``camera_pixel`` (nm) replaces ``attrs["pixel_size"]`` for the render pixel only.

    Raises
    ------
    RenderError
        A bad magnification or method, a gaussian render without uncertainties, no
        localization.
    """
    if not np.isfinite(magnification) or magnification <= 0:
        raise RenderError(f"the magnification must be a positive number, got {magnification:g}")
    if method not in ("histogram", "gaussian"):
        raise RenderError(f"the render method must be histogram or gaussian, got {method!r}")
    ps = float(table.attrs.get("pixel_size", 100.0))
    pixel_nm = float(camera_pixel or ps) / magnification
    x_nm = (table["x"].to_numpy(float) + 0.5) * ps
    y_nm = (table["y"].to_numpy(float) + 0.5) * ps
    if method == "histogram":
        return render_histogram(x_nm, y_nm, pixel_nm=pixel_nm)
    if "uncertainty" not in table:
        raise RenderError(
            "no 'uncertainty [nm]' column for the gaussian render (use the histogram render)"
        )
    sigma_nm = table["uncertainty"].to_numpy(float) * ps
    return render_gaussian(x_nm, y_nm, sigma_nm, pixel_nm=pixel_nm)
