"""Denoising filters for one 2D plane or one 3D block (float32 in, float32 out).

Each function takes ``x`` (2D or 3D array of any real dtype), the keyword parameters of its
registry entry (:mod:`.registry`) and ``spacing`` (the physical step per axis, used by the 3D
variants to keep the smoothing isotropic in space). The implementation of each algorithm is the
fastest well-kept one among OpenCV, scikit-image and scipy, as measured by
``benchmarks/classical.py`` (see docs/classical.md for the table):

* gaussian  -- OpenCV ``GaussianBlur`` (2D); OpenCV per plane + scipy 1D along the third axis (3D)
* median    -- OpenCV ``medianBlur`` where it is exact (3x3 and 5x5 on float32/uint16, any
  size on uint8), scipy ``median_filter`` otherwise
* bilateral -- OpenCV ``bilateralFilter`` (2D); vectorised numpy over the window offsets (3D)
* nlm       -- scikit-image ``denoise_nl_means`` (fast mode, with the noise sigma)
* anisotropic -- Perona-Malik diffusion (numpy, in place; no peer in the three libraries)
* tv        -- scikit-image ``denoise_tv_chambolle``
* wavelet   -- scikit-image ``denoise_wavelet`` (BayesShrink / VisuShrink)
* bm3d      -- the ``bm3d`` package (BM3D for 2D; ``bm4d`` for true 3D)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
from scipy import ndimage as ndi

Spacing = Sequence[float] | None


def as_float32(x: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 view or copy of ``x``."""
    return np.ascontiguousarray(x, dtype=np.float32)


def _ratios(x: np.ndarray, spacing: Spacing) -> list[float]:
    """Per-axis factor turning a size in in-plane pixels into pixels along each axis."""
    if spacing is None or x.ndim == 2:
        return [1.0] * x.ndim
    sp = [float(s) if s and s > 0 else 1.0 for s in spacing][-x.ndim :]
    ref = sp[-1]
    return [ref / s for s in sp]


# ---------------------------------------------------------------------------------------------
# gaussian


