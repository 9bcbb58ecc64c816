"""Synthetic clean targets for unpaired training on atomic-resolution images, without limit.

A target looks like a clean version of the user's noisy image: the same lattice (spacing,
angle, orientation: the measured basis of the noisy image), the same pixel size, intensities
in the same units; then thickness changes (dents) and about 1 % vacancies are added, so that a
network trained towards the targets has no reason to erase them.

Two sources of the crystal:

* :func:`reference_sampler` -- the user's clean (simulated) reference at any zoom and rotation:
  its own lattice is measured (FFT, or the autocorrelation when it shows only a few cells), the
  one of its symmetry-equivalent bases whose unit cell best matches the noisy image's folded
  cell is chosen (a honeycomb turned by 60 degrees swaps its sublattices), and every target
  pixel samples the reference at the same fractional cell position (periodic, so any size),
  after an anti-aliasing blur that also matches the measured column width;
* :func:`motif_sampler` -- without a reference, Gaussian columns of the measured motif.

Dents: :func:`procedural_dents` (smooth random regions, 5-50 % thinner) or the masks the issue's
seed made from the noisy image itself (:func:`seed_dent_masks`: mean subtracted, 5 x 5 average,
scaled to 0-255, zero below 128, Gaussian blur; and its min- and mean-neighbourhood variants),
so that the image's real dents appear in the targets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from .errors import LatticeNotFound
from .lattice import Lattice, fold, measure_lattice, measure_motif, reduce_basis
from .simulate import dent_field, lattice_sites, render_columns

Sampler = Callable[[tuple[int, int], np.random.Generator], tuple[np.ndarray, np.ndarray]]


# -- the reference's lattice -------------------------------------------------------------------


def measure_lattice_acf(
    image: np.ndarray, *, min_correlation: float = 0.7, scale=1.0, unit: str = "pixel"
) -> Lattice:
    """The lattice of a clean image from its autocorrelation (works with 2-3 cells).

    The normalised autocorrelation of a perfect crystal is close to 1 at every lattice
    translation; the two shortest non-collinear lags above ``min_correlation`` (after a
    parabola refinement) are the basis.
    """
    from scipy.fft import fft2, ifft2

    x = np.asarray(image, dtype=np.float64)
    x = x - x.mean()
    h, w = x.shape
    f = fft2(x, s=(2 * h, 2 * w))
    acf = np.real(ifft2(f * np.conj(f)))
    ones = np.real(ifft2(np.abs(fft2(np.ones_like(x), s=(2 * h, 2 * w))) ** 2))
    acf = np.fft.fftshift(acf / np.maximum(ones, 1.0)) / max(np.var(x), 1e-30)
    c = np.array([h, w])
    yy, xx = np.indices(acf.shape)
    lag = np.stack([yy - c[0], xx - c[1]], axis=-1).astype(float)
    r = np.hypot(lag[..., 0], lag[..., 1])
    # the central peak ends where the correlation first falls below zero
    radial = ndi.mean(acf, labels=np.round(r).astype(int), index=np.arange(int(r.max()) + 1))
    below = np.flatnonzero(np.asarray(radial) < 0)
    r0 = float(below[0]) if len(below) else 2.0
    size = max(3, int(r0) | 1)
    local = ndi.maximum_filter(acf, size=size) == acf
    usable = (np.abs(lag[..., 0]) <= h / 2) & (np.abs(lag[..., 1]) <= w / 2) & (r > r0)
    cand = np.argwhere(local & usable & (acf > min_correlation))
    if len(cand) < 2:
        raise LatticeNotFound(
            "no lattice found in the reference (its autocorrelation has no "
            f"repeat above {min_correlation:.2f})"
        )
    vecs = []
    for i, j in cand:
        if 0 < i < acf.shape[0] - 1 and 0 < j < acf.shape[1] - 1:
            from .lattice import _parabola

            dy = _parabola(acf[i - 1, j], acf[i, j], acf[i + 1, j])
            dx = _parabola(acf[i, j - 1], acf[i, j], acf[i, j + 1])
            vecs.append((i + dy - c[0], j + dx - c[1], acf[i, j]))
    vecs = np.asarray(vecs)
    lengths = np.hypot(vecs[:, 0], vecs[:, 1])
    order = np.argsort(lengths)
    vecs, lengths = vecs[order], lengths[order]
    a1 = vecs[0, :2]
    u = vecs[:, :2] / lengths[:, None]
    other = np.abs(u @ (a1 / lengths[0])) < np.cos(np.radians(20))
    if not other.any():
        raise LatticeNotFound("no lattice found in the reference (one family of rows only)")
    a2 = vecs[np.flatnonzero(other)[0], :2]
    basis = reduce_basis(np.stack([a1, a2]))
    sy, sx = (scale, scale) if np.isscalar(scale) else tuple(scale)
    conf = float(min(vecs[0, 2], vecs[np.flatnonzero(other)[0], 2]))
    return Lattice(
        basis=basis,
        reciprocal=np.linalg.inv(basis).T,
        peaks=np.empty((0, 2)),
        peak_snr=np.empty(0),
        indexed=np.empty((0, 2), int),
        basis_snr=(float("nan"), float("nan")),
        confidence=min(conf, 1.0),
        shape=x.shape,
        fft_size=0,
        scale=(float(sy), float(sx)),
        unit=unit,
        extra={"method": "autocorrelation"},
    )


def reference_lattice(reference: np.ndarray) -> Lattice:
    """The reference's lattice: FFT first, the autocorrelation when the FFT finds none."""
    try:
        return measure_lattice(reference)
    except LatticeNotFound:
        return measure_lattice_acf(reference)


