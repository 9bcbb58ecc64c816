"""Camera frames of diffraction-limited spots with known truth.

The spot model is the pixel-integrated symmetric 2D Gaussian used by ThunderSTORM and Picasso
(Smith et al. 2010, Nat. Methods 7:373): the expected photons in pixel (i, j) are
``N * Ex(j) * Ey(i) + bg`` with ``Ex(j) = (erf((j - x + 0.5) / (sqrt(2) s)) - erf((j - x - 0.5) /
(sqrt(2) s))) / 2``. A pixel's centre is at integer coordinates. The camera converts
photoelectrons to ADU: ``ADU = offset + (electrons * em_gain + read noise) / sensitivity``
with ``sensitivity`` in photoelectrons per ADU (ThunderSTORM's convention).

Layouts: isolated random spots (:func:`simulate_spots`), dense spots on a jittered grid
(``layout="grid"``), Z stacks with defocus (:func:`simulate_zstack`) and single boxes for fit
benchmarks (:func:`simulate_boxes`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf

TRUTH_DTYPE = [
    ("frame", "i4"),
    ("y", "f8"),
    ("x", "f8"),
    ("photons", "f8"),
    ("sigma", "f8"),
    ("background", "f8"),
]


@dataclass(frozen=True)
class Camera:
    """Camera model: offset (ADU), sensitivity (e-/ADU), read noise (e- rms), EM gain, QE."""

    offset: float = 100.0
    sensitivity: float = 0.5
    read_noise: float = 1.6
    em_gain: float = 1.0
    qe: float = 1.0


CAMERA_PRESETS: dict[str, Camera] = {
    "simulation (2 ADU/e-)": Camera(),
    "sCMOS (Hamamatsu Flash 4)": Camera(offset=100.0, sensitivity=0.46, read_noise=1.6, qe=0.72),
    "EMCCD (Andor iXon, gain 100)": Camera(
        offset=100.0, sensitivity=4.6, read_noise=50.0, em_gain=100.0, qe=0.95
    ),
    "ThunderSTORM default": Camera(offset=414.0, sensitivity=3.6, read_noise=0.0, qe=1.0),
    "EPFL challenge (tubulins)": Camera(offset=100.0, sensitivity=1.0, read_noise=0.0, qe=1.0),
}
"""Named camera settings offered in the dock (values as the vendors' sheets and tools give)."""


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
        # only a window around the spot: dense frames have thousands of spots
        r0, r1 = max(int(yi - 6 * si), 0), min(int(yi + 6 * si) + 2, shape[0])
        c0, c1 = max(int(xi - 6 * si), 0), min(int(xi + 6 * si) + 2, shape[1])
        if r0 >= r1 or c0 >= c1:
            continue
        rr, cc = rows[r0:r1], cols[c0:c1]
        ey = 0.5 * (erf((rr - yi + 0.5) / si) - erf((rr - yi - 0.5) / si))
        ex = 0.5 * (erf((cc - xi + 0.5) / si) - erf((cc - xi - 0.5) / si))
        image[r0:r1, c0:c1] += ni * ey @ ex.T
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
    background: float | tuple[float, float] = 10.0,
    min_distance: float = 6.0,
    border: int = 4,
    camera: Camera | None = None,
    layout: str = "random",
    spacing: float = 4.0,
    jitter: float = 0.5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames (TYX uint16, ADU) of spots and the truth table.

    Parameters
    ----------
    n_frames, shape
        Number and size of frames.
    n_spots
        Spots per frame (``layout="random"``; fewer when they do not fit at ``min_distance``).
    sigma
        PSF sigma (px).
    photons
        Range of photons per spot, drawn log-uniformly.
    background
        Photons per pixel, or a (low, high) range drawn uniformly per frame.
    min_distance, border
        Minimum distance between random spots and from the frame edge (px).
    layout
        ``"random"`` (isolated spots) or ``"grid"`` (dense: a square grid of pitch ``spacing``,
        each spot moved by up to ``jitter`` px).
    seed
        Random seed.

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
        if layout == "grid":
            ys, xs = _grid(shape, spacing, jitter, border, rng)
        elif layout == "random":
            ys, xs = _positions(shape, n_spots, min_distance, border, rng)
        else:
            raise ValueError(f"layout must be 'random' or 'grid', got {layout!r}")
        ns = np.exp(rng.uniform(np.log(photons[0]), np.log(photons[1]), len(ys)))
        bg = (
            float(rng.uniform(*background))
            if isinstance(background, tuple | list)
            else float(background)
        )
        expected = integrated_gaussian(shape, ys, xs, np.full(len(ys), sigma), ns) + bg
        frames[t] = expose(expected, camera, rng)
        rows += [(t, y, x, n, sigma, bg) for y, x, n in zip(ys, xs, ns)]
    return frames, np.array(rows, dtype=TRUTH_DTYPE)


def simulate_zstack(
    n_planes: int = 9,
    shape: tuple[int, int] = (96, 96),
    *,
    n_spots: int = 15,
    sigma: float = 1.3,
    depth: float = 2.0,
    photons: tuple[float, float] = (1000.0, 5000.0),
    background: float = 10.0,
    camera: Camera | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A Z stack (ZYX uint16) of defocused spots: each emitter sits at a random plane and
    appears in every plane with ``sigma * sqrt(1 + (dz / depth)^2)`` and the same photons.

    Returns the stack and a truth table with fields ``z`` (plane of focus, float), ``y``, ``x``,
    ``photons``.
    """
    camera = camera or Camera()
    rng = np.random.default_rng(seed)
    ys, xs = _positions(shape, n_spots, 8.0, 5, rng)
    zs = rng.uniform(0, n_planes - 1, len(ys))
    ns = np.exp(rng.uniform(np.log(photons[0]), np.log(photons[1]), len(ys)))
    stack = np.empty((n_planes, *shape), np.uint16)
    for k in range(n_planes):
        sig = sigma * np.sqrt(1 + ((k - zs) / depth) ** 2)
        stack[k] = expose(integrated_gaussian(shape, ys, xs, sig, ns) + background, camera, rng)
    truth = np.array(
        list(zip(zs, ys, xs, ns)), dtype=[("z", "f8"), ("y", "f8"), ("x", "f8"), ("photons", "f8")]
    )
    return stack, truth


def simulate_boxes(
    n: int,
    box: int = 7,
    *,
    photons: float | np.ndarray = 1000.0,
    background: float | np.ndarray = 10.0,
    sigma: float = 1.3,
    shift: float = 0.5,
    camera: Camera | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` camera boxes (``(n, box, box)`` uint16 ADU), one spot each near the centre.

    Returns the boxes and a truth array ``(n, 4)``: x, y (box px), photons, background.
    """
    camera = camera or Camera()
    rng = np.random.default_rng(seed)
    c = (box - 1) / 2
    xs = c + rng.uniform(-shift, shift, n)
    ys = c + rng.uniform(-shift, shift, n)
    ns = np.broadcast_to(np.asarray(photons, float), (n,))
    bs = np.broadcast_to(np.asarray(background, float), (n,))
    grid = np.arange(box)
    s2 = np.sqrt(2) * sigma
    ex = 0.5 * (
        erf((grid[None, :] - xs[:, None] + 0.5) / s2)
        - erf((grid[None, :] - xs[:, None] - 0.5) / s2)
    )
    ey = 0.5 * (
        erf((grid[None, :] - ys[:, None] + 0.5) / s2)
        - erf((grid[None, :] - ys[:, None] - 0.5) / s2)
    )
    expected = ns[:, None, None] * ey[:, :, None] * ex[:, None, :] + bs[:, None, None]
    boxes = expose(expected, camera, rng)
    return boxes, np.column_stack([xs, ys, ns, bs])


def truth_table(truth: np.ndarray, pixel_size: float = 100.0):
    """The truth of :func:`simulate_spots` as a spot table (for the CSV writer)."""
    import pandas as pd

    table = pd.DataFrame(
        {
            "frame": truth["frame"],
            "y": truth["y"],
            "x": truth["x"],
            "sigma": truth["sigma"],
            "photons": truth["photons"],
            "background": truth["background"],
            "class": np.full(len(truth), "good", object),
        }
    )
    table.attrs["pixel_size"] = float(pixel_size)
    return table


def _positions(
    shape: tuple[int, int], n: int, min_distance: float, border: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n`` random positions at least ``min_distance`` apart, ``border`` px inside."""
    chosen = np.empty((0, 2))
    for _ in range(50 * n):
        if len(chosen) == n:
            break
        y = rng.uniform(border, shape[0] - 1 - border)
        x = rng.uniform(border, shape[1] - 1 - border)
        if len(chosen) == 0 or np.min(np.sum((chosen - (y, x)) ** 2, 1)) >= min_distance**2:
            chosen = np.vstack([chosen, (y, x)])
    return chosen[:, 0].copy(), chosen[:, 1].copy()


def _grid(
    shape: tuple[int, int], spacing: float, jitter: float, border: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A square grid of pitch ``spacing``, each point moved by up to ``jitter`` px."""
    ys = np.arange(border + jitter, shape[0] - 1 - border - jitter + 1e-9, spacing)
    xs = np.arange(border + jitter, shape[1] - 1 - border - jitter + 1e-9, spacing)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    yy = yy.ravel() + rng.uniform(-jitter, jitter, yy.size)
    xx = xx.ravel() + rng.uniform(-jitter, jitter, xx.size)
    return yy, xx
