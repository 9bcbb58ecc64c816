"""Salt-and-pepper (impulse) noise: detect outlier pixels, replace only those.

Three detectors share one repair step: every flagged pixel becomes the median of its non-flagged
neighbours (3x3, widened to 5x5, 7x7, ... until one is found); every other pixel is returned
unchanged, bit for bit.

All detectors work in variance-stabilised units (a generalized Anscombe transform with a noise
model estimated on the image after replacing its local extremes by the 3x3 median), so that one
threshold fits dark and bright regions of a Poisson-Gaussian image.

``adaptive_median``
    Hwang and Haddad's adaptive median (1995): the window grows (3, 5, ... ``max_size``) until its
    median is not itself an extreme of the window; the pixel is an outlier if it is an extreme
    of that window *and* differs from the median by more than ``threshold`` noise sigmas (plain
    AMF flags every local extreme, which on a noisy real image is ~10 % of the clean pixels).

``kde_lof``
    Local density factor of Latecki, Lazarevic and Pokrajac (2007, "Outlier detection with kernel
    density functions"): a Gaussian-kernel density estimate with variable widths
    (``h * k-distance``) of each pixel's feature vector, compared with the densities of its k
    nearest neighbours. Features: the pixel's residual from its neighbourhood median and the
    neighbourhood's contrast (morphological gradient of the median image), both in stabilised
    units. Densities are taken relative to a reference sample of pixels that are not extremes of
    their neighbourhood (so that the 5 % of impulses, a population of their own, cannot hide each
    other); pixels inside the reference's core (small residual) are inliers without scoring.

``grid_lof``
    GridLOF of Chiu and Fu (2003, "Enhancements on local outlier detection"): the image is cut into
    cells of ``cell`` x ``cell`` pixels by intensity bins of ``bin_width`` noise sigmas; cells
    holding at least ``min_count`` pixels are dense and their pixels are pruned as inliers; only
    pixels in sparse cells are candidates and get a local outlier factor (Breunig et al. 2000) in
    the same feature space, against a reference sample of the dense-cell pixels.

Neighbour searches use scikit-learn's ``NearestNeighbors`` (KD-tree) on at most
``reference_size`` reference points; everything else is vectorised numpy/OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage as ndi

from .filters import as_float32
from .noise import estimate_noise, estimate_sigma
from .vst import GAT


@dataclass
class Detection:
    """Outlier mask and the score behind it (for display and tuning)."""

    mask: np.ndarray
    score: np.ndarray | None = None


# ---------------------------------------------------------------------------------------------
# shared helpers


def _median3(x: np.ndarray) -> np.ndarray:
    x = as_float32(x)
    if x.ndim == 2:
        return cv2.medianBlur(x, 3)
    return ndi.median_filter(x, size=3, mode="nearest")


def _minmax(x: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    if x.ndim == 2:
        kernel = np.ones((size, size), np.uint8)
        return (
            cv2.erode(x, kernel, borderType=cv2.BORDER_REPLICATE),
            cv2.dilate(x, kernel, borderType=cv2.BORDER_REPLICATE),
        )
    return (
        ndi.minimum_filter(x, size=size, mode="nearest"),
        ndi.maximum_filter(x, size=size, mode="nearest"),
    )


@dataclass
class Normalised:
    """An image seen through its noise model: residuals and contrast in noise sigmas."""

    residual: np.ndarray  # t - median3(t), t = GAT(x) (noise sigma ~1)
    contrast: np.ndarray  # morphological gradient of median3(t)
    median: np.ndarray  # median3(t)
    sigma: np.ndarray  # local noise sigma in stabilised units (1)
    gat: GAT  # the variance-stabilising transform of the noise model

    def stabilised(self, x: np.ndarray) -> np.ndarray:
        return stabilise(self.gat, x)


def noise_model(x: np.ndarray, gat: GAT | None = None) -> tuple[GAT, float]:
    """A noise model fitted on ``x`` despite impulses, and a variance floor.

    Two passes: a first fit on all pixels (inflated by the impulses) marks the pixels that are
    extremes of their 3x3 window and more than 4 sigmas from its median; the second fit leaves
    those out. The floor is the model's variance at the darkest fitted intensity (the linear model
    is not extrapolated below its data), and at least 1/12 for integer-valued data (quantisation).
    """
    x = as_float32(x)
    integer = bool(np.all(np.mod(x.ravel()[:: max(1, x.size // 100000)], 1) == 0))
    quant = 1.0 / 12 if integer else 1e-12
    if gat is not None:
        return gat, quant
    try:
        first = estimate_noise(x)
        med = _median3(x)
        sig = np.sqrt(np.maximum(_variance(first.gat(), med), _floor(first, quant)))
        bad = _extremes(x) & (np.abs(x - med) > 4 * sig)
        fit = estimate_noise(x, exclude=ndi.binary_dilation(bad))
    except ValueError:
        s = max(estimate_sigma(x), 1e-3)
        return GAT(0.0, s * s), max(quant, s * s)
    gat = fit.gat()
    if gat.gaussian and gat.b <= 1e-12:
        s = max(estimate_sigma(x), 1e-3)
        gat = GAT(0.0, s * s)
    return gat, _floor(fit, quant)


def _floor(fit, quant: float) -> float:
    used = fit.means[fit.used] if fit.used.any() else fit.means
    m_min = float(used.min()) if used.size else 0.0
    return max(quant, float(fit.variance(m_min)) if fit.model != "gaussian" else fit.sigma**2)


def stabilise(gat: GAT, x: np.ndarray) -> np.ndarray:
    """The GAT of ``x``, continued linearly below the zero-signal level instead of clipped.

    The transform is undefined below ``mu - 3/8 a``: clipping there would squash a pepper pixel
    (0) onto a dark background (the camera offset) however far below it lies. Below the offset
    ``mu`` the line with the transform's slope at ``mu`` is used.
    """
    t = gat.forward(x)
    if gat.gaussian:
        return t
    mu, sigma = gat.mu_sigma
    base = 0.375 + (sigma / gat.a) ** 2
    slope = 1.0 / (gat.a * np.sqrt(base))
    below = np.asarray(x, dtype=np.float32) < mu
    if np.any(below):
        xb = np.asarray(x, dtype=np.float32)[below]
        t[below] = np.float32(2 * np.sqrt(base)) + np.float32(slope) * (xb - np.float32(mu))
    return t


def _variance(gat: GAT, mean: np.ndarray) -> np.ndarray:
    if gat.gaussian:
        return np.full(mean.shape, gat.b, np.float32)
    return (np.float32(gat.a) * mean + np.float32(gat.b)).astype(np.float32)


def normalise(x: np.ndarray, gat: GAT | None = None) -> Normalised:
    """Residual from the 3x3(x3) median and local contrast, in stabilised noise units.

    Working on the GAT of ``x`` (not on ``(x - median) / sigma``) keeps the skew of Poisson noise
    at low counts: a two-photon event on a dark background is not an impulse.
    """
    x = as_float32(x)
    gat, _ = noise_model(x, gat)
    t = stabilise(gat, x)
    med = _median3(t)
    lo, hi = _minmax(med, 3)
    return Normalised(t - med, hi - lo, med, np.ones_like(med), gat)


def _offsets(ndim: int, radius: int) -> np.ndarray:
    grids = np.meshgrid(*([np.arange(-radius, radius + 1)] * ndim), indexing="ij")
    off = np.stack([g.ravel() for g in grids], axis=1)
    return off[np.any(off != 0, axis=1)]


def _gather(
    x: np.ndarray, coords: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Values of ``x`` at ``coords + offset`` for each offset; validity (inside the image)."""
    n, k = len(coords), len(offsets)
    vals = np.empty((n, k), dtype=x.dtype)
    valid = np.ones((n, k), dtype=bool)
    shape = np.array(x.shape)
    for j, off in enumerate(offsets):
        c = coords + off
        ok = np.all((c >= 0) & (c < shape), axis=1)
        c = np.clip(c, 0, shape - 1)
        vals[:, j] = x[tuple(c.T)]
        valid[:, j] = ok
    return vals, valid