def equivalent_bases(basis: np.ndarray) -> list[np.ndarray]:
    """The basis under the lattice's rotations (and mirror): 12 for hexagonal, 8 for square,
    4 otherwise (``a -> -a`` and the swap of ``a1, a2`` where the lengths allow)."""
    a1, a2 = np.asarray(basis, float)
    la, lb = np.linalg.norm(a1), np.linalg.norm(a2)
    cos = np.dot(a1, a2) / (la * lb)
    equal = abs(lb / la - 1) < 0.05
    if equal and abs(cos + 0.5) < 0.07:  # 120 degrees: rotation by 60 is (a1 + a2, -a1)
        rot = np.array([[1, 1], [-1, 0]])
    elif equal and abs(cos) < 0.07:  # square: rotation by 90 is (a2, -a1)
        rot = np.array([[0, 1], [-1, 0]])
    else:
        rot = -np.eye(2, dtype=int)
    ops, m = [], np.eye(2, dtype=int)
    while True:
        ops.append(m)
        m = rot @ m
        if np.array_equal(m, np.eye(2, dtype=int)):
            break
    mirrors = [np.eye(2, dtype=int)] + ([np.array([[0, 1], [1, 0]])] if equal else [])
    out = []
    for mirror in mirrors:
        for op in ops:
            out.append((op @ mirror) @ np.stack([a1, a2]))
    return out


# -- samplers: a clean crystal on the noisy image's lattice -----------------------------------


@dataclass
class CrystalModel:
    """Everything a target needs: the noisy image's basis and a function that draws the crystal."""

    basis: np.ndarray  # the noisy image's basis (target pixels)
    columns: np.ndarray  # (m, 2) fractional motif positions of the columns (for vacancies)
    sigma: float  # column width in target pixels
    background: float
    source: str
    draw: Callable[[tuple[int, int], np.ndarray], np.ndarray] = field(repr=False)
    info: dict[str, Any] = field(default_factory=dict)


def _cell_grid(bins: int) -> np.ndarray:
    g = (np.arange(bins) + 0.5) / bins
    u, v = np.meshgrid(g, g, indexing="ij")
    return np.stack([u, v], axis=-1)


