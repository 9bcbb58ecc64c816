"""The resolution of a localization table: Fourier ring correlation, NeNA, median uncertainty.

- :func:`fourier_ring_correlation` (and :func:`frc_job`, its events): the localizations are
  split in two halves (at random, or by blocks of frames), each half rendered as a histogram,
  and the correlation of the two renders' Fourier transforms over rings of equal spatial
  frequency is smoothed and compared with the fixed threshold 1/7; the resolution is the
  inverse of the frequency where the curve falls below it (Nieuwenhuizen et al., "Measuring
  image resolution in optical nanoscopy", Nat. Methods 10, 557-562, 2013).
- :func:`nena`: the nearest neighbour in the next frame of every localization, whose distance
  to it is, for the same molecule seen twice, the difference of two independent errors of
  standard deviation sigma per axis: ``p(d) = d / (2 sigma^2) exp(-d^2 / (4 sigma^2))``.
  Fitted (maximum likelihood) with a term ``~ d`` for neighbours that are other molecules
  (Endesfelder et al., "A simple method to estimate the average localization precision of a
  single-molecule localization microscopy experiment", Histochem. Cell Biol. 141, 629-638,
  2014).
- :func:`precision_summary`: the median uncertainty and the NeNA of a table.

Positions are in nm (the table's px times its pixel size, :func:`table_positions_nm`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ..jobs.events import Done, Event, Progress, ShouldStop, never_stop
from ..jobs.run import run as run_job
from .render import render_histogram

FRC_THRESHOLD = 1.0 / 7.0
"""The fixed FRC threshold of Nieuwenhuizen et al. 2013."""
MAX_FRC_SIDE = 4096
"""The largest render side (pixels) for the FRC: a coarser pixel beyond it."""
SPLITS = ("random", "blocks")


class ResolutionError(ValueError):
    """Localizations that cannot give a resolution (the message says why)."""


class FrcResult(NamedTuple):
    """An FRC curve and the resolution read from it.

    ``frequency`` (1/nm) are the ring centres, ``frc`` the curve (the mean of the splits),
    ``smoothed`` what the threshold was applied to; ``resolution_nm`` is NaN when the smoothed
    curve never crosses ``threshold`` below the Nyquist frequency (``message`` says why)."""

    resolution_nm: float
    frequency: np.ndarray
    frc: np.ndarray
    smoothed: np.ndarray
    threshold: float
    pixel_nm: float
    n_localizations: int
    split: str
    message: str = ""


class NenaResult(NamedTuple):
    """The NeNA precision ``sigma_nm`` from ``n_pairs`` next-frame neighbours within
    ``max_distance_nm``; ``edges``/``density`` their histogram (1/nm) and ``fit`` the fitted
    density at the bin centres; ``fraction`` the share of pairs the fit gives to the same
    molecule."""

    sigma_nm: float
    n_pairs: int
    max_distance_nm: float
    edges: np.ndarray
    density: np.ndarray
    fit: np.ndarray
    fraction: float


class PrecisionSummary(NamedTuple):
    """``n`` localizations, their median uncertainty (nm, NaN without the column) and NeNA
    (None when there are too few next-frame pairs; ``nena_message`` says why)."""

    n: int
    median_uncertainty_nm: float
    nena: NenaResult | None
    nena_message: str = ""


# ----------------------------------------------------------------------------- tables
def table_positions_nm(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``x``, ``y`` of a spot table (px) in nm, as the CSV writes them (``(px + 0.5) * ps``)."""
    ps = float(table.attrs.get("pixel_size") or 100.0)
    return (
        (table["x"].to_numpy(float) + 0.5) * ps,
        (table["y"].to_numpy(float) + 0.5) * ps,
    )


def median_uncertainty_nm(table: pd.DataFrame) -> float:
    """The median of the finite ``uncertainty`` values in nm; NaN without any."""
    if "uncertainty" not in table:
        return float("nan")
    u = pd.to_numeric(table["uncertainty"], errors="coerce").to_numpy(float)
    u = u[np.isfinite(u) & (u > 0)]
    ps = float(table.attrs.get("pixel_size") or 100.0)
    return float(np.median(u) * ps) if u.size else float("nan")


