"""Synthetic fluorescence images with known clean versions (sample data, tests, benchmarks).

Noise follows the Poisson-Gaussian model of fluorescence cameras (Foi et al. 2008,
"Practical Poissonian-Gaussian noise modeling and fitting for single-image raw-data"):
photon counts are Poisson, the read-out adds Gaussian noise, so that
``var(noisy) = a * mean + b`` with ``a = gain`` and ``b = (gain * read_noise)**2``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def _cells(shape: tuple[int, ...], n: int, rng: np.random.Generator, radius: float) -> np.ndarray:
    """Smooth blob-like 'cells': random ellipsoids with textured interiors, in [0, 1]."""
    grids = np.meshgrid(*(np.arange(s, dtype=np.float32) for s in shape), indexing="ij")
    image = np.zeros(shape, np.float32)
    for _ in range(n):
        centre = [rng.uniform(0.1 * s, 0.9 * s) for s in shape]
        radii = [radius * rng.uniform(0.6, 1.4) for _ in shape]
        r2 = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii))
        image = np.maximum(image, rng.uniform(0.4, 1.0) * (r2 < 1.0))
    texture = ndi.gaussian_filter(rng.random(shape).astype(np.float32), 2.0)
    texture = (texture - texture.min()) / max(float(np.ptp(texture)), 1e-6)
    image = ndi.gaussian_filter(image * (0.6 + 0.8 * texture), 1.5)
    return image / max(float(image.max()), 1e-6)


def _fibres(shape: tuple[int, int], n: int, rng: np.random.Generator) -> np.ndarray:
    """Thin curved filaments (cytoskeleton-like), in [0, 1]."""
    image = np.zeros(shape, np.float32)
    for _ in range(n):
        p = np.array([rng.uniform(0, shape[0]), rng.uniform(0, shape[1])])
        angle = rng.uniform(0, 2 * np.pi)
        for _ in range(4 * max(shape)):
            angle += rng.normal(0, 0.05)
            p += (np.sin(angle), np.cos(angle))
            y, x = int(p[0]), int(p[1])
            if not (0 <= y < shape[0] and 0 <= x < shape[1]):
                break
            image[y, x] = 1.0
    image = ndi.gaussian_filter(image, 1.0)
    return image / max(float(image.max()), 1e-6)


def poisson_gaussian(
    clean: np.ndarray,
    *,
    photons: float,
    background: float = 2.0,
    gain: float = 1.0,
    read_noise: float = 2.0,
    offset: float = 100.0,
    rng: np.random.Generator,
) -> np.ndarray:
    """Camera counts (float32, ADU) for a clean image in [0, 1] scaled to ``photons`` at 1."""
    expected = clean * photons + background
    counts = rng.poisson(expected).astype(np.float32)
    return (gain * counts + rng.normal(0.0, gain * read_noise, clean.shape) + offset).astype(
        np.float32
    )


def fluorescence_image(
    shape: tuple[int, int] = (256, 256),
    *,
    photons: float = 30.0,
    read_noise: float = 2.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A noisy widefield-like image of cells and filaments and its clean version.

    Returns
    -------
    noisy, clean
        float32 arrays in the same units (ADU): ``clean`` is the noise-free expectation
        of ``noisy`` (including background and camera offset).
    """
    rng = np.random.default_rng(seed)
    n_cells = max(3, int(np.prod(shape) / 6000))
    cells = _cells(shape, n_cells, rng, min(shape) / 10)
    truth = np.clip(0.8 * cells + 0.6 * _fibres(shape, 12, rng), 0, 1)
    background, offset, gain = 2.0, 100.0, 1.0
    noisy = poisson_gaussian(
        truth,
        photons=photons,
        background=background,
        gain=gain,
        read_noise=read_noise,
        offset=offset,
        rng=rng,
    )
    clean = (gain * (truth * photons + background) + offset).astype(np.float32)
    return noisy, clean


def fluorescence_volume(
    shape: tuple[int, int, int] = (32, 128, 128),
    *,
    photons: float = 40.0,
    read_noise: float = 2.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A noisy 3D volume of blob-like nuclei (ZYX) and its clean version (float32, ADU)."""
    rng = np.random.default_rng(seed)
    truth = _cells(shape, max(4, int(np.prod(shape) / 40000)), rng, min(shape[1:]) / 8)
    noisy = poisson_gaussian(truth, photons=photons, read_noise=read_noise, rng=rng)
    clean = (truth * photons + 2.0 + 100.0).astype(np.float32)
    return noisy, clean