def _circular_match(a: np.ndarray, b: np.ndarray) -> tuple[float, tuple[int, int]]:
    """Best normalised circular cross-correlation of two cells and its shift."""
    a = (a - a.mean()) / (a.std() or 1.0)
    b = (b - b.mean()) / (b.std() or 1.0)
    xc = np.real(np.fft.ifft2(np.fft.fft2(a) * np.conj(np.fft.fft2(b)))) / a.size
    k = np.unravel_index(np.argmax(xc), xc.shape)
    return float(xc[k]), (int(k[0]), int(k[1]))


def reference_sampler(
    noisy: np.ndarray, reference: np.ndarray, *, lattice: Lattice | None = None, bins: int = 24
) -> CrystalModel:
    """A crystal drawn from ``reference`` onto the lattice measured on ``noisy``."""
    lat_n = lattice or measure_lattice(noisy)
    motif_n = measure_motif(noisy, lat_n)
    ref = np.asarray(reference, dtype=np.float64)
    lat_r = reference_lattice(ref)
    zoom = float(np.mean(lat_r.lengths_px) / np.mean(lat_n.lengths_px))  # ref px per target px
    try:
        sigma_r = measure_motif(ref, lat_r).sigma_px / zoom
    except Exception:  # a reference with too few pixels per cell to fit
        sigma_r = 0.0
    sigma_n = motif_n.sigma_px if np.isfinite(motif_n.sigma_px) else 1.0
    extra = np.sqrt(max(sigma_n**2 - sigma_r**2, 0.25))  # at least the anti-aliasing blur
    smooth = ndi.gaussian_filter(ref, extra * zoom, mode="nearest")
    cell_n = fold(noisy, lat_n.basis, bins=bins)
    grid = _cell_grid(bins)
    centre = np.array(ref.shape, float) / 2
    best = None
    for cand in equivalent_bases(lat_r.basis):
        origin = centre - 0.5 * (cand[0] + cand[1])
        pts = origin + grid @ cand
        cell_r = ndi.map_coordinates(smooth, pts.reshape(-1, 2).T, order=1, mode="nearest")
        score, shift = _circular_match(cell_n, cell_r.reshape(bins, bins))
        if best is None or score > best[0]:
            best = (score, shift, cand, origin)
    score, shift, basis_r, origin_r = best
    # the shift aligns the reference cell with the noisy cell: fold it into the origin
    origin_r = origin_r - (np.array(shift, float) / bins) @ basis_r
    cell_best = ndi.map_coordinates(
        smooth, (origin_r + grid @ basis_r).reshape(-1, 2).T, order=1, mode="nearest"
    ).reshape(bins, bins)
    # intensities into the noisy image's units: least squares cell_n ~ a * cell_ref + b
    a, b = np.polyfit(cell_best.ravel(), cell_n.ravel(), 1)
    inv_n = np.linalg.inv(lat_n.basis)
    # keep the sampled cell inside the reference (its centre, one cell wide)
    corners = origin_r + np.array([[0, 0], [1, 0], [0, 1], [1, 1]]) @ basis_r
    if corners.min() < 0 or np.any(corners.max(axis=0) > np.array(ref.shape) - 1):
        raise LatticeNotFound("the reference shows less than one whole unit cell")

    def draw(shape: tuple[int, int], offset: np.ndarray) -> np.ndarray:
        yy, xx = np.indices(shape, dtype=np.float64)
        p = np.stack([yy, xx], axis=-1) - offset
        frac = np.mod(p @ inv_n, 1.0)
        pts = origin_r + frac @ basis_r
        vals = ndi.map_coordinates(smooth, pts.reshape(-1, 2).T, order=3, mode="nearest")
        return (a * vals + b).reshape(shape)

    return CrystalModel(
        basis=lat_n.basis,
        columns=motif_n.columns[:, :2],
        sigma=sigma_n,
        background=float(a * smooth.min() + b),
        source="reference",
        draw=draw,
        info={
            "match": round(score, 4),
            "zoom": round(zoom, 4),
            "reference_basis": basis_r.round(3).tolist(),
        },
    )