def replace_outliers(x: np.ndarray, mask: np.ndarray, max_radius: int = 10) -> np.ndarray:
    """``x`` with each masked pixel set to the median of its unmasked neighbours.

    float64 input stays float64, anything else becomes float32 (exact for integers < 2**24),
    so that unmasked pixels keep their values bit for bit.
    """
    out = np.array(x, dtype=np.float64 if np.asarray(x).dtype == np.float64 else np.float32)
    coords = np.argwhere(mask)
    radius = 1
    while len(coords) and radius <= max_radius:
        offsets = _offsets(x.ndim, radius)
        vals, valid = _gather(out, coords, offsets)
        nb_mask, _ = _gather(mask, coords, offsets)
        good = valid & ~nb_mask
        vals = np.where(good, vals, np.nan)
        has = good.any(axis=1)
        if has.any():
            with np.errstate(all="ignore"):
                med = np.nanmedian(vals[has], axis=1)
            out[tuple(coords[has].T)] = med
        coords = coords[~has]
        radius += 1
    return out


def _features(norm: Normalised) -> np.ndarray:
    """Per-pixel feature vectors: (residual, contrast) in noise sigmas, one row per pixel."""
    return np.stack([norm.residual.ravel(), norm.contrast.ravel()], axis=1).astype(np.float64)


