"""The whole spot pipeline over single frames, time stacks and Z stacks.

:func:`find_spots` is a job generator (``Progress`` per frame, ``Done(table)`` last) so that the
dock runs it in a worker with Cancel and the CLI drains it; :func:`locate` is the plain function.
Per frame, candidates are detected (:mod:`.detect`), fitted (:mod:`.fit`, with the crowded-spot
refits of :mod:`.refit`), scored (:mod:`.significance`) and classified (:mod:`.classify`); the
result is a table in the columns of :mod:`.table`, one row per fitted spot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd

from ..jobs import Done, Event, Log, Progress, ShouldStop, never_stop
from ..jobs import run as run_job
from .classify import default_rules
from .config import SpotsConfig
from .detect import detect_frame
from .fit import extract_boxes, read_variance, to_photoelectrons
from .psf import model_boxes
from .refit import fit_frame
from .significance import fit_significance
from .table import COLUMNS, column_dtype, drop_duplicates, empty_table

logger = logging.getLogger(__name__)


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
    axes = check_stack(shape, config, axes, detect_on)
    planes = plane_indices(shape)
    rvar = read_variance(config.camera)
    parts: list[pd.DataFrame] = []
    t0 = time.perf_counter()
    stopped = False
    n = 0
    for k, index in enumerate(planes):
        if should_stop():
            stopped = True
            break
        other = None if detect_on is None else detect_on[index]
        part = locate_plane(stack[index], index, axes, config, detect_on=other, read_var=rvar)
        parts.append(part)
        n += len(part)
        yield Progress(k + 1, len(planes), f"plane {k + 1}/{len(planes)}: {n} spots")
    candidates = candidates_of(parts)
    table = pd.concat(parts, ignore_index=True) if parts else empty_table()
    table = finish_table(table, config, axes)
    dt = time.perf_counter() - t0
    yield Log(f"{len(table)} spots in {len(parts)} planes ({dt:.2f} s)")
    warning = flood_warning(candidates, len(table), len(parts), config)
    if warning is not None:
        yield warning
    yield Done(table, stopped=stopped)


FLOOD_PER_PLANE = 1000
"""Candidates a plane above which a run may be flooded (a 512 x 512 camera frame of
diffraction-limited spots rarely holds more than a few hundred)."""

FLOOD_RATIO = 50
"""Candidates per kept spot above which the threshold, not the sample, made the candidates."""


def candidates_of(tables) -> int:
    """The candidates that passed the threshold in the planes of ``tables`` (each table's
    ``attrs["candidates"]``, set by :func:`locate_frame`)."""
    return sum(int(t.attrs.get("candidates", 0)) for t in tables)


def flood_warning(candidates: int, spots: int, planes: int, config: SpotsConfig) -> Log | None:
    """A warning when the threshold let through far more candidates than spots survived
    their fits, else None.

    The wavelet default (``0.7*localnoise(Wave.F1)``) scales with the noise of the first
    wavelet plane, which a camera frame has and a smoothed or denoised image mostly lost: the
    threshold then falls far below the detection plane's noise, every noise bump becomes a
    candidate and the fits take ~40x longer for a table of false spots that passed by chance.
    """
    if planes <= 0 or candidates < FLOOD_PER_PLANE * planes:
        return None
    if candidates < FLOOD_RATIO * max(spots, 1):
        return None
    return Log(
        f"spots: {candidates / planes:,.0f} candidates a plane passed the threshold "
        f"{config.threshold!r} and {spots / planes:,.1f} spots a plane were kept: the threshold "
        "is far below this image's noise (a smoothed or denoised image has lost the noise the "
        "wavelet default scales with). Set a threshold on the detection plane, e.g. "
        "'3*noise(F)', and check the spots found.",
        level="warning",
    )


def check_stack(shape: tuple[int, ...], config: SpotsConfig, axes: str | None, detect_on) -> str:
    """The axes of a stack of ``shape`` (see :func:`plane_axes`); ValueError for a detection
    image of another shape or frames smaller than the fit box."""
    axes = plane_axes(shape, axes)
    if detect_on is not None and tuple(detect_on.shape) != shape:
        raise ValueError(f"detection image shape {tuple(detect_on.shape)} != stack shape {shape}")
    if min(shape[-2:]) < config.box:
        raise ValueError(
            f"frames of {shape[-2]}x{shape[-1]} px are smaller than the "
            f"{config.box}x{config.box} fit box"
        )
    return axes


def plane_indices(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The index of every 2D plane of a stack of ``shape``, in order (``[()]`` for a frame)."""
    lead = shape[:-2]
    return list(np.ndindex(*lead)) if lead else [()]