def motif_sampler(noisy: np.ndarray, *, lattice: Lattice | None = None) -> CrystalModel:
    """A crystal of Gaussian columns with the motif measured on ``noisy`` (no reference)."""
    lat = lattice or measure_lattice(noisy)
    motif = measure_motif(noisy, lat)
    sigma = motif.sigma_px if np.isfinite(motif.sigma_px) else 0.12 * lat.spacing_px
    amp = motif.amplitude if np.isfinite(motif.amplitude) else motif.columns[0, 2]
    rel = motif.relative
    cells = tuple((float(u), float(v), float(r)) for (u, v, _), r in zip(motif.columns, rel))
    unit_peak = 1 / (2 * np.pi * sigma**2)

    def draw(shape: tuple[int, int], offset: np.ndarray) -> np.ndarray:
        pos, which = lattice_sites(shape, lat.basis, offset, cells)
        margin = _margin_sites(shape, lat.basis, offset, cells, sigma)
        pos = np.concatenate([pos, margin[0]])
        which = np.concatenate([which, margin[1]])
        amps = np.array([c[2] for c in cells])[which] * amp / unit_peak
        return render_columns(shape, pos, amps, sigma) + motif.background

    # intensities into the noisy image's units: its folded cell against the model's
    bins = 24
    probe = draw(noisy.shape, motif.origin)  # columns where the noisy image has them
    a, b = np.polyfit(
        fold(probe, lat.basis, bins=bins).ravel(), fold(noisy, lat.basis, bins=bins).ravel(), 1
    )

    def calibrated(shape: tuple[int, int], offset: np.ndarray) -> np.ndarray:
        return a * draw(shape, offset) + b

    return CrystalModel(
        basis=lat.basis,
        columns=motif.columns[:, :2],
        sigma=sigma,
        background=float(a * motif.background + b),
        source="motif",
        draw=calibrated,
        info={"columns": len(cells), "column_sigma_px": round(float(sigma), 3)},
    )


def _margin_sites(shape, basis, origin, cells, sigma):
    m = int(np.ceil(4 * sigma))
    big, which = lattice_sites((shape[0] + 2 * m, shape[1] + 2 * m), basis, origin + m, cells)
    big = big - m
    h, w = shape
    out = (big[:, 0] < 0) | (big[:, 0] > h - 1) | (big[:, 1] < 0) | (big[:, 1] > w - 1)
    return big[out], which[out]


# -- dents ------------------------------------------------------------------------------------


