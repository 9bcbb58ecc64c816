"""How well a denoised atomic-resolution image keeps what matters: columns, vacancies, dents.

PSNR and SSIM reward a Bragg filter that paints a perfect crystal over every defect, so the
image metrics here come with defect metrics measured against the simulator's truth
(:class:`.simulate.LatticeTruth`):

* ``psnr``, ``ssim``: after the least-squares affine map of the output onto the clean image
  (a denoiser may change the intensity scale); the defect metrics below see the output mapped
  by the inverse regression instead (:func:`calibrate`), which does not shrink noisy outputs;
* column detection: local maxima of the output above half the dimmest true column (over the
  reference's background), refined by a parabola, matched one-to-one to the true columns within
  a quarter of the column spacing -- precision, recall, F1, position RMSE and bias in pm;
* ``vacancies_filled``: the share of true vacancies where the output shows a column at least
  half as bright as its neighbours of the same sublattice (a Bragg filter fills them all);
* ``dent_contrast_error``: mean intensity inside the dents over outside, output against truth
  (relative error), and ``dent_kept``: the share of the true dent depth the output keeps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..classical.metrics import affine_fit, psnr, ssim
from .simulate import LatticeTruth


def image_scores(output: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """PSNR (dB) and SSIM of ``output`` after its affine fit onto ``reference``."""
    ref = np.asarray(reference, dtype=np.float64)
    fitted = affine_fit(output, ref)
    dr = float(ref.max() - ref.min()) or 1.0
    return {"psnr": psnr(fitted, ref, dr), "ssim": ssim(fitted, ref, dr)}


def calibrate(output: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``output`` mapped into the reference's intensity units by the inverse of the regression
    ``output ~ a * reference + b``. Unlike the least-squares fit of the output onto the
    reference (which shrinks a noisy output towards its mean), noise in the output does not
    bias ``a``, so column heights and dent contrasts keep their size."""
    x = np.asarray(output, dtype=np.float64).ravel()
    r = np.asarray(reference, dtype=np.float64).ravel()
    rc = r - r.mean()
    var = float(np.mean(rc**2))
    a = float(np.mean(rc * (x - x.mean())) / var) if var > 0 else 1.0
    b = float(x.mean() - a * r.mean())
    if a == 0 or not np.isfinite(a):
        return np.full(np.shape(output), r.mean())
    return (np.asarray(output, dtype=np.float64) - b) / a


def _parabola(lm: float, l0: float, lp: float) -> float:
    den = lm - 2 * l0 + lp
    return float(np.clip(0.5 * (lm - lp) / den, -0.5, 0.5)) if den < 0 else 0.0


def detect_columns(image: np.ndarray, *, min_distance: float, threshold: float) -> np.ndarray:
    """Atom columns of ``image``: local maxima within a disk of ``min_distance`` px that exceed
    ``threshold``, refined to sub-pixel positions by a parabola per axis; ``(n, 2)`` as y, x."""
    x = np.asarray(image, dtype=np.float64)
    r = max(1, round(min_distance))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disk = yy**2 + xx**2 <= min_distance**2 + 1e-9
    peaks = (ndi.maximum_filter(x, footprint=disk, mode="nearest") == x) & (x > threshold)
    peaks[0, :] = peaks[-1, :] = peaks[:, 0] = peaks[:, -1] = False
    idx = np.argwhere(peaks)
    if len(idx) == 0:
        return np.empty((0, 2))
    out = np.empty((len(idx), 2))
    for k, (i, j) in enumerate(idx):
        out[k, 0] = i + _parabola(x[i - 1, j], x[i, j], x[i + 1, j])
        out[k, 1] = j + _parabola(x[i, j - 1], x[i, j], x[i, j + 1])
    return out


def nearest_neighbour_distance(points: np.ndarray) -> float:
    """Median distance from each point to its nearest neighbour."""
    from scipy.spatial import cKDTree

    if len(points) < 2:
        return float("nan")
    d, _ = cKDTree(points).query(points, k=2)
    return float(np.median(d[:, 1]))


