"""Spot-enhancing filters: the undecimated B-spline wavelet ("a trous"), DoG and LoG.

The wavelet filter follows Izeddin et al. 2012 (Opt. Express 20:2081) and ThunderSTORM
(Ovesny et al. 2014): the image is smoothed with a sampled B-spline kernel ``V1 = I * K1``, then
with the same kernel dilated by inserting zeros ("holes") ``V2 = V1 * K2``, and so on. The wavelet
planes are ``F1 = I - V1``, ``F2 = V1 - V2``, ...; the filtered image used for detection is the
plane of level ``order`` (default the second, ``V1 - V2``, as ThunderSTORM).

Every filter returns a :class:`Filtered`: the detection image ``F`` plus the named intermediate
images that threshold expressions can refer to (``Wave.F1``, ``Wave.V1``, ``DoG.G1``, ``I``...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit
from scipy import ndimage as ndi

FILTERS = ("wavelet", "dog", "log", "none")


@dataclass(frozen=True, eq=False)
class Filtered:
    """A filtered frame ``F`` and the named images a threshold expression may use."""

    F: np.ndarray
    images: dict[str, np.ndarray] = field(default_factory=dict)


def bspline(order: int, t: np.ndarray) -> np.ndarray:
    """The centred cardinal B-spline of ``order`` (3 = cubic) evaluated at ``t``."""
    t = np.asarray(t, float)
    n = order + 1
    out = np.zeros_like(t)
    for k in range(n + 1):
        out += (-1) ** k * math.comb(n, k) * np.maximum(t + n / 2 - k, 0) ** order
    return out / math.factorial(order)


def bspline_kernel(order: int = 3, scale: float = 2.0) -> np.ndarray:
    """The 1D smoothing kernel: the B-spline of ``order`` stretched by ``scale``, sampled at
    ``2 * ceil(order * scale / 2) - 1`` integers and normalised to sum 1, as ThunderSTORM's
    ``BSplineKernel`` (default order 3, scale 2: 5 taps, close to Izeddin's 1/16, 1/4, 3/8...)."""
    if order < 1 or scale <= 0:
        raise ValueError("B-spline order must be >= 1 and scale > 0")
    half = max(math.ceil(order * scale / 2) - 1, 1)
    t = np.arange(-half, half + 1) / scale
    k = bspline(order, t)
    return k / k.sum()


@njit(cache=True, inline="always")
def _mirror(i: int, n: int) -> int:
    """Index ``i`` reflected into ``[0, n)`` about the edge pixels' centres (``d c b | a b c d
    | c b a``, scipy.ndimage's ``mirror`` mode)."""
    if n == 1:
        return 0
    period = 2 * (n - 1)
    i = i % period
    return i if i < n else period - i


@njit(cache=True)
def _holes_both(image, kernel, step, tmp, out):  # pragma: no cover - numba
    """``out = image`` correlated with ``kernel`` along the rows, then the columns, its taps
    ``step`` px apart, the holes between them skipped (``tmp``: the row pass)."""
    rows, cols = image.shape
    h = len(kernel) // 2
    reach = h * step
    pad = np.empty(cols + 2 * reach)
    for i in range(rows):
        for j in range(-reach, cols + reach):
            pad[j + reach] = image[i, _mirror(j, cols)]
        for j in range(cols):
            tmp[i, j] = 0.0
        for k in range(len(kernel)):
            w = kernel[k]
            off = k * step
            for j in range(cols):
                tmp[i, j] += w * pad[j + off]
    for i in range(rows):
        for j in range(cols):
            out[i, j] = 0.0
        for k in range(len(kernel)):
            src = _mirror(i + (k - h) * step, rows)
            w = kernel[k]
            for j in range(cols):
                out[i, j] += w * tmp[src, j]


def _smooth(image: np.ndarray, kernel: np.ndarray, step: int = 1) -> np.ndarray:
    """``image`` correlated along both axes with ``kernel``, its taps ``step`` px apart
    (mirror boundaries): the a trous smoothing of one level, without multiplying the zeros
    of the dilated kernel (numba, float64)."""
    image = np.ascontiguousarray(image, np.float64)
    tmp = np.empty_like(image)
    out = np.empty_like(image)
    _holes_both(image, np.ascontiguousarray(kernel, np.float64), int(step), tmp, out)
    return out


def wavelet_filter(
    image: np.ndarray, *, order: int = 3, scale: float = 2.0, level: int = 2
) -> Filtered:
    """Undecimated B-spline wavelet plane ``level`` of a 2D ``image`` (float64).

    Parameters
    ----------
    image
        2D frame.
    order, scale
        B-spline order and scale of the smoothing kernel.
    level
        Wavelet level used as the filtered image (2: ``V1 - V2``).
    """
    if level < 1:
        raise ValueError("wavelet level must be >= 1")
    base = bspline_kernel(order, scale)
    v_prev = np.asarray(image, np.float64)
    images: dict[str, np.ndarray] = {"I": v_prev}
    for lev in range(1, max(level, 2) + 1):
        v = _smooth(v_prev, base, 2 ** (lev - 1))
        images[f"Wave.V{lev}"] = v
        images[f"Wave.F{lev}"] = v_prev - v
        v_prev = v
    return Filtered(images[f"Wave.F{level}"], images)


def dog_filter(image: np.ndarray, *, sigma: float = 1.3, ratio: float = 1.6) -> Filtered:
    """Difference of Gaussians ``G(sigma) - G(ratio * sigma)``."""
    img = np.asarray(image, np.float64)
    g1 = ndi.gaussian_filter(img, sigma, mode="mirror")
    g2 = ndi.gaussian_filter(img, sigma * ratio, mode="mirror")
    return Filtered(g1 - g2, {"I": img, "DoG.G1": g1, "DoG.G2": g2})


def log_filter(image: np.ndarray, *, sigma: float = 1.3) -> Filtered:
    """Negative scale-normalised Laplacian of Gaussian (bright spots give maxima)."""
    img = np.asarray(image, np.float64)
    f = -(sigma**2) * ndi.gaussian_laplace(img, sigma, mode="mirror")
    return Filtered(f, {"I": img, "LoG.F": f})


def apply_filter(
    image: np.ndarray,
    method: str = "wavelet",
    *,
    sigma: float = 1.3,
    order: int = 3,
    scale: float = 2.0,
    level: int = 2,
) -> Filtered:
    """Filter a 2D frame with ``method`` (``wavelet``, ``dog``, ``log`` or ``none``)."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"filters take a 2D frame, got shape {image.shape}")
    if method == "wavelet":
        out = wavelet_filter(image, order=order, scale=scale, level=level)
    elif method == "dog":
        out = dog_filter(image, sigma=sigma)
    elif method == "log":
        out = log_filter(image, sigma=sigma)
    elif method == "none":
        img = np.asarray(image, np.float64)
        out = Filtered(img, {"I": img})
    else:
        raise ValueError(f"unknown filter {method!r}; choose one of {', '.join(FILTERS)}")
    out.images.setdefault("F", out.F)
    return out