def seed_dent_masks(
    image: np.ndarray, *, window: int = 5, blur: float = 5.0, threshold: float = 128.0
) -> dict[str, np.ndarray]:
    """The issue's seed dent masks of ``image`` (each float32, 0-255).

    ``mask``: the image less its mean, averaged over ``window x window``, scaled to 0-255, set
    to 0 below ``threshold`` (so that nothing outside the dent changes), Gaussian-blurred by
    ``blur`` px. ``min``: each pixel of the (unblurred) mask replaced by the lowest value
    within Chebyshev distance 3, then blurred; ``mean``: by the average within distance 5.
    On atomic images choose ``window``/``blur`` of about the column spacing, so that the
    columns themselves do not show in the mask.
    """
    x = np.asarray(image, dtype=np.float64)
    d = ndi.uniform_filter(x - x.mean(), size=window, mode="reflect")
    lo, hi = float(d.min()), float(d.max())
    s = (d - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(d)
    s[s < threshold] = 0.0
    out = {
        "mask": ndi.gaussian_filter(s, blur),
        "min": ndi.gaussian_filter(ndi.minimum_filter(s, size=7), blur),
        "mean": ndi.gaussian_filter(ndi.uniform_filter(s, size=11), blur),
    }
    return {k: v.astype(np.float32) for k, v in out.items()}


def mask_thickness(mask: np.ndarray, image: np.ndarray, *, smooth: float) -> np.ndarray:
    """A thickness factor from a 0-255 dent mask whose contrast matches the image's own.

    Inside the mask the image, smoothed over ``smooth`` px, is brighter or darker than outside
    by some ratio; the factor is ``1 + (ratio - 1) * mask / 255``.
    """
    m = np.asarray(mask, dtype=np.float64) / 255.0
    low = ndi.gaussian_filter(np.asarray(image, dtype=np.float64), smooth)
    inside = m > 0.5
    if not inside.any() or inside.all():
        return np.ones_like(m)
    ratio = low[inside].mean() / low[~inside].mean()
    return 1.0 + (ratio - 1.0) * m


def procedural_dents(shape, rng, *, count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """1-3 smooth random dents of 5-50 % thickness loss (:func:`.simulate.dent_field`)."""
    n = int(rng.integers(1, 4)) if count is None else count
    return dent_field(shape, rng, count=n) if n else (np.ones(shape), np.zeros(shape, bool))


# -- the targets ------------------------------------------------------------------------------


@dataclass
class Target:
    image: np.ndarray  # float32, the noisy image's units
    thickness: np.ndarray
    vacancies: np.ndarray  # (k, 2) removed column positions
    dents: str  # "procedural", "seed:mask", "seed:min", "seed:mean" or "none"


def make_target(
    model: CrystalModel,
    shape: tuple[int, int],
    rng: np.random.Generator,
    *,
    vacancy_rate: float = 0.01,
    thickness: np.ndarray | None = None,
    dents: str = "procedural",
) -> Target:
    """One target: the crystal at a random offset, dents applied, vacancies removed."""
    offset = rng.uniform(0, 1, 2) @ model.basis
    crystal = model.draw(shape, offset)
    cells = tuple((float(u), float(v), 1.0) for u, v in model.columns)
    sites, _ = lattice_sites(shape, model.basis, offset, cells)
    vacant = sites[rng.random(len(sites)) < vacancy_rate]
    above = crystal - model.background
    if len(vacant):
        # take the column out: a Gaussian hole a little wider than the column
        hole = render_columns(shape, vacant, np.full(len(vacant), 1.0), 1.3 * model.sigma)
        hole *= 2 * np.pi * (1.3 * model.sigma) ** 2
        above = above * (1 - np.clip(hole, 0, 1))
    if thickness is None:
        if dents == "procedural":
            thickness, _ = procedural_dents(shape, rng)
        else:
            thickness = np.ones(shape)
    image = model.background + above * thickness
    return Target(image.astype(np.float32), thickness, vacant, dents)


def target_stream(
    noisy: np.ndarray,
    *,
    reference: np.ndarray | None = None,
    shape: tuple[int, int] | None = None,
    seed: int = 0,
    vacancy_rate: float = 0.01,
    seed_masks: bool = True,
    lattice: Lattice | None = None,
) -> tuple[CrystalModel, Iterator[Target]]:
    """The crystal model and an endless stream of targets for ``noisy``.

    Every fourth target (when ``seed_masks``) carries one of the seed's masks of the noisy
    image (cycling ``mask``, ``min``, ``mean``), the others procedural dents.
    """
    noisy = np.asarray(noisy, dtype=np.float64)
    lat = lattice or measure_lattice(noisy)
    model = (
        reference_sampler(noisy, reference, lattice=lat)
        if reference is not None
        else motif_sampler(noisy, lattice=lat)
    )
    shape = tuple(shape or noisy.shape)
    masks = {}
    if seed_masks:
        spacing = float(lat.spacing_px)
        window = max(5, round(spacing) | 1)
        masks = seed_dent_masks(noisy, window=window, blur=spacing)

    def stream() -> Iterator[Target]:
        rng = np.random.default_rng(seed)
        k = 0
        while True:
            if masks and k % 4 == 3 and shape == noisy.shape:
                name = ("mask", "min", "mean")[(k // 4) % 3]
                thick = mask_thickness(masks[name], noisy, smooth=float(lat.spacing_px))
                yield make_target(
                    model,
                    shape,
                    rng,
                    vacancy_rate=vacancy_rate,
                    thickness=thick,
                    dents=f"seed:{name}",
                )
            else:
                yield make_target(model, shape, rng, vacancy_rate=vacancy_rate)
            k += 1

    return model, stream()
