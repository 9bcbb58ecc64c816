"""Drift of the sample over a long movie, estimated from the localizations, and its correction.

Two estimators (:func:`estimate_drift`):

- ``"rcc"``, redundant cross-correlation (Wang et al., Opt. Express 22:15982, 2014): the
  localizations are cut into time segments, each rendered as an image; every pair of segments
  ``(i, j)`` is cross-correlated and the subpixel position of the correlation peak measures
  ``r_ij = d_j - d_i``. The ``N (N - 1) / 2`` measurements over-determine the ``N`` segment
  drifts ``d``: they are solved by least squares, the pair with the largest residual is
  dropped while it exceeds ``rmax`` (and the segments stay connected), and the solution is
  solved again; a cubic spline through the segment drifts (at each segment's mean frame)
  gives the drift of every frame.
- ``"fiducials"``: bright markers present in most frames (beads, gold particles) are found as
  the densest spots of the whole movie, each tracked from frame to frame (its brightest
  localization near it), and their displacements averaged; frames where no fiducial was seen
  are interpolated.

A :class:`Drift` is the drift at every frame in nm, zero at frame 0: a localization at
``(x, y)`` in frame ``t`` belongs at ``(x - drift.x_nm[t], y - drift.y_nm[t])`` (in nm).
:func:`apply_drift` does that on a spot table and keeps the raw positions.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..jobs.errors import Cancelled

log = logging.getLogger(__name__)

METHODS = ("rcc", "fiducials")

Progress = Callable[[int, int], None]


class DriftError(ValueError):
    """Localizations that cannot give a drift (too few, no fiducials); the message says why."""


class Drift(NamedTuple):
    """The drift at every frame ``0..n_frames - 1`` (nm); subtracting it corrects positions."""

    frames: np.ndarray
    x_nm: np.ndarray
    y_nm: np.ndarray
    method: str


def estimate_drift(
    table: pd.DataFrame,
    *,
    method: str = "rcc",
    segments: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress: Progress | None = None,
    pixel_nm: float | None = None,
    max_shift_nm: float = 1000.0,
    rmax_nm: float = 20.0,
    min_fraction: float = 0.5,
) -> Drift:
    """The drift of ``table``'s localizations over its frames.

    Parameters
    ----------
    table
        A spot table (px, ``frame`` 0-based, ``attrs["pixel_size"]`` nm); ``attrs["n_frames"]``,
        when present, is the length of the movie (else the last frame with a localization).
    method
        ``"rcc"`` or ``"fiducials"``.
    segments
        RCC: the number of time segments (default: :func:`default_segments`).
    should_stop
        Checked between steps; when it returns True the estimate ends with
        :class:`~napari_celldenoise.jobs.errors.Cancelled`.
    progress
        Called as ``progress(done, total)`` after each step.
    pixel_nm
        RCC: the render pixel (default: a fifth of the camera pixel, larger for fields over
        1024 such pixels).
    max_shift_nm
        RCC: the largest drift between two segments looked for.
    rmax_nm
        RCC: pairs whose residual is larger are dropped from the solution (Wang et al.'s
        ``rmax``).
    min_fraction
        Fiducials: the fraction of frames a fiducial must be seen in.

    Raises
    ------
    DriftError
        Too few localizations or frames, or (fiducials) no fiducial found.
    """
    if method not in METHODS:
        raise DriftError(f"drift method must be one of {', '.join(METHODS)}, got {method!r}")
    stop = should_stop or (lambda: False)
    report = progress or (lambda done, total: None)
    frame, x_nm, y_nm = _positions_nm(table)
    n_frames = _n_frames(table, frame)
    if method == "rcc":
        x, y = _rcc(
            frame,
            x_nm,
            y_nm,
            n_frames,
            segments=segments,
            pixel_nm=pixel_nm or _default_pixel(table, x_nm, y_nm),
            max_shift_nm=max_shift_nm,
            rmax_nm=rmax_nm,
            stop=stop,
            report=report,
        )
    else:
        photons = table["photons"].to_numpy(float) if "photons" in table else np.ones(len(frame))
        pixel = float(table.attrs.get("pixel_size", 100.0))
        x, y = _fiducials(
            frame, x_nm, y_nm, photons, n_frames, pixel, min_fraction, stop=stop, report=report
        )
    return Drift(np.arange(n_frames), x - x[0], y - y[0], method)


def apply_drift(table: pd.DataFrame, drift: Drift) -> pd.DataFrame:
    """A new table whose ``x``, ``y`` have ``drift`` subtracted (frames past its end take its
    last value); the positions before correction are kept in ``x_raw``, ``y_raw`` (a table
    corrected before keeps its first raw positions, so corrections add up), ``attrs`` kept."""
    pixel = float(table.attrs.get("pixel_size", 100.0))
    out = table.copy()
    out.attrs = dict(table.attrs)
    if len(drift.frames) == 0:
        raise DriftError("the drift has no frames")
    index = np.clip(table["frame"].to_numpy(int), 0, len(drift.frames) - 1)
    for axis, shift in (("x", drift.x_nm), ("y", drift.y_nm)):
        if f"{axis}_raw" not in out:
            out[f"{axis}_raw"] = table[axis].to_numpy(float)
        out[axis] = table[axis].to_numpy(float) - np.asarray(shift, float)[index] / pixel
    out.attrs["drift"] = drift.method
    return out


def default_segments(n_localizations: int, n_frames: int) -> int:
    """RCC's default number of time segments: one per 200 localizations and per 50 frames,
    whichever is fewer, between 3 and 24 (276 pairs at most)."""
    return int(np.clip(min(n_localizations // 200, n_frames // 50), 3, 24))


def drift_rmse(estimate: Drift, truth: Drift) -> float:
    """Root-mean-square distance (nm) between two drifts over their common frames, after
    removing their mean difference (a constant offset is no drift)."""
    n = min(len(estimate.frames), len(truth.frames))
    if n == 0:
        raise DriftError("no common frames")
    dx = np.asarray(estimate.x_nm[:n]) - np.asarray(truth.x_nm[:n])
    dy = np.asarray(estimate.y_nm[:n]) - np.asarray(truth.y_nm[:n])
    return float(np.sqrt(np.mean((dx - dx.mean()) ** 2 + (dy - dy.mean()) ** 2)))


# --- shared ---------------------------------------------------------------------------------


def _positions_nm(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    for column in ("frame", "x", "y"):
        if column not in table:
            raise DriftError(f"the table has no {column!r} column")
    pixel = float(table.attrs.get("pixel_size", 100.0))
    frame = table["frame"].to_numpy(np.int64)
    x, y = table["x"].to_numpy(float) * pixel, table["y"].to_numpy(float) * pixel
    keep = np.isfinite(x) & np.isfinite(y) & (frame >= 0)
    return frame[keep], x[keep], y[keep]


def _n_frames(table: pd.DataFrame, frame: np.ndarray) -> int:
    last = int(frame.max()) + 1 if frame.size else 0
    return max(int(table.attrs.get("n_frames", 0) or 0), last)


def _default_pixel(table: pd.DataFrame, x_nm: np.ndarray, y_nm: np.ndarray) -> float:
    pixel = float(table.attrs.get("pixel_size", 100.0)) / 5
    if x_nm.size:
        span = max(np.ptp(x_nm), np.ptp(y_nm))
        pixel = max(pixel, span / 1024)
    return pixel


def _interpolate(centres: np.ndarray, values: np.ndarray, n_frames: int) -> np.ndarray:
    """Values at every frame from values at (increasing) ``centres``: a natural cubic spline
    (linear for fewer than 4 points), held constant past the first and last centre's
    neighbours' slope (the spline's ends are extrapolated linearly)."""
    from scipy.interpolate import CubicSpline

    t = np.arange(n_frames, dtype=float)
    if len(centres) == 1:
        return np.full(n_frames, values[0])
    if len(centres) < 4:
        slope0 = (values[1] - values[0]) / (centres[1] - centres[0])
        slope1 = (values[-1] - values[-2]) / (centres[-1] - centres[-2])
        out = np.interp(t, centres, values)
        out = np.where(t < centres[0], values[0] + slope0 * (t - centres[0]), out)
        return np.where(t > centres[-1], values[-1] + slope1 * (t - centres[-1]), out)
    spline = CubicSpline(centres, values, bc_type="natural")
    out = spline(t)
    lo, hi = t < centres[0], t > centres[-1]
    out[lo] = values[0] + spline(centres[0], 1) * (t[lo] - centres[0])
    out[hi] = values[-1] + spline(centres[-1], 1) * (t[hi] - centres[-1])
    return out


# --- redundant cross-correlation ------------------------------------------------------------


def _rcc(
    frame: np.ndarray,
    x_nm: np.ndarray,
    y_nm: np.ndarray,
    n_frames: int,
    *,
    segments: int | None,
    pixel_nm: float,
    max_shift_nm: float,
    rmax_nm: float,
    stop: Callable[[], bool],
    report: Progress,
) -> tuple[np.ndarray, np.ndarray]:
    n_seg = segments or default_segments(frame.size, n_frames)
    if n_seg < 2:
        raise DriftError(f"RCC needs at least 2 segments, got {n_seg}")
    if n_frames < n_seg:
        raise DriftError(f"RCC: {n_frames} frames cannot make {n_seg} segments")
    bounds = np.linspace(0, n_frames, n_seg + 1).round().astype(np.int64)
    which = np.searchsorted(bounds, frame, side="right") - 1
    counts = np.bincount(which, minlength=n_seg)
    if counts.min() < 20:
        raise DriftError(
            f"RCC: too few localizations: {counts.min()} in the sparsest of {n_seg} time "
            f"segments (at least 20 each; give fewer segments or more localizations)"
        )
    n_pairs = n_seg * (n_seg - 1) // 2
    total = n_seg + n_pairs
    spectra = _segment_spectra(x_nm, y_nm, which, n_seg, pixel_nm, max_shift_nm, stop, report)
    reach = int(np.ceil(max_shift_nm / pixel_nm))
    from threadpoolctl import threadpool_limits

    pairs, shifts = [], []
    done = n_seg
    with threadpool_limits(limits=1, user_api="blas"):  # small products: threads only contend
        for i in range(n_seg - 1):
            for j in range(i + 1, n_seg):
                if stop():
                    raise Cancelled("drift estimation stopped")
                shifts.append(_peak_shift(spectra, i, j, reach, pixel_nm))
                pairs.append((i, j))
                done += 1
                report(done, total)
    d = _solve_redundant(np.array(pairs), np.array(shifts), n_seg, rmax_nm)
    centres = np.array([frame[which == k].mean() for k in range(n_seg)])
    return _interpolate(centres, d[:, 0], n_frames), _interpolate(centres, d[:, 1], n_frames)


class _Spectra(NamedTuple):
    ffts: list[np.ndarray]
    shape: tuple[int, int]


def _segment_spectra(x_nm, y_nm, which, n_seg, pixel_nm, max_shift_nm, stop, report) -> _Spectra:
    """The 2D Fourier transforms of each segment's render: a histogram at ``pixel_nm``
    smoothed by a Gaussian of one pixel (so the correlation peak is smooth enough for a
    subpixel fit), padded by ``max_shift_nm`` so that shifts do not wrap around."""
    from scipy import fft
    from scipy.ndimage import gaussian_filter

    from .render import render_histogram, render_shape

    pad = max_shift_nm + 2 * pixel_nm
    extent = (x_nm.min() - pad, x_nm.max() + pad, y_nm.min() - pad, y_nm.max() + pad)
    rows, cols = render_shape(extent, pixel_nm)
    shape = (fft.next_fast_len(rows, real=True), fft.next_fast_len(cols, real=True))
    ffts = []
    for k in range(n_seg):
        if stop():
            raise Cancelled("drift estimation stopped")
        sel = which == k
        image = render_histogram(x_nm[sel], y_nm[sel], pixel_nm=pixel_nm, extent=extent).image
        image = gaussian_filter(image, 1.0)
        image -= image.mean()
        ffts.append(fft.rfft2(image.astype(np.float32), s=shape, workers=-1))
        report(k + 1, n_seg + n_seg * (n_seg - 1) // 2)
    return _Spectra(ffts, shape)


def _peak_shift(spectra: _Spectra, i: int, j: int, reach: int, pixel_nm: float) -> np.ndarray:
    """``(dx, dy)`` nm such that segment ``j`` is segment ``i`` moved by it: the subpixel
    position of the cross-correlation's maximum within ``reach`` px of no shift.

    In two stages, so that no full-size inverse transform is needed per pair: the correlation
    at a quarter of the resolution (the cross-power spectrum's low frequencies, inverted on a
    grid 4 times coarser) gives the peak to within a coarse pixel, after weighting by a broad
    Gaussian around no shift (for periodic samples, whose correlation repeats at each period,
    the nearest peak wins); then the full-resolution correlation is summed directly from the
    spectrum on a few pixels around it (a partial inverse DFT), and the subpixel offset comes
    from a parabola through the 3 x 3 values around its maximum (through their logarithm when
    they are positive: exact for a Gaussian peak)."""
    from scipy import fft

    rows, cols = spectra.shape
    cross = np.conj(spectra.ffts[i]) * spectra.ffts[j]
    factor = 4 if min(rows, cols) >= 16 * (reach // 4 + 2) else 1
    coarse_rows, coarse_cols = 2 * (rows // (2 * factor)), 2 * (cols // (2 * factor))
    low = np.concatenate([cross[: coarse_rows // 2], cross[rows - coarse_rows // 2 :]], axis=0)[
        :, : coarse_cols // 2 + 1
    ]
    coarse = fft.irfft2(low, s=(coarse_rows, coarse_cols), workers=-1)
    step_r, step_c = rows / coarse_rows, cols / coarse_cols
    reach_c = int(np.ceil(reach / min(step_r, step_c)))
    grid = np.arange(-reach_c, reach_c + 1)
    window = coarse[np.ix_(grid % coarse_rows, grid % coarse_cols)]
    scale = max(reach_c / 2, 1)
    weight = np.exp(-0.5 * (grid[:, None] ** 2 + grid[None, :] ** 2) / scale**2)
    r, c = np.unravel_index(np.argmax(window * weight), window.shape)
    centre = np.array([grid[r] * step_r, grid[c] * step_c]).round().astype(int)
    half = int(np.ceil(factor)) + 1
    for _ in range(4):  # re-centre while the maximum sits on the window's edge
        offsets_r = centre[0] + np.arange(-half, half + 1)
        offsets_c = centre[1] + np.arange(-half, half + 1)
        fine = _partial_correlation(cross, spectra.shape, offsets_r, offsets_c)
        r, c = np.unravel_index(np.argmax(fine), fine.shape)
        if 0 < r < fine.shape[0] - 1 and 0 < c < fine.shape[1] - 1:
            break
        centre = np.array([offsets_r[r], offsets_c[c]])
    r = int(np.clip(r, 1, fine.shape[0] - 2))
    c = int(np.clip(c, 1, fine.shape[1] - 2))
    patch = fine[r - 1 : r + 2, c - 1 : c + 2]
    if patch.min() > 0:
        patch = np.log(patch)
    dy = _vertex(*patch[:, 1])
    dx = _vertex(*patch[1, :])
    return np.array([(offsets_c[c] + dx) * pixel_nm, (offsets_r[r] + dy) * pixel_nm])


def _partial_correlation(
    cross: np.ndarray, shape: tuple[int, int], offsets_r: np.ndarray, offsets_c: np.ndarray
) -> np.ndarray:
    """The inverse real 2D DFT of the half spectrum ``cross`` at the given row and column
    offsets only: ``sum_k X(k) exp(2 pi i k s / n)`` with the half spectrum's columns counted
    twice (but the first and, for an even size, the last)."""
    rows, cols = shape
    ky = np.fft.fftfreq(rows, 1.0 / rows)
    kx = np.arange(cross.shape[1])
    weight = np.full(kx.size, 2.0)
    weight[0] = 1.0
    if cols % 2 == 0:
        weight[-1] = 1.0
    # in the spectrum's own precision: a mixed-precision product would not go to BLAS
    ey = np.exp(2j * np.pi * np.outer(offsets_r, ky) / rows).astype(cross.dtype)
    ex = (np.exp(2j * np.pi * np.outer(offsets_c, kx) / cols) * weight).astype(cross.dtype)
    return (ey @ cross @ ex.T).real.astype(float) / (rows * cols)


def _vertex(a: float, b: float, c: float) -> float:
    """The vertex of the parabola through (-1, a), (0, b), (1, c), within half a pixel."""
    denom = a - 2 * b + c
    if not np.isfinite(denom) or denom >= 0:
        return 0.0
    return float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5))


def _solve_redundant(
    pairs: np.ndarray, shifts: np.ndarray, n_seg: int, rmax_nm: float
) -> np.ndarray:
    """The segment drifts ``(n_seg, 2)`` (segment 0 at zero) that best explain ``d_j - d_i =
    shift`` over ``pairs``, dropping the worst pair while its residual exceeds ``rmax_nm`` and
    the remaining pairs still connect every segment (Wang et al. 2014)."""
    keep = np.ones(len(pairs), bool)
    while True:
        d = _least_squares(pairs[keep], shifts[keep], n_seg)
        residual = np.hypot(*(d[pairs[:, 1]] - d[pairs[:, 0]] - shifts).T)
        residual[~keep] = -1.0
        worst = int(np.argmax(residual))
        if residual[worst] <= rmax_nm:
            break
        trial = keep.copy()
        trial[worst] = False
        if not _connected(pairs[trial], n_seg):
            log.info(
                "RCC: a pair with %.1f nm residual kept to connect the segments", residual[worst]
            )
            break
        keep = trial
    dropped = int((~keep).sum())
    if dropped:
        log.info("RCC: %d of %d pairs dropped as outliers", dropped, len(pairs))
    return d


def _least_squares(pairs: np.ndarray, shifts: np.ndarray, n_seg: int) -> np.ndarray:
    a = np.zeros((len(pairs) + 1, n_seg))
    a[np.arange(len(pairs)), pairs[:, 1]] = 1.0
    a[np.arange(len(pairs)), pairs[:, 0]] = -1.0
    a[-1, 0] = 1.0  # segment 0 at zero: the system fixes only differences
    b = np.vstack([shifts, [0.0, 0.0]])
    return np.linalg.lstsq(a, b, rcond=None)[0]


def _connected(pairs: np.ndarray, n: int) -> bool:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(pairs) == 0:
        return n <= 1
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[0] == 1


# --- fiducials ------------------------------------------------------------------------------


def _fiducials(
    frame: np.ndarray,
    x_nm: np.ndarray,
    y_nm: np.ndarray,
    photons: np.ndarray,
    n_frames: int,
    pixel: float,
    min_fraction: float,
    *,
    stop: Callable[[], bool],
    report: Progress,
) -> tuple[np.ndarray, np.ndarray]:
    """The mean displacement of the fiducials at every frame (nm)."""
    candidates = _fiducial_candidates(frame, x_nm, y_nm, n_frames, pixel, min_fraction)
    radius = 3 * pixel
    tracks = []
    for k, (cx, cy) in enumerate(candidates):
        if stop():
            raise Cancelled("drift estimation stopped")
        track = _track(frame, x_nm, y_nm, photons, n_frames, cx, cy, radius)
        if np.isfinite(track[:, 0]).sum() >= min_fraction * n_frames:
            tracks.append(track)
        report(k + 1, len(candidates))
    if not tracks:
        raise DriftError(
            f"no fiducials found: no spot is present in at least {min_fraction:.0%} of the "
            f"{n_frames} frames (use RCC)"
        )
    # each fiducial's displacement from its own median position, averaged over fiducials
    shifts = np.stack([t - np.nanmedian(t, axis=0) for t in tracks])
    with warnings.catch_warnings():  # frames no fiducial was seen in: NaN, interpolated below
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(shifts, axis=0)
    seen = np.isfinite(mean[:, 0])
    t = np.arange(n_frames)
    log.info("fiducials: %d tracked, seen in %d of %d frames", len(tracks), seen.sum(), n_frames)
    return (
        np.interp(t, t[seen], mean[seen, 0]),
        np.interp(t, t[seen], mean[seen, 1]),
    )


def _fiducial_candidates(
    frame, x_nm, y_nm, n_frames, pixel, min_fraction
) -> list[tuple[float, float]]:
    """Centres (nm) of the places with at least ``min_fraction * n_frames`` localizations
    within 1.5 camera pixels of bins of one camera pixel (a fiducial's localizations, spread
    by the drift), densest first, one per place."""
    from scipy.ndimage import maximum_filter, uniform_filter

    from .render import render_histogram

    if frame.size == 0:
        return []
    hist = render_histogram(x_nm, y_nm, pixel_nm=pixel)
    counts = uniform_filter(hist.image.astype(float), size=3, mode="constant") * 9
    peaks = (counts == maximum_filter(counts, size=5)) & (counts >= min_fraction * n_frames)
    rows, cols = np.nonzero(peaks)
    order = np.argsort(-counts[rows, cols])
    x0, y0 = hist.origin_nm
    return [(x0 + (cols[k] + 0.5) * pixel, y0 + (rows[k] + 0.5) * pixel) for k in order]


def _track(frame, x_nm, y_nm, photons, n_frames, cx, cy, radius) -> np.ndarray:
    """``(n_frames, 2)`` positions (nm, NaN where unseen): in each frame the brightest
    localization within ``radius`` of the place's running position, outliers (over 5 robust
    standard deviations from the running median) dropped."""
    from scipy.ndimage import median_filter

    near = np.hypot(x_nm - cx, y_nm - cy) <= radius
    f, x, y, n = frame[near], x_nm[near], y_nm[near], np.nan_to_num(photons[near], nan=0.0)
    order = np.lexsort((-n, f))  # brightest first within each frame
    f, x, y = f[order], x[order], y[order]
    first = np.ones(f.size, bool)
    first[1:] = f[1:] != f[:-1]
    track = np.full((n_frames, 2), np.nan)
    track[f[first], 0], track[f[first], 1] = x[first], y[first]
    for axis in range(2):
        seen = np.isfinite(track[:, 0])
        if seen.sum() < 5:
            return track
        values = track[seen, axis]
        smooth = median_filter(values, size=min(51, values.size | 1), mode="nearest")
        dev = np.abs(values - smooth)
        scale = 1.4826 * np.median(dev) + 1e-9
        bad = np.flatnonzero(seen)[dev > 5 * scale]
        track[bad] = np.nan
    return track


__all__ = [
    "METHODS",
    "Drift",
    "DriftError",
    "apply_drift",
    "default_segments",
    "drift_rmse",
    "estimate_drift",
]
