"""Noise models: estimate Poisson-Gaussian parameters and Gaussian sigma; add noise.

The Poisson-Gaussian model of a fluorescence camera is ``var(z) = a * E[z] + b`` (``a`` the gain
in intensity units per photo-electron, ``b`` the read-out variance minus ``a`` times the offset).

* From one image (after Foi, Trimeche, Katkovnik and Egiazarian 2008, "Practical
  Poissonian-Gaussian noise modeling and fitting for single-image raw-data"): a Haar-like diagonal
  detail (``(z00 - z01 - z10 + z11) / 2``, variance ``sigma**2`` and blind to linear trends) gives
  the local noise, a box mean gives the local signal; pixels in smooth regions (low gradient of the
  smoothed image) are grouped into intensity bins of equal counts; in each bin a robust variance
  (the MAD of the detail) and the mean intensity are taken; ``a`` and ``b`` are fitted to the bins
  by iteratively reweighted least squares with outlier rejection.
* From a stack of repeated frames: per-pixel mean and variance across frames, binned by mean.
* Gaussian sigma: the MAD of the diagonal detail over the whole image (Donoho's estimator).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from .vst import GAT

_MAD = 1.482602218505602  # sigma / MAD for a Gaussian


@dataclass
class NoiseFit:
    """An estimated noise model and the binned points it was fitted to."""

    model: str  # "poisson-gaussian" or "gaussian"
    a: float
    b: float
    sigma: float  # Gaussian sigma of the plain model (sqrt of the typical variance)
    r2: float  # weighted coefficient of determination of the fit on the bins
    rel_rmse: float  # root mean square relative residual of the bin variances
    n_bins: int
    n_samples: int
    source: str  # "image" or "stack"
    means: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    variances: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    used: np.ndarray = field(default_factory=lambda: np.zeros(0, bool), repr=False)

    def variance(self, mean: np.ndarray | float) -> np.ndarray:
        return np.maximum(self.a * np.asarray(mean, dtype=np.float64) + self.b, 0.0)

    def gat(self) -> GAT:
        """The variance-stabilising transform for this model."""
        if self.model == "gaussian" or self.a <= 0:
            return GAT(0.0, max(self.sigma**2, 1e-12))
        return GAT(self.a, self.b)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("means", "variances", "used"):
            d.pop(key)
        d["fit"] = {
            "r2": d.pop("r2"),
            "rel_rmse": d.pop("rel_rmse"),
            "n_bins": d.pop("n_bins"),
            "n_samples": d.pop("n_samples"),
            "source": d.pop("source"),
        }
        d["bins"] = {
            "mean": [round(float(v), 6) for v in self.means],
            "variance": [round(float(v), 6) for v in self.variances],
            "used": [bool(v) for v in self.used],
        }
        return d


def _planes(data: np.ndarray, max_planes: int = 8) -> list[np.ndarray]:
    """Up to ``max_planes`` evenly spaced 2D planes of an nD array (last two axes)."""
    data = np.asarray(data)
    if data.ndim == 2:
        return [data]
    flat = data.reshape(-1, *data.shape[-2:])
    idx = np.unique(np.linspace(0, len(flat) - 1, min(max_planes, len(flat))).round().astype(int))
    return [flat[i] for i in idx]


def diagonal_detail(plane: np.ndarray) -> np.ndarray:
    """``(z00 - z01 - z10 + z11) / 2`` for every 2x2 neighbourhood: variance sigma**2 in noise."""
    z = np.asarray(plane, dtype=np.float32)
    return 0.5 * (z[:-1, :-1] - z[:-1, 1:] - z[1:, :-1] + z[1:, 1:])


def robust_variance(d: np.ndarray, *, overwrite: bool = False) -> float:
    """Variance of zero-mean noise samples ``d``, robust to a few outliers.

    The MAD is robust but, on integer data with a small noise (a MAD of a few grey levels), it
    is quantised. Then the variance is taken from the mean absolute deviation of the samples
    within 6 MAD-sigmas (plus two grey levels), which is continuous in the data.

    float32 samples are worked on in float32 (the medians of millions of detail samples would
    otherwise take four float64 copies of them): on integer data (details in halves) the
    result is the float64 one exactly, on float data within 1e-6 relative. ``overwrite``
    lets the samples be reordered and overwritten (no copy at all).
    """
    d = np.asarray(d)
    if d.dtype != np.float32:
        d = np.asarray(d, dtype=np.float64)
    if d.size == 0:
        return float("nan")
    d = d.ravel()
    quantised = bool(np.all(np.mod(d[:1000] * 2, 1) == 0))  # before any reordering
    work = d if overwrite else d.copy()
    centre = _median_inplace(work)
    dev = np.abs(np.subtract(work, centre, out=work), out=work)  # the same set of values
    mad = _median_inplace(dev)
    if mad >= 8 or not quantised:
        return (_MAD * mad) ** 2 if mad > 0 else float(np.var(d, dtype=np.float64))
    clip = 6 * _MAD * mad + 2.0
    kept = dev <= clip
    # a sum of halves (integer data) is exact in float64 in any order: the mean of the kept
    # samples, without a copy of them
    mean = np.sum(dev, where=kept, dtype=np.float64) / np.count_nonzero(kept)
    return float((np.pi / 2) * mean**2)


def _median_inplace(x: np.ndarray) -> float:
    """``np.median(x)`` (the two middle values averaged in float64), partitioning ``x``."""
    n = x.size
    k = n // 2
    if n % 2:
        x.partition(k)
        return float(x[k])
    x.partition([k - 1, k])
    return (float(x[k - 1]) + float(x[k])) / 2


def _pooled_details(data: np.ndarray) -> np.ndarray:
    """The finite diagonal details of :func:`_planes` of ``data``, in one float32 array."""
    planes = _planes(data)
    sizes = [max(p.shape[-2] - 1, 0) * max(p.shape[-1] - 1, 0) for p in planes]
    out = np.empty(sum(sizes), np.float32)
    at = 0
    for plane, size in zip(planes, sizes):
        out[at : at + size] = diagonal_detail(plane).ravel()
        at += size
    finite = np.isfinite(out)
    return out if finite.all() else out[finite]


def estimate_sigma(data: np.ndarray) -> float:
    """Gaussian noise sigma of an image or stack (MAD of the diagonal detail, pooled planes)."""
    d = _pooled_details(data)
    if d.size == 0:
        return 0.0
    return float(np.sqrt(max(robust_variance(d, overwrite=True), 0.0)))


def _local_samples(
    plane: np.ndarray, window: int, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """Local mean, diagonal detail and smoothness of each 2x2 position of a plane.

    Pixels in ``exclude`` (e.g. impulse noise) neither enter local means nor details.
    """
    z = np.asarray(plane, dtype=np.float32)
    d = diagonal_detail(z)
    # mean of the same 2x2 block, then a box mean around it (signal estimate)
    block = 0.25 * (z[:-1, :-1] + z[:-1, 1:] + z[1:, :-1] + z[1:, 1:])
    if exclude is None:
        mean = ndi.uniform_filter(block, window, mode="reflect")
        smooth = ndi.gaussian_filter(z, 2.0)[:-1, :-1]
        valid = np.ones(d.shape, bool)
    else:
        ex = np.asarray(exclude, bool)
        valid = ~(ex[:-1, :-1] | ex[:-1, 1:] | ex[1:, :-1] | ex[1:, 1:])
        w = valid.astype(np.float32)
        num = ndi.uniform_filter(block * w, window, mode="reflect")
        mean = num / np.maximum(ndi.uniform_filter(w, window, mode="reflect"), 1e-6)
        keep = (~ex).astype(np.float32)
        zs = ndi.gaussian_filter(z * keep, 2.0)
        smooth = (zs / np.maximum(ndi.gaussian_filter(keep, 2.0), 1e-6))[:-1, :-1]
    grad = np.hypot(ndi.sobel(smooth, 0), ndi.sobel(smooth, 1))
    edge = ndi.maximum_filter(grad, 5)  # stay away from edges
    edge = np.where(valid, edge, np.nan)
    return mean.ravel(), d.ravel(), edge.ravel()


def estimate_noise(
    data: np.ndarray,
    *,
    n_bins: int = 40,
    smooth_fraction: float = 0.5,
    window: int = 5,
    max_planes: int = 8,
    exclude: np.ndarray | None = None,
) -> NoiseFit:
    """Poisson-Gaussian ``a, b`` and Gaussian ``sigma`` from single images (pooled planes).

    Parameters
    ----------
    data
        A 2D image, or an nD stack whose last two axes are Y, X (up to ``max_planes`` planes are
        pooled).
    n_bins
        Intensity bins (equal numbers of samples).
    smooth_fraction
        Fraction of the samples of each bin kept as "smooth" (lowest local gradient).
    exclude
        Boolean mask (same shape as ``data``) of pixels to leave out, e.g. impulse noise.
    """
    planes = _planes(data, max_planes)
    masks = _planes(exclude, max_planes) if exclude is not None else [None] * len(planes)
    planes = [(p, q) for p, q in zip(planes, masks) if min(p.shape) >= 8]
    if not planes:
        raise ValueError("image too small to estimate noise (need at least 8x8 pixels)")
    # the samples of all planes in three float32 arrays, filled plane by plane (no lists of
    # copies to concatenate: the pooled samples of 8 planes of 1024 x 1024 are 100 MB)
    size = sum((p.shape[0] - 1) * (p.shape[1] - 1) for p, _ in planes)
    m, d, e = (np.empty(size, np.float32) for _ in range(3))
    n = 0
    for plane, mask in planes:
        pm, pd, pe = _local_samples(plane, window, mask)
        ok = np.isfinite(pm) & np.isfinite(pd) & np.isfinite(pe)
        k = int(ok.sum())
        for out, part in ((m, pm), (d, pd), (e, pe)):
            out[n : n + k] = part[ok]
        n += k
    m, d, e = m[:n], d[:n], e[:n]
    sigma = float(np.sqrt(max(robust_variance(d), 0.0))) if d.size else 0.0
    nb = int(max(4, min(n_bins, m.size // 2000)))
    edges_q = np.unique(np.quantile(m, np.linspace(0, 1, nb + 1)))
    which = np.empty(m.size, np.int32)  # the bin of each sample, a chunk at a time
    for at in range(0, m.size, 1 << 20):
        part = np.searchsorted(edges_q, m[at : at + (1 << 20)], side="right") - 1
        which[at : at + part.size] = np.clip(part, 0, len(edges_q) - 2)
    bin_mean, bin_var, bin_n = [], [], []
    for i in range(len(edges_q) - 1):
        sel = np.flatnonzero(which == i)  # in order, as a stable sort by bin gives them
        if sel.size < 50:
            continue
        # keep the smoothest part of the bin (gradients scale with the noise, so per bin)
        cut = np.quantile(e[sel], smooth_fraction)
        sel = sel[e[sel] <= cut]
        var = robust_variance(d[sel])
        bin_mean.append(float(np.mean(m[sel])))
        bin_var.append(float(var))
        bin_n.append(sel.size)
    return _fit(np.array(bin_mean), np.array(bin_var), np.array(bin_n), sigma, "image", m.size)


def estimate_noise_stack(frames: np.ndarray, *, n_bins: int = 40, axis: int = 0) -> NoiseFit:
    """``a, b`` from repeated frames of one field: per-pixel mean and variance along ``axis``."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim < 3 or frames.shape[axis] < 2:
        raise ValueError("a stack of at least 2 repeated frames is needed (got one image)")
    frames = np.moveaxis(frames, axis, 0)
    mean = frames.mean(axis=0).ravel()
    var = frames.var(axis=0, ddof=1).ravel()
    n = frames.shape[0]
    ok = np.isfinite(mean) & np.isfinite(var)
    mean, var = mean[ok], var[ok]
    nb = int(max(4, min(n_bins, mean.size // 200)))
    edges_q = np.unique(np.quantile(mean, np.linspace(0, 1, nb + 1)))
    which = np.clip(np.searchsorted(edges_q, mean, side="right") - 1, 0, len(edges_q) - 2)
    counts = np.bincount(which, minlength=len(edges_q) - 1)
    sum_m = np.bincount(which, mean, minlength=len(edges_q) - 1)
    sum_v = np.bincount(which, var, minlength=len(edges_q) - 1)
    keep = counts >= 20
    bm = sum_m[keep] / counts[keep]
    bv = sum_v[keep] / counts[keep]
    # the sample variance of n frames: relative error sqrt(2 / (n - 1)) per pixel
    eff = counts[keep] * max(n - 1, 1) / 2
    sigma = float(np.sqrt(max(np.median(var), 0.0)))
    return _fit(bm, bv, eff, sigma, "stack", int(mean.size * n))


def fit_variance_curve(
    means: np.ndarray, variances: np.ndarray, counts: np.ndarray, *, source: str
) -> NoiseFit:
    """``var = a * mean + b`` fitted robustly to binned (mean, variance, sample count) points,
    e.g. the bins of a periodic image folded into its unit cell (:mod:`..em.lattice`)."""
    means, variances = np.asarray(means, float), np.asarray(variances, float)
    counts = np.asarray(counts, float)
    sigma = float(np.sqrt(max(np.median(variances), 0.0))) if variances.size else 0.0
    return _fit(means, variances, counts, sigma, source, int(counts.sum()))


def _fit(
    means: np.ndarray,
    variances: np.ndarray,
    counts: np.ndarray,
    sigma: float,
    source: str,
    n_samples: int,
) -> NoiseFit:
    """Robust weighted fit of ``var = a * mean + b`` to binned points."""
    used = np.isfinite(means) & np.isfinite(variances) & (variances >= 0)
    a, b = 0.0, float(np.median(variances[used])) if used.any() else sigma**2
    for _ in range(5):
        if used.sum() < 2:
            break
        pred = np.maximum(a * means + b, 1e-12) if a or b else variances
        # the variance of a variance estimate is ~ 2 var**2 / n
        w = counts / np.maximum(pred, np.max(pred) * 1e-6) ** 2
        A = np.column_stack([means, np.ones_like(means)])
        W = w[used]
        coef, *_ = np.linalg.lstsq(
            A[used] * np.sqrt(W)[:, None], variances[used] * np.sqrt(W), rcond=None
        )
        a, b = float(coef[0]), float(coef[1])
        pred = np.maximum(a * means + b, 1e-12)
        rel = (variances - pred) / (pred * np.sqrt(2.0 / np.maximum(counts, 1)))
        scale = _MAD * np.median(np.abs(rel[used])) if used.sum() > 3 else 1.0
        new = used & (np.abs(rel) <= 4 * max(scale, 1.0))
        if new.sum() < 2 or np.array_equal(new, used):
            used = new if new.sum() >= 2 else used
            break
        used = new
    if a <= 0:  # no signal dependence: plain Gaussian
        a = 0.0
        b = float(np.average(variances[used], weights=counts[used])) if used.any() else sigma**2
    pred = np.maximum(a * means + b, 1e-12)
    r2, rel_rmse = _quality(means, variances, counts, pred, used)
    span = (means[used].max() - means[used].min()) if used.sum() > 1 else 0.0
    lo_var = max(a * (means[used].min() if used.any() else 0.0) + b, 1e-12)
    # Poisson part visible when the variance grows by >= 20 % over the intensity range
    model = "poisson-gaussian" if a > 0 and a * span >= 0.2 * lo_var else "gaussian"
    typical = float(np.average(pred[used], weights=counts[used])) if used.any() else sigma**2
    sig = sigma if source == "image" else float(np.sqrt(max(typical, 0.0)))
    if model == "gaussian":
        sig = float(np.sqrt(max(typical, 0.0)))
    return NoiseFit(
        model=model,
        a=a,
        b=b,
        sigma=sig,
        r2=r2,
        rel_rmse=rel_rmse,
        n_bins=int(used.sum()),
        n_samples=int(n_samples),
        source=source,
        means=means,
        variances=variances,
        used=used,
    )


def _quality(means, variances, counts, pred, used) -> tuple[float, float]:
    if used.sum() < 2:
        return float("nan"), float("nan")
    w = counts[used] / np.maximum(pred[used], 1e-12) ** 2
    v = variances[used]
    vbar = np.average(v, weights=w)
    ss_res = float(np.sum(w * (v - pred[used]) ** 2))
    ss_tot = float(np.sum(w * (v - vbar) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    rel = float(np.sqrt(np.mean(((v - pred[used]) / pred[used]) ** 2)))
    return float(r2), rel


# ---------------------------------------------------------------------------------------------
# adding noise

NOISE_KINDS = ("gaussian", "poisson-gaussian", "salt-pepper")


def add_gaussian(
    data: np.ndarray, sigma: float, *, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """``data + N(0, sigma**2)`` as float32."""
    rng = np.random.default_rng(rng)
    dtype = np.float64 if np.asarray(data).dtype == np.float64 else np.float32
    data = np.asarray(data, dtype=dtype)
    return (data + rng.normal(0.0, sigma, data.shape)).astype(dtype)


def add_poisson_gaussian(
    data: np.ndarray, a: float, b: float, *, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """``a * Poisson(data / a) + N(0, b)``: variance ``a * data + b`` (float32; data >= 0).

    float64 input gives float64.
    """
    if a <= 0:
        raise ValueError("a (the Poisson gain) must be > 0")
    if b < 0:
        raise ValueError("b (the Gaussian variance) must be >= 0")
    rng = np.random.default_rng(rng)
    x = np.clip(np.asarray(data, dtype=np.float64), 0, None)
    out = a * rng.poisson(x / a) + rng.normal(0.0, np.sqrt(b), x.shape)
    return out.astype(np.float64 if np.asarray(data).dtype == np.float64 else np.float32)


def add_salt_pepper(
    data: np.ndarray,
    amount: float,
    *,
    salt_fraction: float = 0.5,
    low: float | None = None,
    high: float | None = None,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Set a fraction ``amount`` of the pixels to ``high`` (salt) or ``low`` (pepper).

    Defaults: the dtype's range for integer data, the data's min and max for float data. The
    result keeps the input dtype.
    """
    if not 0 <= amount <= 1:
        raise ValueError("amount must be between 0 and 1")
    rng = np.random.default_rng(rng)
    data = np.asarray(data)
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        low = info.min if low is None else low
        high = info.max if high is None else high
    else:
        low = float(np.nanmin(data)) if low is None else low
        high = float(np.nanmax(data)) if high is None else high
    out = data.copy()
    u = rng.random(data.shape)
    out[u < amount * salt_fraction] = high
    out[(u >= amount * salt_fraction) & (u < amount)] = low
    return out
