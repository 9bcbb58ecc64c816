"""Simulated atomic-resolution STEM images of a crystal, with their truth.

Columns are Gaussians on a square, hexagonal (triangular) or honeycomb (MoS2-like, two
sublattices) lattice. The recorded image follows a HAADF detector: a column's expected count is
``dose * motif intensity * thickness`` (``dose`` in counts per column), Poisson distributed,
times a gain, plus Gaussian read noise; each scan line is displaced along x by a random jitter
(the flyback error of a scanning probe). Thickness changes ("dents": smooth random regions
5-50 % thinner) scale the columns under them; about 1 % of the sites are vacant.

The truth returned with each image -- column positions, vacancies, the dent map, the noise-free
image -- is what the lattice tools, the metrics and the benchmark are checked against.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# motif per lattice kind: fractional (u, v) positions in the cell and relative intensities
MOTIFS = {
    "square": ((0.0, 0.0, 1.0),),
    "hexagonal": ((0.0, 0.0, 1.0),),
    # Mo at the origin, S2 at (1/3, 2/3): Z-contrast ~ Z**1.7 gives S2/Mo ~ 0.4
    "honeycomb": ((0.0, 0.0, 1.0), (1 / 3, 2 / 3, 0.4)),
}


@dataclass(frozen=True)
class LatticeTruth:
    """What a simulated image really holds (positions in pixels, ``(y, x)``)."""

    clean: np.ndarray  # the noise-free, jitter-free expected counts (before gain)
    positions: np.ndarray  # (n, 2) columns present in the image
    sublattice: np.ndarray  # (n,) motif index of each column
    vacancies: np.ndarray  # (m, 2) sites left empty
    dent_map: np.ndarray  # thickness factor per pixel (1 = nominal)
    dent_mask: np.ndarray  # bool, inside a dent (more than half its depth)
    basis: np.ndarray  # (2, 2) rows a1, a2 as (y, x) in pixels
    kind: str
    spacing: float  # lattice constant a in pixels
    angle: float  # rotation of a1 from the x axis, degrees
    sigma: float  # column width (Gaussian sigma) in pixels
    pixel_size: float  # nm per pixel
    dose: float
    gain: float
    read_noise: float
    jitter: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))  # px per row


def lattice_basis(kind: str, spacing: float, angle: float = 0.0) -> np.ndarray:
    """Real-space basis rows ``a1, a2`` as ``(y, x)`` for ``kind`` rotated by ``angle`` degrees.

    Square: 90 degrees between ``a1`` and ``a2``; hexagonal and honeycomb: 120 degrees.
    """
    if kind not in MOTIFS:
        raise ValueError(f"kind must be one of {sorted(MOTIFS)}, got {kind!r}")
    gamma = np.deg2rad(90.0 if kind == "square" else 120.0)
    t = np.deg2rad(angle)
    a1 = spacing * np.array([np.sin(t), np.cos(t)])
    a2 = spacing * np.array([np.sin(t + gamma), np.cos(t + gamma)])
    return np.stack([a1, a2])


def lattice_sites(
    shape: tuple[int, int], basis: np.ndarray, origin: np.ndarray, motif
) -> tuple[np.ndarray, np.ndarray]:
    """All motif sites of the lattice inside ``shape`` (``(n, 2)`` positions, motif index)."""
    h, w = shape
    corners = np.array([[0, 0], [0, w], [h, 0], [h, w]], float) - origin
    frac = corners @ np.linalg.inv(basis)
    lo = np.floor(frac.min(axis=0)) - 1
    hi = np.ceil(frac.max(axis=0)) + 1
    i, j = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
    cells = np.stack([i.ravel(), j.ravel()], axis=1)
    pos, which = [], []
    for k, (u, v, _) in enumerate(motif):
        p = origin + (cells + np.array([u, v])) @ basis
        pos.append(p)
        which.append(np.full(len(p), k))
    pos = np.concatenate(pos)
    which = np.concatenate(which)
    inside = (pos[:, 0] >= 0) & (pos[:, 0] <= h - 1) & (pos[:, 1] >= 0) & (pos[:, 1] <= w - 1)
    return pos[inside], which[inside]


def render_columns(
    shape: tuple[int, int],
    positions: np.ndarray,
    amplitudes: np.ndarray,
    sigma: float,
    row_shift: np.ndarray | None = None,
) -> np.ndarray:
    """Sum of unit-integral Gaussians (sigma px) times ``amplitudes`` at ``positions``.

    ``row_shift`` (one value per row) moves every row's sampling along x, as a scan-line jitter.
    """
    h, w = shape
    out = np.zeros(shape, np.float64)
    if len(positions) == 0:
        return out
    r = int(np.ceil(4 * sigma + (np.abs(row_shift).max() if row_shift is not None else 0)))
    off = np.arange(-r, r + 1)
    cy = np.round(positions[:, 0]).astype(int)
    cx = np.round(positions[:, 1]).astype(int)
    ys = cy[:, None, None] + off[None, :, None]
    xs = cx[:, None, None] + off[None, None, :]
    ok = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    ysc, xsc = np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)
    shift = row_shift[ysc] if row_shift is not None else 0.0
    dy = ys - positions[:, 0, None, None]
    dx = xs + shift - positions[:, 1, None, None]
    g = np.exp(-(dy**2 + dx**2) / (2 * sigma**2)) / (2 * np.pi * sigma**2)
    g = g * amplitudes[:, None, None] * ok
    ysc, xsc = np.broadcast_arrays(ysc, xsc)
    np.add.at(out, (ysc.ravel(), xsc.ravel()), g.ravel())
    return out


def dent_field(
    shape: tuple[int, int],
    rng: np.random.Generator,
    *,
    count: int,
    depth: tuple[float, float] = (0.05, 0.5),
    size: tuple[float, float] = (0.08, 0.25),
) -> tuple[np.ndarray, np.ndarray]:
    """A thickness factor map with ``count`` smooth dents, and the mask of their cores.

    Each dent is a rotated elliptical bump with a smooth (raised-cosine) edge; ``size`` is the
    range of its half-axes as fractions of the image's shorter side, ``depth`` the range of its
    relative thickness loss.
    """
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    loss = np.zeros(shape)
    mask = np.zeros(shape, bool)
    side = min(h, w)
    for _ in range(count):
        cy, cx = rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w
        ry, rx = rng.uniform(*size, 2) * side
        t = rng.uniform(0, np.pi)
        u = ((yy - cy) * np.cos(t) + (xx - cx) * np.sin(t)) / ry
        v = (-(yy - cy) * np.sin(t) + (xx - cx) * np.cos(t)) / rx
        rho = np.sqrt(u**2 + v**2)
        bump = np.where(rho < 1, 0.5 * (1 + np.cos(np.pi * np.clip(rho, 0, 1))), 0.0)
        d = rng.uniform(*depth)
        loss = np.maximum(loss, d * bump)
        mask |= bump > 0.5
    return 1.0 - loss, mask


def simulate_lattice(
    shape: tuple[int, int] = (256, 256),
    *,
    kind: str = "hexagonal",
    spacing: float = 12.0,
    angle: float = 0.0,
    sigma: float | None = None,
    dose: float = 20.0,
    background: float = 0.0,
    gain: float = 1.0,
    read_noise: float = 0.0,
    jitter: float = 0.0,
    dents: int = 0,
    vacancy_rate: float = 0.01,
    pixel_size: float = 0.0127,
    motif=None,
    seed: int | None = None,
) -> tuple[np.ndarray, LatticeTruth]:
    """A noisy STEM image of a lattice and its truth.

    Parameters
    ----------
    shape
        Image size (rows, columns).
    kind
        ``"square"``, ``"hexagonal"`` (one column per cell) or ``"honeycomb"`` (two sublattices).
    spacing
        Lattice constant ``a`` in pixels (nearest-neighbour distance of the Bravais lattice).
    angle
        Rotation of ``a1`` from the x axis, degrees.
    sigma
        Column width (Gaussian sigma) in pixels; default ``0.12 * spacing``.
    dose
        Expected counts per column of relative intensity 1 (before gain); ``inf`` for no shot
        noise.
    background
        Expected counts per pixel between the columns (amorphous support).
    gain, read_noise
        Detector units per count, and the Gaussian read noise (detector units).
    jitter
        Standard deviation of the per-row displacement along x, pixels.
    dents
        How many smooth thinner regions (5-50 % thickness loss each).
    vacancy_rate
        Share of the sites left empty.
    pixel_size
        nm per pixel (reported with the truth, for errors in pm).
    motif
        Override of ``MOTIFS[kind]``: ``(u, v, intensity)`` per column of the cell.
    seed
        Random seed.

    Returns
    -------
    image, truth
        The recorded image (float32, detector units) and a :class:`LatticeTruth`.
    """
    if len(shape) != 2 or min(shape) < 8:
        raise ValueError(f"shape must be 2D and at least 8x8, got {shape}")
    if spacing < 2:
        raise ValueError(f"spacing must be at least 2 pixels, got {spacing}")
    if not 0 <= vacancy_rate < 1:
        raise ValueError(f"vacancy_rate must be in [0, 1), got {vacancy_rate}")
    rng = np.random.default_rng(seed)
    motif = tuple(MOTIFS[kind] if motif is None else motif)
    sigma = 0.12 * spacing if sigma is None else float(sigma)
    basis = lattice_basis(kind, spacing, angle)
    origin = rng.uniform(0, 1, 2) @ basis
    sites, which = lattice_sites(shape, basis, origin, motif)
    vacant = rng.random(len(sites)) < vacancy_rate
    thickness, mask = (
        dent_field(shape, rng, count=dents) if dents else (np.ones(shape), np.zeros(shape, bool))
    )
    present, sub = sites[~vacant], which[~vacant]
    iy = np.clip(np.round(present[:, 0]).astype(int), 0, shape[0] - 1)
    ix = np.clip(np.round(present[:, 1]).astype(int), 0, shape[1] - 1)
    intensity = np.array([m[2] for m in motif])[sub] * thickness[iy, ix]
    # columns just outside the frame still spill light into it
    ghosts, gwhich = _border_sites(shape, basis, origin, motif, sigma)
    all_pos = np.concatenate([present, ghosts])
    amps = np.concatenate([intensity, np.array([m[2] for m in motif])[gwhich]])
    shifts = rng.normal(0, jitter, shape[0]) if jitter > 0 else np.zeros(shape[0])
    clean_unit = render_columns(shape, all_pos, amps, sigma)
    recorded = render_columns(shape, all_pos, amps, sigma, shifts) if jitter > 0 else clean_unit
    if np.isfinite(dose):
        clean = clean_unit * dose + background
        counts = rng.poisson(recorded * dose + background).astype(np.float64)
    else:
        clean = clean_unit + background
        counts = recorded + background
    image = gain * counts
    if read_noise > 0:
        image = image + rng.normal(0, read_noise, shape)
    truth = LatticeTruth(
        clean=clean.astype(np.float32),
        positions=present,
        sublattice=sub,
        vacancies=sites[vacant],
        dent_map=thickness,
        dent_mask=mask,
        basis=basis,
        kind=kind,
        spacing=float(spacing),
        angle=float(angle),
        sigma=sigma,
        pixel_size=float(pixel_size),
        dose=float(dose),
        gain=float(gain),
        read_noise=float(read_noise),
        jitter=shifts,
    )
    return image.astype(np.float32), truth


def _border_sites(shape, basis, origin, motif, sigma) -> tuple[np.ndarray, np.ndarray]:
    """Sites within ``4 sigma`` outside the frame (they light its edge pixels)."""
    m = int(np.ceil(4 * sigma))
    big, which = lattice_sites((shape[0] + 2 * m, shape[1] + 2 * m), basis, origin + m, motif)
    big = big - m
    h, w = shape
    outside = (big[:, 0] < 0) | (big[:, 0] > h - 1) | (big[:, 1] < 0) | (big[:, 1] > w - 1)
    return big[outside], which[outside]


def scan_jitter(image: np.ndarray, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """``image`` with each row shifted along x by a random ``N(0, jitter)`` px (linear
    interpolation, edges repeated): the scan-line flyback error of :func:`simulate_lattice`,
    applied to an image that exists already (a synthetic target)."""
    image = np.asarray(image, np.float64)
    if jitter <= 0:
        return image
    x = np.arange(image.shape[-1], dtype=np.float64)
    out = np.empty_like(image)
    for i, row in enumerate(image):
        out[i] = np.interp(x + rng.normal(0, jitter), x, row)
    return out


def noisify(
    clean: np.ndarray,
    rng: np.random.Generator,
    *,
    gain: float,
    offset_variance: float,
    jitter: float = 0.0,
) -> np.ndarray:
    """A recording of the noise-free ``clean`` (detector units) under the measured
    Poisson-Gaussian noise ``var = gain * mean + offset_variance``
    (:func:`.lattice.measure_gain`), after an optional scan-line jitter.

    The signal is Poisson in counts of ``gain`` units above a zero level ``c``, plus Gaussian
    read noise of variance ``r``: ``var = gain * (mean - c) + r``. One fit gives only
    ``r - gain * c``; a negative value is a dark offset (``c = -offset_variance / gain``,
    ``r = 0``), a positive one read noise (``c = 0``). Foi, Trimeche, Katkovnik & Egiazarian,
    "Practical Poissonian-Gaussian noise modeling and fitting for single-image raw-data",
    IEEE TIP 17 (2008), for the model.
    """
    if not gain > 0:
        raise ValueError(f"the noise gain must be positive, got {gain}")
    signal = scan_jitter(clean, rng, jitter)
    zero = max(0.0, -offset_variance / gain)
    read = max(0.0, offset_variance + gain * zero)
    counts = rng.poisson(np.clip(signal - zero, 0, None) / gain)
    out = zero + gain * counts
    if read > 0:
        out = out + rng.normal(0, np.sqrt(read), np.shape(clean))
    return out.astype(np.float32)
