"""Camera frames of diffraction-limited spots with known truth.

The spot model is the pixel-integrated symmetric 2D Gaussian used by ThunderSTORM and Picasso
(Smith et al. 2010, Nat. Methods 7:373): the expected photons in pixel (i, j) are
``N * Ex(j) * Ey(i) + bg`` with ``Ex(j) = (erf((j - x + 0.5) / (sqrt(2) s)) - erf((j - x - 0.5) /
(sqrt(2) s))) / 2``. A pixel's centre is at integer coordinates. The camera converts
photoelectrons to ADU: ``ADU = offset + (electrons * em_gain + read noise) / sensitivity``
with ``sensitivity`` in photoelectrons per ADU (ThunderSTORM's convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf


@dataclass(frozen=True)
class Camera:
    """Camera model: offset (ADU), sensitivity (e-/ADU), read noise (e- rms), EM gain, QE."""

    offset: float = 100.0
    sensitivity: float = 0.5
    read_noise: float = 1.6
    em_gain: float = 1.0
    qe: float = 1.0


def integrated_gaussian(
    shape: tuple[int, int], y: np.ndarray, x: np.ndarray, sigma: np.ndarray, photons: np.ndarray
) -> np.ndarray:
    """Expected photons per pixel of a sum of pixel-integrated Gaussians (float64)."""
    rows = np.arange(shape[0])[:, None]
    cols = np.arange(shape[1])[:, None]
    image = np.zeros(shape)
    y, x = np.atleast_1d(y), np.atleast_1d(x)
    s2 = np.broadcast_to(np.sqrt(2.0) * np.asarray(sigma, float), y.shape)
    ns = np.broadcast_to(np.asarray(photons, float), y.shape)
    for yi, xi, si, ni in zip(y, x, s2, ns):
        ey = 0.5 * (erf((rows - yi + 0.5) / si) - erf((rows - yi - 0.5) / si))
        ex = 0.5 * (erf((cols - xi + 0.5) / si) - erf((cols - xi - 0.5) / si))
        image += ni * ey @ ex.T
    return image


def expose(expected_photons: np.ndarray, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """Camera frame in ADU (uint16) for expected photons per pixel."""
    electrons = rng.poisson(expected_photons * camera.qe).astype(np.float64)
    if camera.em_gain > 1:
        electrons = rng.gamma(np.maximum(electrons, 1e-12), camera.em_gain) * (electrons > 0)
    electrons += rng.normal(0.0, camera.read_noise, electrons.shape)
    adu = camera.offset + electrons / camera.sensitivity
    return np.clip(np.round(adu), 0, 65535).astype(np.uint16)


def simulate_spots(
    n_frames: int = 10,
    shape: tuple[int, int] = (128, 128),
    *,
    n_spots: int = 20,
    sigma: float = 1.3,
    photons: tuple[float, float] = (300.0, 5000.0),
    background: float = 10.0,
    min_distance: float = 6.0,
    border: int = 4,
    camera: Camera | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames (TYX uint16, ADU) of isolated spots and the truth table.

    Returns
    -------
    frames
        ``(n_frames, *shape)`` uint16 camera frames.
    truth
        Structured array with fields ``frame`` (0-based), ``y``, ``x`` (px, pixel centre at
        integer), ``photons``, ``sigma``, ``background`` (photons/px).
    """
    camera = camera or Camera()
    rng = np.random.default_rng(seed)
    frames = np.empty((n_frames, *shape), np.uint16)
    rows = []
    for t in range(n_frames):
        ys, xs = _positions(shape, n_spots, min_distance, border, rng)
        ns = np.exp(rng.uniform(np.log(photons[0]), np.log(photons[1]), len(ys)))
        expected = integrated_gaussian(shape, ys, xs, np.full(len(ys), sigma), ns) + background
        frames[t] = expose(expected, camera, rng)
        rows += [(t, y, x, n, sigma, background) for y, x, n in zip(ys, xs, ns)]
    dtype = [("frame", "i4"), ("y", "f8"), ("x", "f8"), ("photons", "f8"), ("sigma", "f8"),
             ("background", "f8")]  # fmt: skip
    return frames, np.array(rows, dtype=dtype)


def _positions(
    shape: tuple[int, int], n: int, min_distance: float, border: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n`` random positions at least ``min_distance`` apart, ``border`` px inside."""
    chosen: list[tuple[float, float]] = []
    for _ in range(50 * n):
        if len(chosen) == n:
            break
        y = rng.uniform(border, shape[0] - 1 - border)
        x = rng.uniform(border, shape[1] - 1 - border)
        if all((y - cy) ** 2 + (x - cx) ** 2 >= min_distance**2 for cy, cx in chosen):
            chosen.append((y, x))
    arr = np.array(chosen).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]