def gaussian(x: np.ndarray, *, sigma: float, spacing: Spacing = None) -> np.ndarray:
    """Gaussian smoothing with ``sigma`` in-plane pixels (truncated at 4 sigma, mirrored edges)."""
    x = as_float32(x)
    if sigma <= 0:
        return x.copy()
    if x.ndim == 2:
        return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    r = _ratios(x, spacing)
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = cv2.GaussianBlur(x[i], (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    if sigma * r[0] > 0.05:
        ndi.gaussian_filter1d(out, sigma * r[0], axis=0, mode="reflect", output=out)
    return out


# ---------------------------------------------------------------------------------------------
# median


def median(x: np.ndarray, *, size: int, spacing: Spacing = None) -> np.ndarray:
    """Median over a ``size`` x ``size`` (x ``size``) window."""
    size = int(size)
    if size <= 1:
        return as_float32(x)
    if x.ndim == 2:
        if x.dtype == np.uint8:
            return cv2.medianBlur(np.ascontiguousarray(x), size).astype(np.float32)
        if size in (3, 5):
            if x.dtype == np.uint16:
                return cv2.medianBlur(np.ascontiguousarray(x), size).astype(np.float32)
            return cv2.medianBlur(as_float32(x), size)
        return ndi.median_filter(as_float32(x), size=size, mode="nearest")
    r = _ratios(x, spacing)
    sizes = [max(1, round(size * f) | 1) for f in r]
    return ndi.median_filter(as_float32(x), size=sizes, mode="nearest")


# ---------------------------------------------------------------------------------------------
# bilateral


def bilateral(
    x: np.ndarray, *, sigma_color: float, sigma_spatial: float, spacing: Spacing = None
) -> np.ndarray:
    """Edge-preserving bilateral filter: Gaussian weights in space and in intensity."""
    x = as_float32(x)
    if sigma_color <= 0 or sigma_spatial <= 0:
        return x.copy()
    radius = max(1, round(1.5 * sigma_spatial))
    if x.ndim == 2:
        return cv2.bilateralFilter(
            x,
            2 * radius + 1,
            float(sigma_color),
            float(sigma_spatial),
            borderType=cv2.BORDER_REFLECT,
        )
    r = _ratios(x, spacing)
    radii = [max(0, round(radius * f)) for f in r]
    pad = np.pad(x, [(q, q) for q in radii], mode="reflect")
    num = np.zeros_like(x)
    den = np.zeros_like(x)
    inv_c = -0.5 / float(sigma_color) ** 2
    shape = x.shape
    for dz in range(-radii[0], radii[0] + 1):
        for dy in range(-radii[1], radii[1] + 1):
            for dx in range(-radii[2], radii[2] + 1):
                d2 = (dz / r[0]) ** 2 + (dy / r[1]) ** 2 + (dx / r[2]) ** 2
                if d2 > radius * radius + 1e-9:
                    continue
                ws = math.exp(-0.5 * d2 / sigma_spatial**2)
                nb = pad[
                    radii[0] + dz : radii[0] + dz + shape[0],
                    radii[1] + dy : radii[1] + dy + shape[1],
                    radii[2] + dx : radii[2] + dx + shape[2],
                ]
                w = np.exp((nb - x) ** 2 * inv_c) * np.float32(ws)
                num += w * nb
                den += w
    return num / den


# ---------------------------------------------------------------------------------------------
# non-local means


def nlm(
    x: np.ndarray,
    *,
    h: float,
    patch_size: int = 5,
    patch_distance: int = 6,
    sigma: float = 0.0,
    spacing: Spacing = None,
) -> np.ndarray:
    """Non-local means (scikit-image, fast mode); ``sigma`` is the noise level (0: estimate)."""
    from skimage.restoration import denoise_nl_means, estimate_sigma

    x = as_float32(x)
    if h <= 0:
        return x.copy()
    if sigma <= 0:
        sigma = float(estimate_sigma(x))
    out = denoise_nl_means(
        x,
        h=float(h),
        sigma=float(sigma),
        patch_size=int(patch_size),
        patch_distance=int(patch_distance),
        fast_mode=True,
        channel_axis=None,
    )
    # scikit-image drops an axis of length 1 (a 1 x N plane comes back as N): keep the shape
    return out.astype(np.float32, copy=False).reshape(x.shape)


# ---------------------------------------------------------------------------------------------
# Perona-Malik anisotropic diffusion


def anisotropic(
    x: np.ndarray,
    *,
    iterations: int,
    kappa: float,
    step: float = 0.2,
    conduction: str = "exponential",
    spacing: Spacing = None,
) -> np.ndarray:
    """Perona and Malik (1990) diffusion with conduction ``exp(-(g/k)^2)`` or ``1/(1+(g/k)^2)``.

    Explicit scheme on nearest neighbours (4 in 2D, 6 in 3D); ``step`` is limited to
    ``1/(2*ndim)`` for stability. Mirrored edges (no flux through the border).
    """
    u = as_float32(x).copy()
    if iterations <= 0 or kappa <= 0:
        return u
    step = min(float(step), 1.0 / (2 * u.ndim))
    inv_k2 = np.float32(1.0 / float(kappa) ** 2)
    quadratic = conduction.startswith("quad")
    w = [np.float32(f * f) for f in _ratios(u, spacing)]  # 1/distance^2 along each axis
    flux_total = np.empty_like(u)
    for _ in range(int(iterations)):
        flux_total.fill(0)
        for axis in range(u.ndim):
            g = np.diff(u, axis=axis)  # u[i+1] - u[i]
            g2 = g * g * w[axis] * inv_k2
            c = 1.0 / (1.0 + g2) if quadratic else np.exp(-g2)
            flux = c * g * w[axis]
            lead = [slice(None)] * u.ndim
            trail = [slice(None)] * u.ndim
            lead[axis] = slice(0, -1)
            trail[axis] = slice(1, None)
            flux_total[tuple(lead)] += flux
            flux_total[tuple(trail)] -= flux
        u += np.float32(step) * flux_total
    return u


# ---------------------------------------------------------------------------------------------
# total variation, wavelets, BM3D


def tv(x: np.ndarray, *, weight: float, max_iter: int = 200, spacing: Spacing = None) -> np.ndarray:
    """Total-variation denoising (Chambolle 2004; scikit-image), ``weight`` in intensity units."""
    from skimage.restoration import denoise_tv_chambolle

    x = as_float32(x)
    if weight <= 0:
        return x.copy()
    out = denoise_tv_chambolle(
        x, weight=float(weight), max_num_iter=int(max_iter), channel_axis=None
    )
    return out.astype(np.float32, copy=False)


def wavelet(
    x: np.ndarray,
    *,
    sigma: float,
    method: str = "BayesShrink",
    mode: str = "soft",
    wavelet: str = "db2",
    spacing: Spacing = None,
) -> np.ndarray:
    """Wavelet shrinkage (scikit-image): BayesShrink (adaptive) or VisuShrink (universal)."""
    from skimage.restoration import denoise_wavelet

    x = as_float32(x)
    if sigma <= 0:
        return x.copy()
    out = denoise_wavelet(
        x,
        sigma=float(sigma),
        method=method,
        mode=mode,
        wavelet=wavelet,
        rescale_sigma=True,
        channel_axis=None,
    )
    return out.astype(np.float32, copy=False)


def bm3d(
    x: np.ndarray, *, sigma: float, profile: str = "vn", spacing: Spacing = None
) -> np.ndarray:
    """BM3D (Dabov et al. 2007; the ``bm3d`` package) in 2D, BM4D for true 3D blocks."""
    x = as_float32(x)
    if sigma <= 0:
        return x.copy()
    if x.ndim == 2:
        import bm3d as _bm3d

        out = _bm3d.bm3d(x, sigma_psd=float(sigma), profile=profile)
    else:
        import bm4d as _bm4d

        # bm4d knows only its "np" and "refilter" profiles; the 2D noise-level profiles
        # ("vn", "high") have no 3D counterpart, so they fall back to "np"
        profile_3d = profile if profile in ("np", "refilter") else "np"
        out = _bm4d.bm4d(x, sigma_psd=float(sigma), profile=profile_3d)
    return np.asarray(out, dtype=np.float32).reshape(x.shape)
