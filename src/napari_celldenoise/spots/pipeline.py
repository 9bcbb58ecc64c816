"""The whole spot pipeline over single frames, time stacks and Z stacks.

:func:`find_spots` is a job generator (``Progress`` per frame, ``Done(table)`` last) so that the
dock runs it in a worker with Cancel and the CLI drains it; :func:`locate` is the plain function.
The table is a :class:`pandas.DataFrame` in pixels (pixel centres at integers, x the column,
y the row) and photons, one row per fitted spot, ``frame`` and ``z`` 0-based.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
from scipy.special import erf

from ..jobs import Done, Event, Log, Progress, ShouldStop, never_stop
from ..jobs import run as run_job
from .config import SpotsConfig
from .detect import detect_frame, local_maxima
from .filters import apply_filter
from .fit import extract_boxes, fit_boxes, read_variance, to_photoelectrons
from .multifit import fit_emitters

FIT_FIELDS = ("params", "crlb", "loglik", "chi2", "iterations", "converged")

logger = logging.getLogger(__name__)

COLUMNS = [
    "frame",
    "z",
    "y",
    "x",
    "photons",
    "background",
    "sigma",
    "sigma_x",
    "sigma_y",
    "ellipticity",
    "uncertainty",
    "crlb_x",
    "crlb_y",
    "crlb_photons",
    "crlb_background",
    "crlb_sigma",
    "bkgstd",
    "chi2",
    "loglik",
    "significance",
    "iterations",
    "converged",
    "peak",
    "class",
]
RESIDUAL_EXCLUSION = 2.0
RESIDUAL_THRESHOLD = 2.0
"""The residual pass asks this much more than the first: fitted models are not perfect."""
"""Residual maxima closer than this many sigma to a fitted spot are residue of its fit."""

FEATURES = [
    "photons",
    "background",
    "sigma",
    "ellipticity",
    "uncertainty",
    "bkgstd",
    "chi2",
    "significance",
    "peak",
    "crlb_photons",
    "iterations",
]
"""Numeric columns a classifier and the feature sliders use."""


def empty_table(pixel_size: float = 100.0) -> pd.DataFrame:
    """A typed table with no rows."""
    table = pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in COLUMNS})
    table.attrs["pixel_size"] = float(pixel_size)
    return table


def _dtype(column: str) -> str:
    if column in ("frame", "z", "iterations"):
        return "int64"
    if column == "converged":
        return "bool"
    if column == "class":
        return "object"
    return "float64"


def plane_axes(shape: tuple[int, ...], axes: str | None) -> str:
    """The axes of a stack for spot finding: ``YX``, ``TYX``, ``ZYX`` or ``TZYX``."""
    ndim = len(shape)
    if axes is None:
        axes = {2: "YX", 3: "TYX", 4: "TZYX"}.get(ndim)
        if axes is None:
            raise ValueError(f"spots are found in 2D to 4D stacks, got shape {shape}")
    axes = axes.upper()
    if len(axes) != ndim or not axes.endswith("YX") or any(a not in "TZYX" for a in axes):
        raise ValueError(f"axes {axes!r} do not fit shape {shape} (use YX, TYX, ZYX or TZYX)")
    return axes


def find_spots(
    stack: np.ndarray,
    config: SpotsConfig | None = None,
    *,
    axes: str | None = None,
    detect_on: np.ndarray | None = None,
    should_stop: ShouldStop = never_stop,
) -> Iterator[Event]:
    """Detect and fit spots in every plane of ``stack``; yields events, ``Done(table)`` last.

    Parameters
    ----------
    stack
        2D frame or stack (numpy or dask) in camera ADU.
    config
        Settings (defaults: wavelet filter, ``0.7*localnoise(Wave.F1)``, MLE, 7x7 boxes).
    axes
        ``YX``, ``TYX``, ``ZYX`` or ``TZYX`` (default from the number of dimensions).
    detect_on
        An image of the same shape (e.g. denoised) in which candidates are detected; the fit
        always uses ``stack``.
    should_stop
        Polled once per plane; when True the spots found so far are returned with
        ``Done(stopped=True)``.
    """
    config = config or SpotsConfig()
    shape = tuple(int(s) for s in stack.shape)
    axes = plane_axes(shape, axes)
    if detect_on is not None and tuple(detect_on.shape) != shape:
        raise ValueError(f"detection image shape {tuple(detect_on.shape)} != stack shape {shape}")
    if min(shape[-2:]) < config.box:
        raise ValueError(
            f"frames of {shape[-2]}x{shape[-1]} px are smaller than the "
            f"{config.box}x{config.box} fit box"
        )
    lead = shape[:-2]
    planes = list(np.ndindex(*lead)) if lead else [()]
    camera = config.camera
    rvar = read_variance(camera)
    parts: list[pd.DataFrame] = []
    t0 = time.perf_counter()
    stopped = False
    for k, index in enumerate(planes):
        if should_stop():
            stopped = True
            break
        frame = np.asarray(stack[index])
        other = None if detect_on is None else np.asarray(detect_on[index])
        part = locate_frame(frame, config, detect_on=other, read_var=rvar)
        labels = dict(zip(axes[:-2], index))
        part["frame"] = int(labels.get("T", 0))
        part["z"] = int(labels.get("Z", 0))
        parts.append(part)
        n = sum(len(p) for p in parts)
        yield Progress(k + 1, len(planes), f"plane {k + 1}/{len(planes)}: {n} spots")
    table = pd.concat(parts, ignore_index=True) if parts else empty_table()
    table = table[COLUMNS]
    if config.classify and config.fit != "none" and len(table):
        from .classify import default_rules

        psf = psf_sigma(table, config.sigma)
        table["class"] = default_rules(psf).classify(table)
        table.attrs["psf_sigma"] = psf
    table.attrs["pixel_size"] = float(config.pixel_size)
    table.attrs["axes"] = axes
    dt = time.perf_counter() - t0
    yield Log(f"{len(table)} spots in {len(parts)} planes ({dt:.2f} s)")
    yield Done(table, stopped=stopped)


def locate(
    stack: np.ndarray,
    config: SpotsConfig | None = None,
    *,
    axes: str | None = None,
    detect_on: np.ndarray | None = None,
) -> pd.DataFrame:
    """:func:`find_spots` as a plain function returning the table."""
    return run_job(find_spots(stack, config, axes=axes, detect_on=detect_on))


def locate_frame(
    frame: np.ndarray,
    config: SpotsConfig,
    *,
    detect_on: np.ndarray | None = None,
    read_var: float | None = None,
) -> pd.DataFrame:
    """Detect and fit the spots of one 2D frame (ADU); ``frame``/``z`` columns are 0."""
    frame = np.asarray(frame)
    if frame.ndim != 2:
        raise ValueError(f"locate_frame takes a 2D frame, got shape {frame.shape}")
    camera = config.camera
    rvar = read_variance(camera) if read_var is None else read_var
    coords, filtered, thr = detect_frame(
        frame,
        filter=config.filter,
        threshold=config.threshold,
        sigma=config.sigma,
        min_distance=config.min_distance,
        border=config.border_px,
        detect_on=detect_on,
        full=True,
        **config.filter_options(),
    )
    if len(coords) == 0:
        return empty_table(config.pixel_size).drop(columns=[])
    peak = filtered[coords[:, 0], coords[:, 1]]
    electrons = to_photoelectrons(frame, camera)
    boxes = extract_boxes(electrons, coords, config.box)
    half = config.box // 2
    n = len(coords)
    out: dict[str, np.ndarray] = {}
    if config.fit == "none":
        out["y"], out["x"] = coords[:, 0].astype(float), coords[:, 1].astype(float)
        bg = np.median(boxes.reshape(n, -1), axis=1)
        out["photons"] = (boxes.reshape(n, -1) - bg[:, None]).sum(1) / camera.qe
        out["background"] = bg / camera.qe
        out["ellipticity"] = np.ones(n)
        for c in COLUMNS:  # widths, bounds and fit statistics do not exist without a fit
            if c not in out and _dtype(c) == "float64" and c != "peak":
                out[c] = np.full(n, np.nan)
        out["iterations"] = np.zeros(n, int)
        out["converged"] = np.ones(n, bool)
    else:
        coords, res, boxes = fit_frame(frame, electrons, coords, config, rvar, thr)
        n = len(coords)
        if n and coords.shape[0] != len(peak):
            filtered_all = apply_filter(
                frame if detect_on is None else detect_on,
                config.filter,
                sigma=config.sigma,
                **config.filter_options(),
            ).F
            peak = filtered_all[coords[:, 0], coords[:, 1]]
        p, c = res.params, res.crlb
        qe = camera.qe
        out["y"] = coords[:, 0] - half + p[:, 1]
        out["x"] = coords[:, 1] - half + p[:, 0]
        out["photons"] = p[:, 2] / qe
        out["background"] = p[:, 3] / qe
        out["sigma_x"], out["sigma_y"] = p[:, 4], p[:, 5]
        out["sigma"] = np.sqrt(p[:, 4] * p[:, 5])
        out["ellipticity"] = np.maximum(p[:, 4], p[:, 5]) / np.minimum(p[:, 4], p[:, 5])
        out["crlb_x"], out["crlb_y"] = c[:, 0], c[:, 1]
        out["uncertainty"] = np.sqrt((c[:, 0] ** 2 + c[:, 1] ** 2) / 2)
        out["crlb_photons"] = c[:, 2] / qe
        out["crlb_background"] = c[:, 3] / qe
        out["crlb_sigma"] = c[:, 4]
        model = model_boxes(p, config.box)
        out["bkgstd"] = (boxes - model).reshape(n, -1).std(1) / qe
        out["chi2"] = res.chi2
        out["loglik"] = res.loglik
        out["significance"] = fit_significance(boxes, res, rvar, config.fit)
        out["iterations"] = res.iterations.astype(int)
        out["converged"] = res.converged
    out["peak"] = peak
    out["frame"] = np.zeros(n, int)
    out["z"] = np.zeros(n, int)
    out["class"] = np.full(n, "good", object)
    table = pd.DataFrame(out)[COLUMNS]
    if config.fit != "none":
        # a fit that wandered outside its box or failed is not a localization; nor is a fit
        # no more likely than a flat background; two candidates that fitted the same spot
        # are one
        keep = table["converged"].to_numpy() & (
            table["significance"].to_numpy() >= config.min_significance
        )
        table = table[keep].reset_index(drop=True)
        table = drop_duplicates(table, config.duplicate_distance)
    table.attrs["pixel_size"] = float(config.pixel_size)
    return table


def psf_sigma(table: pd.DataFrame, default: float, *, min_spots: int = 10) -> float:
    """The PSF width the data show: the median sigma of the clearly significant fits
    (significance >= 8), or ``default`` when there are fewer than ``min_spots`` of them."""
    sure = table["significance"].to_numpy() >= 8
    if sure.sum() < min_spots:
        return float(default)
    return float(np.median(table["sigma"].to_numpy()[sure]))


def fit_frame(frame, electrons, coords, config: SpotsConfig, rvar: float, threshold):
    """Fit every candidate; in crowded places refit with the neighbours subtracted, refit
    too-broad fits (two spots taken for one) with the PSF's width fixed, and look for spots
    hidden by brighter neighbours in the residual frame. Returns (coords, FitResult, boxes).

    With ``lsq`` these decisions (which candidates are spots, which are two, what the
    neighbours are that each box has subtracted) are taken on Poisson maximum-likelihood
    fits, and the least-squares fit is then made on the boxes so cleaned. Weighted least
    squares is not the likelihood's optimum: its data weighting underestimates the photons of
    dim spots (Mortensen et al. 2010), so neighbours were under-subtracted, crowded fits slid
    onto the brighter neighbour and dim spots among dense ones were lost (benchmark dense F1
    0.9954 with LSQ decisions against 0.9966 with MLE ones)."""
    camera = config.camera

    def fit(b: np.ndarray, fixed: float | None = None):
        return fit_boxes(
            b,
            method=config.fit,
            sigma=config.sigma if fixed is None else fixed,
            elliptical=config.elliptical,
            fixed_sigma=fixed is not None,
            read_var=rvar,
            em_gain=camera.em_gain,
            max_iter=config.max_iter,
            tol=config.tol,
        )

    if config.fit == "lsq" and config.subtract_neighbours:
        mle = config.model_copy(update={"fit": "mle"})
        coords, ref, boxes = fit_frame(frame, electrons, coords, mle, rvar, threshold)
        res = fit(boxes)
        # where least squares fails on a crowded box (no convergence, a width absorbing the
        # neighbours' residue and a centre pulled away from the likelihood's) it is refitted
        # with the width held at the frame's PSF, as :func:`refit_broad` does for broad fits
        psf = frame_psf(ref, boxes, rvar, mle)
        moved = np.hypot(*(res.params[:, :2] - ref.params[:, :2]).T) > 0.5
        broad = np.sqrt(res.params[:, 4] * res.params[:, 5]) > 1.25 * psf
        redo = np.flatnonzero(~res.converged | moved | broad)
        if len(redo):
            held = fit(boxes[redo], fixed=psf)
            for name in FIT_FIELDS:
                getattr(res, name)[redo] = getattr(held, name)
        return coords, res, boxes

    def one_round(coords, split: bool):
        boxes = extract_boxes(electrons, coords, config.box)
        res = fit(boxes)
        pairs = None
        if config.subtract_neighbours and len(coords) > 1:
            boxes = refit_crowded(electrons.shape, coords, boxes, res, config, fit, rvar)
            if split:
                pairs = split_pairs(electrons, coords, res, boxes, config, rvar)
            refit_broad(coords, boxes, res, config, fit, rvar)
        return res, boxes, pairs

    res, boxes, split = one_round(coords, True)
    if config.subtract_neighbours:
        more = residual_candidates(frame, electrons, coords, res, boxes, config, threshold, rvar)
        if split is not None:
            coords = split
        if len(more) or split is not None:
            coords = np.unique(np.vstack([coords, more]), axis=0) if len(more) else coords
            res, boxes, _ = one_round(coords, False)
    return coords, res, boxes


def split_pairs(electrons, coords, res, boxes, config: SpotsConfig, rvar: float):
    """Candidates for two spots fitted as one: a crowded fit wider than the frame's PSF is
    refitted as two spots of the PSF's width (Poisson likelihood, 2 x box+2 px around it, the
    trusted neighbours subtracted); when two spots explain it clearly better (2 ln LR > 25) and
    lie more than one PSF sigma apart, both become candidates in its place. Returns the new
    candidate array, or None when nothing was split."""
    from scipy.spatial import cKDTree

    p = res.params
    ok = res.converged
    if ok.sum() < 3 or len(coords) < 2:
        return None
    psf = frame_psf(res, boxes, rvar, config)
    half = config.box // 2
    width = np.sqrt(p[:, 4] * p[:, 5])
    pairs = cKDTree(coords).query_pairs(half + int(np.ceil(3 * psf)), output_type="ndarray")
    crowded = np.zeros(len(coords), bool)
    crowded[pairs.ravel()] = True
    broad = np.flatnonzero(crowded & ok & (width > 1.2 * psf))
    if len(broad) == 0:
        return None
    trusted = _trusted(res, boxes, config, rvar)
    spots = np.zeros(electrons.shape)
    yx_all = coords - half + p[:, [1, 0]]
    render_spots(spots, yx_all[trusted], p[trusted, 2], p[trusted, 4], p[trusted, 5])
    big = half + 2
    rows, cols = electrons.shape
    grid = np.arange(-big, big + 1)
    out = [c for c in coords]
    replaced: set[int] = set()
    added: list[np.ndarray] = []
    for i in broad:
        cy, cx = np.rint(yx_all[i]).astype(int)
        if cy - big < 0 or cx - big < 0 or cy + big >= rows or cx + big >= cols:
            continue
        sl = (slice(cy - big, cy + big + 1), slice(cx - big, cx + big + 1))
        own = np.zeros(electrons.shape)
        if trusted[i]:
            render_spots(own, yx_all[i : i + 1], p[i : i + 1, 2], p[i : i + 1, 4], p[i : i + 1, 5])
        data = electrons[sl] - (spots[sl] - own[sl])

        y0, x0 = yx_all[i] - (cy, cx) + big
        bg = max(float(p[i, 3]), 0.0)
        n0 = float(p[i, 2])
        _, ll_one = fit_emitters(data, np.array([y0, x0, n0, bg]), 1, psf, rvar)
        # start the pair along the fit's long axis (second moments of the data)
        w = np.clip(data - bg, 0, None)
        yy, xx = np.meshgrid(grid, grid, indexing="ij")
        tot = max(w.sum(), 1e-9)
        my, mx = (w * yy).sum() / tot, (w * xx).sum() / tot
        cov = (
            np.array(
                [
                    [(w * (yy - my) ** 2).sum(), (w * (yy - my) * (xx - mx)).sum()],
                    [(w * (yy - my) * (xx - mx)).sum(), (w * (xx - mx) ** 2).sum()],
                ]
            )
            / tot
        )
        vals, vecs = np.linalg.eigh(cov)
        axis = vecs[:, -1] * np.sqrt(max(vals[-1] - psf**2, 0.25))
        q0 = [y0 + axis[0], x0 + axis[1], n0 / 2, y0 - axis[0], x0 - axis[1], n0 / 2, bg]
        two, ll_two = fit_emitters(data, np.array(q0), 2, psf, rvar)
        two[[0, 1, 3, 4]] -= big
        gain = 2 * (ll_two - ll_one)  # the deviance one spot leaves and two spots explain
        sep = np.hypot(two[0] - two[3], two[1] - two[4])
        if gain > 25 and sep > psf and min(two[2], two[5]) > 0.1 * n0:
            replaced.add(int(i))
            for k in (0, 3):
                added.append(np.rint([cy + two[k], cx + two[k + 1]]).astype(np.intp))
    if not replaced:
        return None
    keep = [c for j, c in enumerate(out) if j not in replaced]
    new = np.vstack([*keep, *added]).astype(np.intp)
    lo, hi_r, hi_c = config.border_px, rows - 1 - config.border_px, cols - 1 - config.border_px
    inside = (new[:, 0] >= lo) & (new[:, 1] >= lo) & (new[:, 0] <= hi_r) & (new[:, 1] <= hi_c)
    return np.unique(new[inside], axis=0)


def frame_psf(res, boxes, rvar: float, config: SpotsConfig, *, min_spots: int = 3) -> float:
    """The frame's PSF width: the median sigma of its converged, clearly significant fits
    (significance >= 8, as :func:`psf_sigma`), or ``config.sigma`` when fewer than ``min_spots``.

    Only sure spots count: a low threshold adds hundreds of noise candidates whose fits have
    any width, and their median would pass broad fits of two spots as normal ones."""
    sig = fit_significance(boxes, res, rvar, config.fit)
    sure = res.converged & (sig >= 8)
    if sure.sum() < min_spots:
        return float(config.sigma)
    p = res.params[sure]
    return float(np.median(np.sqrt(p[:, 4] * p[:, 5])))


def refit_broad(coords, boxes, res, config: SpotsConfig, fit, rvar: float) -> None:
    """Crowded fits much wider than the frame's PSF are two spots taken for one: refit them
    with the PSF's width fixed so that each lands on one spot (the other is then found in the
    residual). The PSF width is :func:`frame_psf`."""
    from scipy.spatial import cKDTree

    p = res.params
    ok = res.converged
    if ok.sum() < 3:
        return
    psf = frame_psf(res, boxes, rvar, config)
    half = config.box // 2
    reach = half + int(np.ceil(3 * psf))
    pairs = cKDTree(coords).query_pairs(reach, output_type="ndarray")
    crowded = np.zeros(len(coords), bool)
    crowded[pairs.ravel()] = True
    broad = crowded & (np.sqrt(p[:, 4] * p[:, 5]) > 1.25 * psf)
    if not broad.any():
        return
    idx = np.flatnonzero(broad)
    res2 = fit(boxes[idx], fixed=psf)
    for name in FIT_FIELDS:
        getattr(res, name)[idx] = getattr(res2, name)


def residual_candidates(
    frame, electrons, coords, res, boxes, config: SpotsConfig, threshold, rvar: float
):
    """Candidates found again in the frame minus every trusted fit (spots hidden by a brighter
    neighbour); those within ``2 sigma`` of a fitted spot are residue of its fit, not spots."""
    from scipy.spatial import cKDTree

    half = config.box // 2
    p = res.params
    ok = _trusted(res, boxes, config, rvar)
    if not ok.any():
        return np.empty((0, 2), np.intp)
    yx = coords[ok] - half + p[ok][:, [1, 0]]
    spots = np.zeros(electrons.shape)
    render_spots(spots, yx, p[ok][:, 2], p[ok][:, 4], p[ok][:, 5])
    camera = config.camera
    residual = np.asarray(frame, np.float64) - spots / (camera.sensitivity / camera.em_gain)
    filtered = apply_filter(residual, config.filter, sigma=config.sigma, **config.filter_options())
    found = local_maxima(
        filtered.F,
        RESIDUAL_THRESHOLD * threshold,
        min_distance=config.min_distance,
        border=config.border_px,
    )
    if len(found) == 0:
        return found
    d, _ = cKDTree(np.vstack([yx, coords])).query(found)
    return found[d > RESIDUAL_EXCLUSION * config.sigma]


def _trusted(res, boxes, config: SpotsConfig, rvar: float) -> np.ndarray:
    """Fits solid enough to be subtracted from their neighbours: converged, near their
    candidate, clearly above background and not narrower than half the PSF."""
    half = config.box // 2
    p = res.params
    moved = (np.hypot(p[:, 0] - half, p[:, 1] - half) > 1.0) | ~res.converged
    sig = fit_significance(boxes, res, rvar, config.fit)
    width = np.sqrt(p[:, 4] * p[:, 5])
    return ~moved & (sig >= 5.0) & (width >= 0.5 * config.sigma)


def refit_crowded(
    shape, coords, boxes, res, config: SpotsConfig, fit, rvar: float, rounds: int = 2
) -> np.ndarray:
    """Refit spots whose box holds a neighbour, with the neighbours' fitted models subtracted
    (``rounds`` times, each with the previous round's neighbours).

    A candidate whose fit moved more than 1 px (it slid onto a brighter neighbour) is refitted
    too, and its fit is not used as anybody's neighbour. Updates ``res`` in place and returns
    the boxes the final fits saw (for the residual statistics).
    """
    from scipy.spatial import cKDTree

    half = config.box // 2
    reach = half + int(np.ceil(3 * config.sigma))
    pairs = cKDTree(coords).query_pairs(reach, output_type="ndarray")
    crowded = np.zeros(len(coords), bool)
    crowded[pairs.ravel()] = True
    cleaned = boxes.copy()
    # a first guess for fits that slid away (two spots taken for one): a spot of the PSF's
    # width on the candidate pixel, with the photons of its peak pixel
    c = half
    peak = boxes[:, c, c] - np.minimum(res.params[:, 3], boxes[:, c, c])
    e0 = 0.5 * (erf(0.5 / (np.sqrt(2) * config.sigma)) - erf(-0.5 / (np.sqrt(2) * config.sigma)))
    guess = np.column_stack(
        [
            np.full(len(coords), float(c)),
            np.full(len(coords), float(c)),
            peak / e0**2,
            np.zeros(len(coords)),
            np.full(len(coords), config.sigma),
            np.full(len(coords), config.sigma),
        ]
    )
    for _ in range(rounds):
        p = res.params
        use = _trusted(res, cleaned, config, rvar)
        moved = ~use
        redo = moved | crowded
        if not redo.any():
            break
        q = np.where((moved & crowded)[:, None], guess, p)
        model = use | (moved & crowded)
        spots = np.zeros(shape)
        render_spots(
            spots,
            coords[model] - half + q[model][:, [1, 0]],
            q[model][:, 2],
            q[model][:, 4],
            q[model][:, 5],
        )
        idx = np.flatnonzero(redo)
        own = model_boxes(np.column_stack([q[idx, :3], np.zeros(len(idx)), q[idx, 4:]]), config.box)
        own[~model[idx]] = 0.0
        cleaned[idx] = boxes[idx] - (extract_boxes(spots, coords[idx], config.box) - own)
        res2 = fit(cleaned[idx])
        for name in FIT_FIELDS:
            getattr(res, name)[idx] = getattr(res2, name)
        guess[idx] = np.where(
            _trusted(res, cleaned, config, rvar)[idx, None], res.params[idx], guess[idx]
        )
    return cleaned


def render_spots(
    image: np.ndarray, yx: np.ndarray, photons: np.ndarray, sx: np.ndarray, sy: np.ndarray
) -> None:
    """Add pixel-integrated Gaussians (no background) to ``image`` in place."""
    rows, cols = image.shape
    for (y, x), n, a, b in zip(yx, photons, sx, sy):
        ra = int(np.ceil(4 * b)) + 1
        ca = int(np.ceil(4 * a)) + 1
        r0, r1 = max(int(y) - ra, 0), min(int(y) + ra + 1, rows)
        c0, c1 = max(int(x) - ca, 0), min(int(x) + ca + 1, cols)
        if r0 >= r1 or c0 >= c1:
            continue
        rr = np.arange(r0, r1)
        cc = np.arange(c0, c1)
        ey = 0.5 * (erf((rr - y + 0.5) / (np.sqrt(2) * b)) - erf((rr - y - 0.5) / (np.sqrt(2) * b)))
        ex = 0.5 * (erf((cc - x + 0.5) / (np.sqrt(2) * a)) - erf((cc - x - 0.5) / (np.sqrt(2) * a)))
        image[r0:r1, c0:c1] += n * np.outer(ey, ex)


def fit_significance(boxes: np.ndarray, res, read_var: float, method: str) -> np.ndarray:
    """The likelihood-ratio significance (:func:`significance`) of each fit.

    The likelihood ratio needs the maximum of the likelihood. An MLE fit is at it; a
    least-squares fit (data-weighted, so its photons and background are biased) is not, and
    the ratio at the LSQ estimate would drop dim spots that the MLE keeps. For LSQ the
    likelihood is therefore maximised over photons and background with the fitted position
    and width held (a concave problem: Newton steps, :func:`profile_loglik`)."""
    if method != "lsq":
        return significance(boxes, res.loglik, read_var)
    return significance(boxes, profile_loglik(boxes, res.params, read_var), read_var)


def profile_loglik(
    boxes: np.ndarray,
    params: np.ndarray,
    read_var: float,
    *,
    iterations: int = 8,
    return_params: bool = False,
):
    """Poisson + read-noise log-likelihood (the fit's, same dropped constant) maximised over
    photons ``N`` and background ``b`` for the given positions and widths in ``params``.

    The model ``mu = N * psf + b`` is linear in ``(N, b)`` and the log-likelihood concave in
    them, so a few Newton steps from the given values converge. With ``return_params`` also
    the ``(n, 2)`` maximising ``(N, b)`` (photoelectrons)."""
    n = len(boxes)
    box = boxes.shape[-1]
    if n == 0:
        return (np.empty(0), np.empty((0, 2))) if return_params else np.empty(0)
    d = np.maximum(boxes.reshape(n, -1) + read_var, 0.0)
    unit = np.asarray(params, float).copy()
    unit[:, 2], unit[:, 3] = 1.0, 0.0
    psf = model_boxes(unit, box).reshape(n, -1)
    nb = np.column_stack([np.maximum(params[:, 2], 1e-3), params[:, 3] + read_var])
    floor = 1e-6
    nb[:, 1] = np.maximum(nb[:, 1], floor)
    for _ in range(iterations):
        mu = np.maximum(nb[:, :1] * psf + nb[:, 1:], 1e-9)
        r = d / mu - 1.0
        g = np.column_stack([(r * psf).sum(1), r.sum(1)])
        q = d / mu**2
        h11, h12, h22 = (q * psf * psf).sum(1), (q * psf).sum(1), q.sum(1)
        det = np.maximum(h11 * h22 - h12 * h12, 1e-12)
        step = np.column_stack([h22 * g[:, 0] - h12 * g[:, 1], h11 * g[:, 1] - h12 * g[:, 0]])
        step /= det[:, None]
        nb = nb + step
        nb[:, 0] = np.maximum(nb[:, 0], 0.0)
        nb[:, 1] = np.maximum(nb[:, 1], floor)
    mu = np.maximum(nb[:, :1] * psf + nb[:, 1:], 1e-9)
    ll = np.sum(d * np.log(mu) - mu, axis=1)
    if return_params:
        nb[:, 1] -= read_var
        return ll, nb
    return ll


def box_significance(
    boxes: np.ndarray, xy: np.ndarray, sigma: float, read_var: float
) -> tuple[np.ndarray, np.ndarray]:
    """Significance (:func:`significance`) of a spot of width ``sigma`` centred at ``xy``
    (``(n, 2)`` x, y in box pixels) in each box (photoelectrons), without a fit.

    For positions that do not come from a fit (the ML centroids): the Poisson + read-noise
    likelihood of the spot, maximised over its photons and background only
    (:func:`profile_loglik`, the generalised likelihood-ratio test of a known-shape source,
    Smith et al. 2010 Nat. Methods 7:373; Huang et al. 2013), against a flat background.
    Returns the significance and the ``(n, 2)`` photons and background."""
    n = len(boxes)
    flat = boxes.reshape(n, -1)
    bg = np.median(flat, axis=1)
    params = np.column_stack(
        [xy, np.maximum((flat - bg[:, None]).sum(1), 1.0), bg, np.full((n, 2), float(sigma))]
    )
    ll, nb = profile_loglik(boxes, params, read_var, return_params=True)
    return significance(boxes, ll, read_var), nb


def significance(boxes: np.ndarray, loglik: np.ndarray, read_var: float) -> np.ndarray:
    """``sqrt(2 * log-likelihood ratio)`` of the spot fit against a flat background.

    Under the Poisson + read-noise model of the MLE; a z-like score that does not depend on
    the camera's units, so one default threshold serves every data set.
    """
    n = len(boxes)
    dp = np.maximum(boxes.reshape(n, -1) + read_var, 0.0)
    b = np.maximum(dp.mean(1, keepdims=True), 1e-9)
    ll_bg = np.sum(dp * np.log(b) - b, axis=1)  # same data-only constant dropped as the fit
    return np.sqrt(np.maximum(2 * (np.asarray(loglik) - ll_bg), 0.0))


def drop_duplicates(table: pd.DataFrame, distance: float) -> pd.DataFrame:
    """Keep one of two fits closer than ``distance`` px in the same plane (the more significant)."""
    if len(table) < 2 or distance <= 0:
        return table
    from scipy.spatial import cKDTree

    key = table["frame"].to_numpy() * 1_000_003 + table["z"].to_numpy()
    pts = np.column_stack([table["y"].to_numpy(), table["x"].to_numpy(), key * 1e4])
    pairs = cKDTree(pts).query_pairs(distance, output_type="ndarray")
    if len(pairs) == 0:
        return table
    sig = table["significance"].to_numpy()
    drop = np.zeros(len(table), bool)
    for a, b in pairs[np.argsort(-np.maximum(sig[pairs[:, 0]], sig[pairs[:, 1]]))]:
        if drop[a] or drop[b]:
            continue
        drop[b if sig[a] >= sig[b] else a] = True
    return table[~drop].reset_index(drop=True)


def model_boxes(params: np.ndarray, box: int) -> np.ndarray:
    """Expected photoelectrons ``(n, box, box)`` for fitted ``params`` (x, y, N, bg, sx, sy)."""
    params = np.asarray(params, float).reshape(-1, 6)
    g = np.arange(box)[None, :]
    sx = np.sqrt(2) * params[:, 4:5]
    sy = np.sqrt(2) * params[:, 5:6]
    ex = 0.5 * (erf((g - params[:, 0:1] + 0.5) / sx) - erf((g - params[:, 0:1] - 0.5) / sx))
    ey = 0.5 * (erf((g - params[:, 1:2] + 0.5) / sy) - erf((g - params[:, 1:2] - 0.5) / sy))
    return params[:, 2, None, None] * ey[:, :, None] * ex[:, None, :] + params[:, 3, None, None]