def _disk_max(image: np.ndarray, points: np.ndarray, radius: float) -> np.ndarray:
    """The maximum of ``image`` within ``radius`` px of each point."""
    r = max(1, int(np.ceil(radius)))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disk = yy**2 + xx**2 <= radius**2 + 1e-9
    local = ndi.maximum_filter(image, footprint=disk, mode="nearest")
    iy = np.clip(np.round(points[:, 0]).astype(int), 0, image.shape[0] - 1)
    ix = np.clip(np.round(points[:, 1]).astype(int), 0, image.shape[1] - 1)
    return local[iy, ix]


def vacancy_fill(
    fitted: np.ndarray,
    truth: LatticeTruth,
    *,
    radius: float,
    background: float,
    threshold: float,
) -> float:
    """Share of the true vacancies that ``fitted`` (output in reference units) fills in: a
    column there that the detection would find (above ``threshold``) and at least half as
    bright as the columns of its sublattice around it."""
    if len(truth.vacancies) == 0:
        return float("nan")
    from scipy.spatial import cKDTree

    at_vacancy = _disk_max(fitted, truth.vacancies, radius) - background
    detectable = at_vacancy > threshold - background
    at_columns = _disk_max(fitted, truth.positions, radius) - background
    tree = cKDTree(truth.positions)
    reach = 1.6 * truth.spacing
    filled = 0
    for k, site in enumerate(truth.vacancies):
        near = tree.query_ball_point(site, reach)
        # the vacancy's sublattice: the one whose columns are not nearer than the spacing
        same = [i for i in near if np.hypot(*(truth.positions[i] - site)) > 0.8 * truth.spacing]
        if not same:
            same = near
        level = np.median(at_columns[same]) if same else np.median(at_columns)
        filled += bool(detectable[k] and at_vacancy[k] >= 0.5 * level)
    return float(filled / len(truth.vacancies))


def _inside(points: np.ndarray, shape: tuple[int, ...], margin: float) -> np.ndarray:
    h, w = shape
    return (
        (points[:, 0] >= margin)
        & (points[:, 0] <= h - 1 - margin)
        & (points[:, 1] >= margin)
        & (points[:, 1] <= w - 1 - margin)
    )