def _frames(table: pd.DataFrame) -> np.ndarray:
    return table["frame"].to_numpy(np.int64) if "frame" in table else np.zeros(len(table), int)


# ----------------------------------------------------------------------------- FRC
def split_halves(
    n: int,
    *,
    frames: np.ndarray | None = None,
    split: str = "random",
    block_frames: int | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """A boolean mask, True for the first half.

    ``random``: each localization on its own. ``blocks``: the frames cut into blocks of
    ``block_frames`` (default: a twentieth of the movie, at least 1 frame), each block given
    whole to one half at random, so that a molecule's blinks in consecutive frames mostly stay
    in one half (Nieuwenhuizen et al. 2013 on repeated localizations)."""
    rng = np.random.default_rng() if rng is None else rng
    if split not in SPLITS:
        raise ResolutionError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if split == "random" or frames is None:
        return rng.random(n) < 0.5
    frames = np.asarray(frames, np.int64)
    first = int(frames.min()) if n else 0
    span = int(frames.max()) - first + 1 if n else 1
    size = int(block_frames) if block_frames else max(1, span // 20)
    if size < 1:
        raise ResolutionError(f"block_frames must be at least 1, got {block_frames}")
    blocks = (frames - first) // size
    n_blocks = int(blocks.max()) + 1 if n else 1
    if n_blocks < 2:
        raise ResolutionError(
            f"one block of {size} frames holds every localization: use smaller blocks"
        )
    # as many blocks in each half as can be (a random half of them), in a random order
    chosen = np.zeros(n_blocks, bool)
    chosen[rng.permutation(n_blocks)[: n_blocks // 2]] = True
    return chosen[blocks]


def ring_correlation(image_a: np.ndarray, image_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ring, frc)``: the Fourier ring correlation of two square images of equal shape.

    ``ring`` is the radius in frequency pixels (the frequency is ``ring / (side * pixel)``),
    from 0 to side / 2. Computed on the half plane of the real FFT, each column weighted by the
    number of full-plane frequencies it stands for."""
    from scipy import fft

    a, b = np.asarray(image_a, np.float32), np.asarray(image_b, np.float32)
    if a.shape != b.shape or a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ResolutionError(f"the FRC takes two square images of one shape, got {a.shape}")
    side = a.shape[0]
    fa, fb = fft.rfft2(a, workers=-1), fft.rfft2(b, workers=-1)
    ky = fft.fftfreq(side) * side
    kx = np.arange(fa.shape[1], dtype=float)
    ring = np.rint(np.hypot(ky[:, None], kx[None, :])).astype(np.int64)
    weight = np.full(fa.shape[1], 2.0)
    weight[0] = 1.0
    if side % 2 == 0:
        weight[-1] = 1.0
    inside = ring <= side // 2
    w = np.broadcast_to(weight, fa.shape)[inside]
    r = ring[inside]
    n_rings = side // 2 + 1
    cross = np.bincount(r, w * (fa * np.conj(fb)).real[inside], n_rings)
    pa = np.bincount(r, w * np.abs(fa[inside]) ** 2, n_rings)
    pb = np.bincount(r, w * np.abs(fb[inside]) ** 2, n_rings)
    with np.errstate(invalid="ignore", divide="ignore"):
        frc = cross / np.sqrt(pa * pb)
    return np.arange(n_rings), np.nan_to_num(frc, nan=0.0)


def smooth_curve(values: np.ndarray, width: int) -> np.ndarray:
    """A centred moving average over ``width`` points (shorter at the ends)."""
    width = max(1, int(width))
    if width == 1 or values.size == 0:
        return np.asarray(values, float)
    kernel = np.ones(width)
    total = np.convolve(values, kernel, mode="same")
    count = np.convolve(np.ones(values.size), kernel, mode="same")
    return total / count


def threshold_crossing(
    frequency: np.ndarray, curve: np.ndarray, threshold: float = FRC_THRESHOLD, *, skip: int = 1
) -> float:
    """The first frequency past ``skip`` points where ``curve`` falls below ``threshold``
    (linear between the two points around it); NaN when it never does, or starts below."""
    c = np.asarray(curve, float)
    if c.size <= skip + 1 or c[skip] < threshold:
        return float("nan")
    below = np.flatnonzero(c[skip:] < threshold)
    if below.size == 0:
        return float("nan")
    i = int(below[0]) + skip
    f0, f1, c0, c1 = frequency[i - 1], frequency[i], c[i - 1], c[i]
    return float(f0 + (c0 - threshold) / (c0 - c1) * (f1 - f0))


def frc_pixel_nm(x_nm: np.ndarray, y_nm: np.ndarray, uncertainty_nm: float | None) -> float:
    """The default FRC render pixel: half the median uncertainty (1-20 nm, 5 nm without it),
    coarser when the field would need more than :data:`MAX_FRC_SIDE` pixels."""
    p = 5.0 if not uncertainty_nm or not np.isfinite(uncertainty_nm) else uncertainty_nm / 2
    p = float(np.clip(p, 1.0, 20.0))
    side = _field_side(x_nm, y_nm)
    return max(p, side / MAX_FRC_SIDE)


def _field_side(x: np.ndarray, y: np.ndarray) -> float:
    return float(max(np.ptp(x), np.ptp(y), 1.0))


def frc_job(
    x_nm: np.ndarray,
    y_nm: np.ndarray,
    *,
    frames: np.ndarray | None = None,
    pixel_nm: float | None = None,
    uncertainty_nm: float | None = None,
    split: str = "random",
    block_frames: int | None = None,
    repeats: int = 3,
    smooth: int | None = None,
    threshold: float = FRC_THRESHOLD,
    seed: int | None = 0,
    should_stop: ShouldStop = never_stop,
) -> Iterator[Event]:
    """The FRC of two halves of the localizations, averaged over ``repeats`` splits.

    Parameters
    ----------
    x_nm, y_nm
        Positions in nm.
    frames
        The frame of each localization (needed for ``split="blocks"``).
    pixel_nm
        The histogram render's pixel; default :func:`frc_pixel_nm`.
    uncertainty_nm
        The typical localization uncertainty, for the default pixel.
    split, block_frames
        How the halves are drawn (:func:`split_halves`).
    repeats
        Splits to average (each a new random draw).
    smooth
        Width (rings) of the moving average applied before the threshold; default about a
        two-hundredth of the render's side, at least 3.
    threshold
        Default 1/7.
    seed
        Of the random splits (None: a fresh one each time).

    Yields
    ------
    Progress per split, then ``Done(FrcResult)`` (``Done(None, stopped=True)`` if stopped).
    """
    x, y = np.asarray(x_nm, float).ravel(), np.asarray(y_nm, float).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    f = None if frames is None else np.asarray(frames, np.int64).ravel()[keep]
    if x.size < 100:
        raise ResolutionError(f"the FRC needs at least 100 localizations, got {x.size}")
    if split == "blocks" and f is None:
        raise ResolutionError("a split by time blocks needs the frame of each localization")
    p = float(pixel_nm) if pixel_nm else frc_pixel_nm(x, y, uncertainty_nm)
    if not np.isfinite(p) or p <= 0:
        raise ResolutionError(f"the FRC pixel must be a positive size in nm, got {pixel_nm}")
    side_px = int(np.ceil(_field_side(x, y) / p)) + 8  # 4 empty pixels around the field
    side_px += side_px % 2
    if side_px > MAX_FRC_SIDE + 8:
        raise ResolutionError(
            f"a {side_px} x {side_px} FRC render at {p:g} nm pixels is too large "
            f"(at most {MAX_FRC_SIDE}): use a larger pixel"
        )
    x0, y0 = x.min() - 4 * p, y.min() - 4 * p
    extent = (x0, x0 + side_px * p, y0, y0 + side_px * p)
    window = _tukey(side_px)
    rng = np.random.default_rng(seed)
    repeats = max(1, int(repeats))
    curves = []
    for k in range(repeats):
        if should_stop():
            yield Done(None, stopped=True)
            return
        first = split_halves(x.size, frames=f, split=split, block_frames=block_frames, rng=rng)
        a = render_histogram(x[first], y[first], pixel_nm=p, extent=extent).image
        b = render_histogram(x[~first], y[~first], pixel_nm=p, extent=extent).image
        ring, curve = ring_correlation(a * window, b * window)
        curves.append(curve)
        yield Progress(k + 1, repeats, f"FRC split {k + 1}/{repeats}")
    frequency = ring / (side_px * p)
    frc = np.mean(curves, axis=0)
    width = int(smooth) if smooth else max(3, side_px // 200)
    smoothed = smooth_curve(frc, width)
    crossing = threshold_crossing(frequency, smoothed, threshold)
    message = ""
    if not np.isfinite(crossing):
        message = (
            "the FRC starts below the threshold: too few localizations for this pixel"
            if smoothed.size > 1 and smoothed[1] < threshold
            else f"the FRC stays above the threshold up to the Nyquist frequency of {p:g} nm "
            "pixels: use a smaller pixel"
        )
    resolution = 1.0 / crossing if np.isfinite(crossing) and crossing > 0 else float("nan")
    yield Done(
        FrcResult(resolution, frequency, frc, smoothed, threshold, p, int(x.size), split, message)
    )


def fourier_ring_correlation(x_nm: np.ndarray, y_nm: np.ndarray, **options: Any) -> FrcResult:
    """:func:`frc_job` as a plain function returning its :class:`FrcResult`."""
    return run_job(frc_job(x_nm, y_nm, **options))


def frc_table_job(table: pd.DataFrame, **options: Any) -> Iterator[Event]:
    """:func:`frc_job` of a spot table (px, ``attrs["pixel_size"]``), with its frames and its
    median uncertainty for the default pixel."""
    x, y = table_positions_nm(table)
    options.setdefault("uncertainty_nm", median_uncertainty_nm(table))
    return frc_job(x, y, frames=_frames(table), **options)


def frc_table(table: pd.DataFrame, **options: Any) -> FrcResult:
    """:func:`frc_table_job` as a plain function."""
    return run_job(frc_table_job(table, **options))


def _tukey(side: int, alpha: float = 0.125) -> np.ndarray:
    """A 2D Tukey window: flat in the middle, cosine edges over ``alpha`` of the side; it
    keeps the render's edges from adding frequencies of their own."""
    from scipy.signal.windows import tukey

    w = tukey(side, alpha).astype(np.float32)
    return w[:, None] * w[None, :]


# ----------------------------------------------------------------------------- NeNA
def next_frame_distances(
    x_nm: np.ndarray, y_nm: np.ndarray, frames: np.ndarray, max_distance_nm: float
) -> np.ndarray:
    """For each localization, the distance to its nearest neighbour in the next frame, for
    those that have one within ``max_distance_nm``."""
    from scipy.spatial import cKDTree

    x, y = np.asarray(x_nm, float), np.asarray(y_nm, float)
    f = np.asarray(frames, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y, f = x[keep], y[keep], f[keep]
    if x.size < 2:
        return np.empty(0)
    # frames apart by far more than the search radius: the nearest neighbour found within it
    # lies in the queried frame
    gap = 10.0 * max_distance_nm + 10.0 * float(np.ptp(x) + np.ptp(y)) + 1.0
    tree = cKDTree(np.column_stack([x, y, f * gap]))
    d, _ = tree.query(np.column_stack([x, y, (f + 1) * gap]), distance_upper_bound=max_distance_nm)
    return d[np.isfinite(d)]


def _nena_nll(params: np.ndarray, d: np.ndarray, dmax: float) -> float:
    """Negative log-likelihood of the NeNA mixture on [0, dmax]."""
    sigma, w = np.exp(params[0]), 1.0 / (1.0 + np.exp(-params[1]))
    norm = -np.expm1(-(dmax**2) / (4 * sigma**2))
    same = d / (2 * sigma**2) * np.exp(-(d**2) / (4 * sigma**2)) / norm
    other = 2 * d / dmax**2
    return -float(np.sum(np.log(w * same + (1 - w) * other + 1e-300)))


def _fit_nena(d: np.ndarray, dmax: float) -> tuple[float, float]:
    from scipy.optimize import minimize

    d = d[d <= dmax]
    start = np.median(d) / (2 * np.sqrt(np.log(2)))  # the median of the same-molecule term
    best = minimize(
        _nena_nll, np.array([np.log(max(start, 1e-3)), 2.0]), args=(d, dmax), method="Nelder-Mead"
    )
    return float(np.exp(best.x[0])), float(1.0 / (1.0 + np.exp(-best.x[1])))


def nena(
    x_nm: np.ndarray,
    y_nm: np.ndarray,
    frames: np.ndarray,
    *,
    max_distance_nm: float | None = None,
    min_pairs: int = 50,
) -> NenaResult:
    """The NeNA localization precision (nm) of localizations in consecutive frames.

    Parameters
    ----------
    max_distance_nm
        Neighbours farther than this are left out. Default: 200 nm for a first fit, then ten
        times its sigma (30-1000 nm) for the final one.
    min_pairs
        Fewer next-frame pairs than this raise :class:`ResolutionError`.
    """
    dmax = float(max_distance_nm) if max_distance_nm else 200.0
    if not np.isfinite(dmax) or dmax <= 0:
        raise ResolutionError(f"the NeNA distance limit must be positive, got {max_distance_nm}")
    d = next_frame_distances(x_nm, y_nm, frames, dmax)
    if d.size < min_pairs:
        raise ResolutionError(
            f"NeNA needs at least {min_pairs} localizations with a neighbour in the next frame "
            f"within {dmax:g} nm, found {d.size}"
        )
    sigma, w = _fit_nena(d, dmax)
    if not max_distance_nm:
        dmax = float(np.clip(10 * sigma, 30.0, 1000.0))
        d = d[d <= dmax] if dmax <= 200.0 else next_frame_distances(x_nm, y_nm, frames, dmax)
        if d.size >= min_pairs:
            sigma, w = _fit_nena(d, dmax)
    edges = np.linspace(0.0, dmax, 41)
    counts, _ = np.histogram(d, edges)
    width = edges[1] - edges[0]
    density = counts / max(d.size, 1) / width
    c = 0.5 * (edges[1:] + edges[:-1])
    norm = -np.expm1(-(dmax**2) / (4 * sigma**2))
    fit = w * c / (2 * sigma**2) * np.exp(-(c**2) / (4 * sigma**2)) / norm
    fit = fit + (1 - w) * 2 * c / dmax**2
    return NenaResult(sigma, int(d.size), dmax, edges, density, fit, w)


def nena_table(table: pd.DataFrame, **options: Any) -> NenaResult:
    """:func:`nena` of a spot table (px, ``attrs["pixel_size"]``)."""
    x, y = table_positions_nm(table)
    return nena(x, y, _frames(table), **options)


def precision_summary(table: pd.DataFrame) -> PrecisionSummary:
    """The median uncertainty and the NeNA precision of ``table`` (never raises for too few
    pairs: ``nena`` is then None and ``nena_message`` says why)."""
    try:
        result: NenaResult | None = nena_table(table)
        message = ""
    except ResolutionError as exc:
        result, message = None, str(exc)
    return PrecisionSummary(len(table), median_uncertainty_nm(table), result, message)


def summary_text(summary: PrecisionSummary) -> str:
    """``20,000 localizations: median uncertainty 10.1 nm, NeNA 10.3 nm (8,123 pairs)``."""
    parts = [f"{summary.n:,} localizations"]
    if np.isfinite(summary.median_uncertainty_nm):
        parts.append(f"median uncertainty {summary.median_uncertainty_nm:.1f} nm")
    if summary.nena is not None:
        parts.append(f"NeNA {summary.nena.sigma_nm:.1f} nm ({summary.nena.n_pairs:,} pairs)")
    else:
        parts.append("no NeNA: " + summary.nena_message)
    return parts[0] + ": " + ", ".join(parts[1:])
