"""Bragg (Fourier) filtering of atomic-resolution images.

The classical denoiser of periodic lattices: keep the Fourier coefficients near the Bragg peaks
``h g1 + k g2`` of the measured lattice (:func:`..em.lattice.measure_lattice`) and, if asked,
the low frequencies that carry the thickness map; drop the rest. It averages every column with
all the others, so it also fills vacancies and erases point defects -- judge it with the
defect metrics (:mod:`..em.metrics`), not PSNR alone.

Edges: the image is split into a periodic and a smooth component (Moisan 2011, "Periodic plus
smooth image decomposition", J. Math. Imaging Vis. 39), so the discontinuity between opposite
edges leaves no cross-shaped streak in the spectrum; the periodic part is masked, the smooth
part keeps only what the low-pass keeps. Masks are Gaussian (no ringing).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np

_CACHE: OrderedDict[str, np.ndarray] = OrderedDict()  # fingerprint -> reciprocal basis


def periodic_smooth(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Moisan's decomposition ``x = p + s``: ``p`` periodic, ``s`` smooth (same shape)."""
    x = np.asarray(x, dtype=np.float64)
    h, w = x.shape
    v = np.zeros_like(x)
    v[0, :] += x[-1, :] - x[0, :]
    v[-1, :] += x[0, :] - x[-1, :]
    v[:, 0] += x[:, -1] - x[:, 0]
    v[:, -1] += x[:, 0] - x[:, -1]
    qy = 2 * np.cos(2 * np.pi * np.arange(h) / h)[:, None]
    qx = 2 * np.cos(2 * np.pi * np.arange(w) / w)[None, :]
    den = qy + qx - 4
    den[0, 0] = 1.0
    s_hat = np.fft.fft2(v) / den
    s_hat[0, 0] = 0.0
    s = np.real(np.fft.ifft2(s_hat))
    return x - s, s


MIN_SIDE = 16
"""The smallest plane side the lattice measurement takes (:func:`..em.lattice.measure_lattice`)."""


def lattice_of(x: np.ndarray) -> np.ndarray:
    """Reciprocal basis (rows ``g1, g2``, cycles per pixel) of a plane, cached per image."""
    from ..em.lattice import measure_lattice

    key = hashlib.sha1(
        np.ascontiguousarray(x[::5, ::5], dtype=np.float32).tobytes() + str(x.shape).encode()
    ).hexdigest()
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    recip = measure_lattice(x).reciprocal
    _CACHE[key] = recip
    while len(_CACHE) > 8:
        _CACHE.popitem(last=False)
    return recip


def bragg_mask(
    shape: tuple[int, int], reciprocal: np.ndarray, *, radius: float, lowpass: float
) -> tuple[np.ndarray, np.ndarray]:
    """The Gaussian peak mask and the low-pass mask on ``np.fft.fftfreq`` grids.

    ``radius`` and ``lowpass`` are fractions of the shortest reciprocal vector: each Bragg peak
    (and the zero frequency) keeps a Gaussian of that sigma, the low-pass a Gaussian of sigma
    ``lowpass * |g|`` around zero (none when 0).
    """
    h, w = shape
    ky = np.fft.fftfreq(h)[:, None]
    kx = np.fft.fftfreq(w)[None, :]
    gmin = float(min(np.hypot(*g) for g in reciprocal))
    r = max(radius * gmin, 1e-9)
    inv = np.linalg.inv(reciprocal)
    # the peaks inside the Nyquist square: integer (h, k) near the frequency of each corner
    corners = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]]) @ inv
    lim = int(np.ceil(np.abs(corners).max())) + 1
    mask = np.zeros((h, w))
    for i in range(-lim, lim + 1):
        for j in range(-lim, lim + 1):
            gy, gx = i * reciprocal[0] + j * reciprocal[1]
            if abs(gy) > 0.5 + 3 * r or abs(gx) > 0.5 + 3 * r:
                continue
            # distance on the periodic frequency grid (peaks near Nyquist wrap round)
            dy = (ky - gy + 0.5) % 1.0 - 0.5
            dx = (kx - gx + 0.5) % 1.0 - 0.5
            np.maximum(mask, np.exp(-(dy**2 + dx**2) / (2 * r**2)), out=mask)
    if lowpass > 0:
        low = np.exp(-(ky**2 + kx**2) / (2 * (lowpass * gmin) ** 2))
    else:
        low = np.exp(-(ky**2 + kx**2) / (2 * r**2))
    return np.maximum(mask, low), low


def bragg_plane(
    x: np.ndarray, *, radius: float, lowpass: float, reciprocal: np.ndarray | None = None
) -> np.ndarray:
    """Bragg-filter one 2D plane (float32)."""
    x = np.asarray(x, dtype=np.float64)
    recip = lattice_of(x) if reciprocal is None else np.asarray(reciprocal, float)
    p, s = periodic_smooth(x)
    mask, low = bragg_mask(x.shape, recip, radius=radius, lowpass=lowpass)
    out = np.real(np.fft.ifft2(np.fft.fft2(p) * mask)) + np.real(np.fft.ifft2(np.fft.fft2(s) * low))
    return out.astype(np.float32)


def bragg(x: np.ndarray, *, radius: float = 0.08, lowpass: float = 0.0, spacing=None) -> np.ndarray:
    """Bragg filter of a 2D image or of each plane of a 3D block (lattice measured per plane).

    Parameters
    ----------
    radius
        Gaussian radius of the region kept around each Bragg peak, as a fraction of the
        shortest reciprocal vector: small keeps only the perfect lattice, large keeps defects
        and noise.
    lowpass
        Low frequencies kept (thickness changes, dents), up to this fraction of the first
        Bragg peak; 0 keeps only the mean and the slowest trend.
    spacing
        Ignored (the lattice sets the scale); accepted for the registry's call.

    Raises
    ------
    LatticeNotFound
        When a plane shows no clear lattice.
    """
    x = np.asarray(x)
    if x.ndim == 2:
        return bragg_plane(x, radius=radius, lowpass=lowpass)
    if x.ndim == 3:
        return np.stack([bragg_plane(p, radius=radius, lowpass=lowpass) for p in x])
    raise ValueError(f"the Bragg filter takes 2D planes or 3D blocks, got shape {x.shape}")
