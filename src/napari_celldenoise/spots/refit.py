"""Fitting a frame's candidates where spots crowd: neighbours subtracted, broad fits split or
held at the PSF's width, and spots hidden by brighter neighbours found in the residual.

:func:`fit_frame` is the entry point (:func:`~.pipeline.locate_frame` calls it); the other
functions are its steps. Two-spot fits and their likelihood-ratio test follow multi-emitter
fitting (Huang et al. 2011, Biomed. Opt. Express 2:1377; Holden et al. 2011, Nat. Methods
8:279, DAOSTORM), in :mod:`.multifit`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from .config import SpotsConfig
from .detect import local_maxima
from .filters import apply_filter
from .fit import extract_boxes, fit_boxes
from .fit_memo import FitMemo
from .multifit import fit_emitters
from .psf import model_boxes, render_spots
from .significance import fit_significance

FIT_FIELDS = ("params", "crlb", "loglik", "chi2", "iterations", "converged")
"""The per-spot fields of a ``FitResult`` that a refit replaces."""

RESIDUAL_THRESHOLD = 2.0
"""The residual pass asks this much more than the first: fitted models are not perfect."""

RESIDUAL_EXCLUSION = 2.0
"""Residual maxima closer than this many sigma to a fitted spot are residue of its fit."""


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
            fitter=config.fitter,
        )

    if config.fitter == "cpu":  # a box fitted before is not fitted again (see .fit_memo)
        fit = FitMemo(fit)
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
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    out = [c for c in coords]
    replaced: set[int] = set()
    added: list[np.ndarray] = []
    for i in broad:
        cy, cx = np.rint(yx_all[i]).astype(int)
        if cy - big < 0 or cx - big < 0 or cy + big >= rows or cx + big >= cols:
            continue
        sl = (slice(cy - big, cy + big + 1), slice(cx - big, cx + big + 1))
        others = spots[sl]  # the trusted neighbours' models (its own taken out)
        if trusted[i]:
            own = np.zeros(electrons.shape)
            render_spots(own, yx_all[i : i + 1], p[i : i + 1, 2], p[i : i + 1, 4], p[i : i + 1, 5])
            others = others - own[sl]
        data = electrons[sl] - others

        y0, x0 = yx_all[i] - (cy, cx) + big
        bg = max(float(p[i, 3]), 0.0)
        n0 = float(p[i, 2])
        _, ll_one = fit_emitters(data, np.array([y0, x0, n0, bg]), 1, psf, rvar)
        # start the pair along the fit's long axis (second moments of the data)
        w = np.clip(data - bg, 0, None)
        tot = max(w.sum(), 1e-9)
        my, mx = (w * yy).sum() / tot, (w * xx).sum() / tot
        dy, dx = yy - my, xx - mx
        cyx = (w * dy * dx).sum()
        cov = np.array([[(w * dy**2).sum(), cyx], [cyx, (w * dx**2).sum()]]) / tot
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
    (significance >= 8, as :func:`~.pipeline.psf_sigma`), or ``config.sigma`` when fewer than
    ``min_spots``.

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