def locate_plane(
    plane,
    index: tuple[int, ...],
    axes: str,
    config: SpotsConfig,
    *,
    detect_on=None,
    read_var: float | None = None,
) -> pd.DataFrame:
    """:func:`locate_frame` of the plane at ``index`` (of the lead ``axes``), its ``frame``
    and ``z`` columns set."""
    other = None if detect_on is None else np.asarray(detect_on)
    part = locate_frame(np.asarray(plane), config, detect_on=other, read_var=read_var)
    labels = dict(zip(axes[:-2], index))
    part["frame"] = int(labels.get("T", 0))
    part["z"] = int(labels.get("Z", 0))
    return part


def finish_table(table: pd.DataFrame, config: SpotsConfig, axes: str) -> pd.DataFrame:
    """The whole run's table: columns in order, classes by the default rules around the PSF
    width the data show, ``attrs`` (``pixel_size``, ``axes``, ``psf_sigma``)."""
    table = table[COLUMNS]
    psf = None
    if classifies(config) and len(table):
        psf = psf_sigma(table, config.sigma)
    return classify_part(table, config, axes, psf)


def classifies(config: SpotsConfig) -> bool:
    """Whether a run with ``config`` sets ``class`` with the default rules."""
    return config.classify and config.fit != "none"


def classify_part(
    table: pd.DataFrame, config: SpotsConfig, axes: str, psf: float | None
) -> pd.DataFrame:
    """``table`` (a whole run or a part of one) classified by the default rules around
    ``psf`` (None: left as it is), with the run's ``attrs``."""
    if psf is not None and len(table):
        table["class"] = default_rules(psf).classify(table)
        table.attrs["psf_sigma"] = psf
    table.attrs["pixel_size"] = float(config.pixel_size)
    table.attrs["axes"] = axes
    return table


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
        return empty_table(config.pixel_size)
    candidates = len(coords)
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
            if c not in out and column_dtype(c) == "float64" and c != "peak":
                out[c] = np.full(n, np.nan)
        out["iterations"] = np.zeros(n, int)
        out["converged"] = np.ones(n, bool)
    else:
        coords, res, boxes = fit_frame(frame, electrons, coords, config, rvar, thr)
        n = len(coords)
        if n and coords.shape[0] != len(peak):  # the refits changed the candidates
            peak = filtered[coords[:, 0], coords[:, 1]]
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
    table.attrs["candidates"] = candidates
    return table


def psf_sigma(table: pd.DataFrame, default: float, *, min_spots: int = 10) -> float:
    """The PSF width the data show: the median sigma of the clearly significant fits
    (significance >= 8), or ``default`` when there are fewer than ``min_spots`` of them."""
    return psf_from_sure(sure_sigmas(table), default, min_spots=min_spots)


def sure_sigmas(table: pd.DataFrame) -> np.ndarray:
    """The sigmas of the clearly significant fits (significance >= 8) of ``table``."""
    sure = table["significance"].to_numpy() >= 8
    return table["sigma"].to_numpy()[sure]


def psf_from_sure(sigmas: np.ndarray, default: float, *, min_spots: int = 10) -> float:
    """The median of ``sigmas`` (see :func:`sure_sigmas`), ``default`` for fewer than
    ``min_spots``."""
    if len(sigmas) < min_spots:
        return float(default)
    return float(np.median(sigmas))