def _extremes(x: np.ndarray) -> np.ndarray:
    """Pixels equal to the minimum or maximum of their 3x3(x3) window."""
    lo, hi = _minmax(x, 3)
    return (x <= lo) | (x >= hi)


# ---------------------------------------------------------------------------------------------
# adaptive median


def adaptive_median(
    x: np.ndarray, *, max_size: int = 7, threshold: float = 4.0, gat: GAT | None = None
) -> Detection:
    """Outliers by the adaptive median test with a noise-aware margin (see module doc)."""
    model, _ = noise_model(as_float32(x), gat)
    xf = stabilise(model, x)
    undecided = np.ones(xf.shape, dtype=bool)
    outlier = np.zeros(xf.shape, dtype=bool)
    score = np.zeros(xf.shape, dtype=np.float32)
    for size in range(3, int(max_size) + 1, 2):
        lo, hi = _minmax(xf, size)
        if size == 3:
            med = _median3(xf)
        elif xf.ndim == 2 and size == 5:
            med = cv2.medianBlur(xf, 5)
        else:
            med = np.full(xf.shape, np.nan, np.float32)
            coords = np.argwhere(undecided)
            if len(coords):
                vals, valid = _gather(xf, coords, _offsets(xf.ndim, size // 2))
                vals = np.concatenate([vals, xf[tuple(coords.T)][:, None]], axis=1)
                valid = np.concatenate([valid, np.ones((len(coords), 1), bool)], axis=1)
                with np.errstate(all="ignore"):
                    med[tuple(coords.T)] = np.nanmedian(np.where(valid, vals, np.nan), axis=1)
        level = undecided & (lo < med) & (med < hi)
        if size >= max_size:  # last level: decide everyone left with this window
            level = undecided.copy()
        sel = np.flatnonzero(level.ravel())
        xv, mv = xf.ravel()[sel], med.ravel()[sel]
        dev = np.abs(xv - mv)
        extreme = (xv <= lo.ravel()[sel]) | (xv >= hi.ravel()[sel])
        outlier.ravel()[sel] = extreme & (dev > threshold)
        score.ravel()[sel] = np.where(extreme, dev, 0)
        undecided &= ~level
        if not undecided.any():
            break
    return Detection(outlier, score)


# ---------------------------------------------------------------------------------------------
# LOF family


def _sample(idx: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return idx if len(idx) <= n else np.sort(rng.choice(idx, n, replace=False))


def _jitter(f: np.ndarray, rng: np.random.Generator, amount: float = 0.02) -> np.ndarray:
    """Break ties of quantised data (k-distances of 0 would make densities infinite)."""
    return f + rng.normal(0.0, amount, f.shape)


@dataclass
class Reference:
    """A fitted k-NN index over reference feature vectors and their k-distances."""

    nn: object
    points: np.ndarray
    kdist: np.ndarray  # k-distance of each reference point (self excluded)
    nidx: np.ndarray  # its k neighbours
    ndist: np.ndarray  # and their distances


def build_reference(
    feats: np.ndarray, pool: np.ndarray, k: int, size: int, rng: np.random.Generator
) -> Reference:
    """A random sample (at most ``size``) of ``feats[pool]``, indexed for k-NN queries.

    When the pool holds too few points for ``k`` neighbours (a flat image, whose every pixel
    is an extreme of its window, or sparse photon counts), every pixel is reference.
    """
    from sklearn.neighbors import NearestNeighbors

    if len(pool) <= k:
        pool = np.arange(len(feats))

    points = _jitter(feats[_sample(pool, size, rng)], rng)
    nn = NearestNeighbors(n_neighbors=k, algorithm="kd_tree").fit(points)
    dist, idx = nn.kneighbors(points, n_neighbors=k + 1)
    return Reference(nn, points, np.maximum(dist[:, -1], 1e-3), idx[:, 1:], dist[:, 1:])


def kde_lof(
    x: np.ndarray,
    *,
    k: int = 20,
    h: float = 1.0,
    threshold: float = 5.0,
    core: float = 2.0,
    reference_size: int = 20000,
    seed: int = 0,
    gat: GAT | None = None,
) -> Detection:
    """Outliers by the kernel-density local density factor (LDF) of Latecki et al. 2007.

    LDE(p) = mean over its k nearest reference points q of a Gaussian kernel of width
    ``h * kdist(q)`` at the reachability distance ``max(d(p, q), kdist(q))``; LDF(p) = mean LDE of
    the neighbours / (LDE(p) + c * mean LDE of the neighbours) with c = 0.1 (so LDF < 10). A pixel
    is an outlier when its LDF exceeds ``threshold``; pixels whose residual is within ``core``
    noise sigmas are inliers without scoring (the dense core of the reference).
    """
    rng = np.random.default_rng(seed)
    xf = as_float32(x)
    norm = normalise(xf, gat)
    feats = _features(norm)
    ref = build_reference(feats, np.flatnonzero(~_extremes(xf).ravel()), k, reference_size, rng)
    nn, kdist, nidx, ndist = ref.nn, ref.kdist, ref.nidx, ref.ndist
    d = feats.shape[1]
    c = 0.1

    def lde(dist: np.ndarray, nbr: np.ndarray) -> np.ndarray:
        width = h * kdist[nbr]
        reach = np.maximum(dist, kdist[nbr])
        kern = np.exp(-0.5 * (reach / width) ** 2) / ((2 * np.pi) ** (d / 2) * width**d)
        return kern.mean(axis=1)

    lde_ref = lde(ndist, nidx)
    score = np.zeros(feats.shape[0], dtype=np.float32)
    cand = np.flatnonzero(np.abs(feats[:, 0]) > core)
    if len(cand):
        dist, nbr = nn.kneighbors(feats[cand], n_neighbors=k)
        own = lde(dist, nbr)
        mean_nb = lde_ref[nbr].mean(axis=1)
        score[cand] = mean_nb / (own + c * mean_nb)
    mask = (score > threshold).reshape(xf.shape)
    return Detection(mask, score.reshape(xf.shape))


def grid_lof(
    x: np.ndarray,
    *,
    k: int = 20,
    threshold: float = 4.0,
    cell: int = 8,
    bin_width: float = 2.0,
    min_count: int = 8,
    core: float = 2.0,
    reference_size: int = 20000,
    seed: int = 0,
    gat: GAT | None = None,
) -> Detection:
    """Outliers by GridLOF (Chiu and Fu 2003): prune dense grid cells, LOF of the rest.

    Cells are ``cell`` pixels wide in space and ``bin_width`` noise sigmas (of the stabilised
    image) in intensity; a cell with at least ``min_count`` pixels is dense. Candidates (pixels of
    sparse cells whose residual exceeds ``core`` sigmas) get the local outlier factor of Breunig et
    al. (2000) against a reference sample of dense-cell pixels that are not extremes of their
    3x3 window (identical impulse values can share a cell; they must not become the reference).
    """
    rng = np.random.default_rng(seed)
    xf = as_float32(x)
    norm = normalise(xf, gat)
    counts = _cell_counts(norm.stabilised(xf), int(cell), float(bin_width))
    dense = (counts >= int(min_count)).ravel()
    feats = _features(norm)
    pool = np.flatnonzero(dense & ~_extremes(xf).ravel())
    if len(pool) <= k + 1:  # nothing dense: every non-extreme pixel is reference
        pool = np.flatnonzero(~_extremes(xf).ravel())
    ref = build_reference(feats, pool, k, reference_size, rng)
    nn, kdist, nidx, ndist = ref.nn, ref.kdist, ref.nidx, ref.ndist
    lrd_ref = 1.0 / np.maximum(np.maximum(ndist, kdist[nidx]).mean(axis=1), 1e-9)
    score = np.ones(feats.shape[0], dtype=np.float32)
    cand = np.flatnonzero(~dense & (np.abs(feats[:, 0]) > core))
    if len(cand):
        dist, nbr = nn.kneighbors(feats[cand], n_neighbors=k)
        lrd = 1.0 / np.maximum(np.maximum(dist, kdist[nbr]).mean(axis=1), 1e-9)
        score[cand] = lrd_ref[nbr].mean(axis=1) / lrd
    mask = (score > threshold).reshape(xf.shape)
    return Detection(mask, score.reshape(xf.shape))


def _cell_counts(t: np.ndarray, cell: int, bin_width: float) -> np.ndarray:
    """Pixels sharing each pixel's (block, intensity bin) cell; max over two shifted bin grids."""
    block = [np.arange(n) // cell for n in t.shape]
    grids = np.meshgrid(*block, indexing="ij")
    block_id = np.ravel_multi_index([g.ravel() for g in grids], [b[-1] + 1 for b in block])
    best = np.zeros(t.size, dtype=np.int64)
    for shift in (0.0, 0.5):
        bins = np.floor(t.ravel() / bin_width + shift).astype(np.int64)
        bins -= bins.min()
        key = block_id.astype(np.int64) * (int(bins.max()) + 1) + bins
        _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        best = np.maximum(best, counts[inverse])
    return best.reshape(t.shape)


# ---------------------------------------------------------------------------------------------
# filters for the registry: detect, then repair


def adaptive_median_filter(x, *, max_size=7, threshold=4.0, spacing=None, gat=None):
    det = adaptive_median(x, max_size=max_size, threshold=threshold, gat=gat)
    return replace_outliers(x, det.mask)


def kde_lof_filter(x, *, k=20, h=1.0, threshold=5.0, spacing=None, gat=None):
    return replace_outliers(x, kde_lof(x, k=k, h=h, threshold=threshold, gat=gat).mask)


def grid_lof_filter(x, *, k=20, threshold=4.0, cell=8, min_count=8, spacing=None, gat=None):
    det = grid_lof(x, k=k, threshold=threshold, cell=cell, min_count=min_count, gat=gat)
    return replace_outliers(x, det.mask)