def dent_contrast(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean intensity inside ``mask`` over the mean outside."""
    inside = float(np.mean(image[mask]))
    outside = float(np.mean(image[~mask]))
    return inside / outside if outside else float("nan")


def lattice_metrics(
    output: np.ndarray, truth: LatticeTruth, *, same_units: bool = True
) -> dict[str, Any]:
    """Every lattice metric of ``output`` against the simulator's ``truth`` (see module doc).

    ``same_units``: the output is in the input's intensity units with its offset (as every
    classical filter and N2V keeps them); otherwise it is first calibrated onto the reference
    for the dent contrast too (:func:`calibrate`).
    """
    from ..spots.match import match_points

    out = np.asarray(output, dtype=np.float64)
    ref = np.asarray(truth.clean, dtype=np.float64)
    if out.shape != ref.shape:
        raise ValueError(f"output {out.shape} and truth {ref.shape} differ in shape")
    fitted = calibrate(out, ref)
    result: dict[str, Any] = image_scores(out, ref)
    background = float(np.percentile(ref, 5))
    heights = _disk_max(ref, truth.positions, 1.0) - background
    threshold = background + 0.5 * float(np.percentile(heights, 5))
    spacing = nearest_neighbour_distance(truth.positions)
    tolerance = spacing / 4
    found = detect_columns(fitted, min_distance=0.6 * spacing, threshold=threshold)
    # columns cut by the frame are scored neither way
    margin = max(1.5, tolerance)
    found = found[_inside(found, ref.shape, margin)]
    true = truth.positions[_inside(truth.positions, ref.shape, margin)]
    match = match_points(found, true, tolerance=tolerance)
    pm = truth.pixel_size * 1000.0
    if len(match.distance):
        shift = found[match.found_index] - true[match.true_index]
        bias = shift.mean(axis=0) * pm
    else:
        bias = np.array([np.nan, np.nan])
    result.update(
        {
            "precision": match.precision,
            "recall": match.recall,
            "f1": match.f1,
            "rmse_pm": match.rmse * pm,
            "bias_pm": float(np.hypot(*bias)),
            "bias_y_pm": float(bias[0]),
            "bias_x_pm": float(bias[1]),
            "vacancies_filled": vacancy_fill(
                fitted, truth, radius=tolerance, background=background, threshold=threshold
            ),
            "columns": len(true),
            "vacancies": len(truth.vacancies),
        }
    )
    if truth.dent_mask.any() and not truth.dent_mask.all():
        # a ratio of region means: blind to the scale, unbiased under zero-mean noise and blur
        c_true = dent_contrast(ref, truth.dent_mask)
        c_out = dent_contrast(out if same_units else fitted, truth.dent_mask)
        result["dent_contrast_error"] = abs(c_out - c_true) / c_true
        result["dent_kept"] = (1 - c_out) / (1 - c_true) if c_true != 1 else float("nan")
    else:
        result["dent_contrast_error"] = float("nan")
        result["dent_kept"] = float("nan")
    return result


def truth_from_reference(
    reference: np.ndarray, *, pixel_size: float = 1.0, min_cells: float = 4.0
) -> LatticeTruth:
    """What a clean reference image shows, as the truth :func:`lattice_metrics` scores against.

    For a reference without a simulator's truth (the Noise dock's compare): the lattice and
    motif are measured on it (:mod:`.lattice`); every motif site inside the image whose peak
    stands above 35 % of its sublattice's median height is a column (at the reference's own
    local maximum within a quarter of the column spacing, else at the site), the others are
    vacancies; the thickness map is the reference's low-pass (Gaussian of 1.5 lattice
    constants, mirrored at the frame) over its median, and the dent mask where it is below half
    of its deepest loss away from the frame (none when that loss is under 5 %): on simulated
    lattices the columns and vacancies found are the true ones, the dent mask overlaps the true
    one by 40-47 % (tests/em/test_metrics.py). ``pixel_size`` in nm. Raises
    :class:`~.errors.LatticeNotFound` for a reference without a lattice.
    """
    from scipy.spatial import cKDTree

    from .lattice import measure_lattice, measure_motif
    from .simulate import lattice_sites

    ref = np.asarray(reference, dtype=np.float64)
    lat = measure_lattice(ref, min_cells=min_cells)
    motif = measure_motif(ref, lat)
    # the motif's columns; in a clean image any ripple of the cell's background clears the
    # noise test of measure_motif: columns under 10 % of the brightest are dropped
    strong = motif.columns[motif.columns[:, 2] >= 0.1 * motif.columns[0, 2]]
    cells = tuple((float(u), float(v), 1.0) for u, v, _ in strong)
    sites, which = lattice_sites(ref.shape, lat.basis, motif.origin, cells)
    keep = _inside(sites, ref.shape, 1.0)
    sites, which = sites[keep], which[keep]
    spacing = nearest_neighbour_distance(sites)
    background = float(np.percentile(ref, 5))
    height = _disk_max(ref, sites, spacing / 4) - background
    expected = np.array([np.median(height[which == k]) for k in range(len(cells))])
    present = height >= 0.35 * expected[which]
    found = detect_columns(
        ref, min_distance=0.6 * spacing, threshold=background + 0.35 * float(expected.min())
    )
    positions = sites[present].copy()
    if len(found):
        d, i = cKDTree(found).query(positions)
        near = d <= spacing / 4
        positions[near] = found[i[near]]
    a = float(lat.spacing_px)
    low = ndi.gaussian_filter(ref - background, 1.5 * a, mode="reflect")
    thickness = low / max(float(np.median(low)), 1e-12)
    m = round(2 * a)  # the frame's own columns: judged inside it
    inner = thickness[m:-m, m:-m] if min(ref.shape) > 4 * m else thickness
    loss = 1.0 - float(inner.min())
    mask = thickness < 1 - loss / 2 if loss >= 0.05 else np.zeros(ref.shape, bool)
    return LatticeTruth(
        clean=ref.astype(np.float32),
        positions=positions,
        sublattice=which[present],
        vacancies=sites[~present],
        dent_map=thickness,
        dent_mask=mask,
        basis=lat.basis,
        kind=lat.kind,
        spacing=a,
        angle=float(lat.orientation),
        sigma=float(motif.sigma_px),
        pixel_size=float(pixel_size),
        dose=float("nan"),
        gain=float("nan"),
        read_noise=float("nan"),
    )
