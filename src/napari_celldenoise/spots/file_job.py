"""Spots from an image file to a spot table: detect, fit (or localise with a centroid model),
classify, optionally train a centroid model, write the CSV with its provenance.

:func:`run_spots_spec` is what ``celldenoise spots`` runs and what a :class:`SpotsSpec`
recorded by the Spots dock replays.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..jobs import Done, Event, ShouldStop, never_stop
from ..jobs.compose import forward
from ..jobs.specs import CentroidTraining, SpecError, SpotsSpec
from .config import SpotsConfig

if TYPE_CHECKING:
    from .drift import Drift

_UNIT_NM = {"nm": 1.0, "µm": 1000.0, "um": 1000.0, "mm": 1e6}


@dataclass(frozen=True, eq=False)
class SpotsResult:
    """The table written, and what the run reports beside it.

    Attributes
    ----------
    output, table
        The CSV written and the table (pipeline columns, px).
    pixel_size
        nm per pixel used for the CSV.
    ignored_pixel_size
        The image's pixel size (nm) when it was implausible and 100 nm was used instead.
    centroid_line
        The trained centroid model's report, when one was trained.
    drift, smlm_lines
        The drift subtracted (nm per frame), and the report of the drift correction and
        merging, when the spec asked for them.
    """

    output: str
    table: pd.DataFrame
    pixel_size: float
    ignored_pixel_size: float | None = None
    centroid_line: str | None = None
    drift: Drift | None = None
    smlm_lines: tuple[str, ...] = ()

    @property
    def n_good(self) -> int:
        return int((self.table["class"] == "good").sum()) if len(self.table) else 0


def image_pixel_size(image) -> tuple[float | None, float | None]:
    """``(nm, ignored)``: nm per pixel from the image's X scale, or None without a length unit
    or for an implausible value (some TIFF writers store a resolution that makes pixels
    picometres wide), then returned as ``ignored``."""
    factor = _UNIT_NM.get(image.units.get("X", "pixel"))
    if factor is None:
        return None, None
    nm = float(image.scale.get("X", 1.0)) * factor
    if not 1.0 <= nm <= 100_000.0:
        return None, nm
    return nm, None


def frames_of(image, channel: int) -> tuple[np.ndarray, str]:
    """The camera frames of ``image``: one channel of a multichannel image, RGB refused."""
    data, axes = image.data, image.axes
    if "S" in axes:
        raise SpecError(f"{image.path}: RGB images are not camera frames; give one channel")
    if "C" in axes:
        n = data.shape[axes.index("C")]
        if not 0 <= channel < n:
            raise SpecError(f"channel {channel}: the image has {n} channels", option="channel")
        data = np.take(data, channel, axis=axes.index("C"))
        axes = axes.replace("C", "")
    return data, axes


def run_spots_spec(spec: SpotsSpec, *, should_stop: ShouldStop = never_stop) -> Iterator[Event]:
    """Run ``spec``; yields progress, ``Done(SpotsResult)`` last (nothing written if stopped).

    Raises
    ------
    SpecError
        For frames smaller than the fit box, a bad threshold expression, a centroid model or
        classifier that cannot be used; :class:`~..io.errors.ImageReadError` for a bad file.
    """
    from ..io import read_image
    from ..io.locs import write_localizations
    from ..jobs.provenance import provenance_for
    from .expr import ExpressionError
    from .pipeline import find_spots
    from .zmerge import merged_in_z

    source = spec.input.path
    image = read_image(source, config=spec.input.reader())
    stack, axes = frames_of(image, spec.input.channel or 0)
    from_image, ignored = (None, None) if spec.pixel_size else image_pixel_size(image)
    pixel_size = spec.pixel_size or from_image or 100.0
    config = spec.config.model_copy(update={"pixel_size": pixel_size})
    if min(stack.shape[-2:]) < config.box:
        raise SpecError(
            f"{source}: frames of {stack.shape[-2]}x{stack.shape[-1]} px are "
            f"smaller than the {config.box}x{config.box} fit box"
        )
    model = _load_centroid(spec.centroid)
    try:
        if model is not None:
            from .centroid import locate_with_model

            job = locate_with_model(stack, model, config, axes=axes, should_stop=should_stop)
        else:
            job = find_spots(stack, config, axes=axes, should_stop=should_stop)
        if config.merge_z and "Z" in axes:  # as the Spots dock: one row per emitter
            job = merged_in_z(job, distance=config.merge_distance)
        done = yield from forward(job)
    except ExpressionError as exc:
        raise SpecError(str(exc)) from None
    if done.stopped:
        yield Done(None, stopped=True)
        return
    table = done.result
    line = None
    lines: tuple[str, ...] = ()
    if spec.train_centroid is not None:
        line = yield from _train_centroid(spec.train_centroid, stack, axes, table, config)
        if line is None:
            raise SpecError(
                "train-centroid: training stopped before a model was made", option="train_centroid"
            )
    if spec.classify:  # otherwise the pipeline's rules (around the PSF the data show) stand
        from .classify import apply_classifier

        try:
            table = apply_classifier(table, spec.classify, frames=stack, box=config.box, axes=axes)
        except (ValueError, OSError, KeyError) as exc:
            raise SpecError(f"classify: {exc}", option="classify") from None
    drift = None
    if spec.smlm is not None:
        table, drift, lines = yield from _smlm_steps(spec, table, stack, axes, should_stop)
        if table is None:
            yield Done(None, stopped=True)
            return
    write_localizations(  # CSV, or Picasso's HDF5 for an output named .hdf5
        spec.output,
        table,
        pixel_size=pixel_size,
        overwrite=spec.overwrite,
        provenance=provenance_for(spec, source),
        frame_shape=stack.shape[-2:],
        n_frames=stack.shape[axes.index("T")] if "T" in axes else 1,
    )
    yield Done(SpotsResult(spec.output, table, pixel_size, ignored, line, drift, lines))


def _smlm_steps(spec: SpotsSpec, table, stack, axes: str, should_stop) -> Iterator[Event]:
    """Drift correction and merging (``spec.smlm``); returns ``(table, drift, lines)``, the
    table None when stopped."""
    from .drift import DriftError
    from .smlm_steps import drift_and_merge

    n_frames = stack.shape[axes.index("T")] if "T" in axes else 1
    try:
        outcome = yield from drift_and_merge(
            table, spec.smlm, n_frames=n_frames, should_stop=should_stop
        )
    except DriftError as exc:
        raise SpecError(f"drift: {exc}", option="drift") from None
    if outcome.stopped:
        return None, None, ()
    return outcome.table, outcome.drift, outcome.lines


def _load_centroid(path: str | None):
    if not path:
        return None
    from pathlib import Path

    from .centroid import CentroidModel

    if not Path(path).is_file():
        raise SpecError(f"{path}: no such centroid model")
    try:
        return CentroidModel.load(path)
    except ValueError as exc:
        raise SpecError(str(exc)) from None


def _train_centroid(
    training: CentroidTraining, stack, axes: str, table, config: SpotsConfig
) -> Iterator[Event]:
    """Train, save and report the centroid model; returns the report line (None: stopped)."""
    from .centroid import (
        centroid_report,
        train_centroid,
        training_set_from_spots,
        training_set_simulated,
    )

    fitted = training_set_from_spots(stack, table, config.box, axes) if len(table) else None
    if training.source == "fit":
        boxes, offsets = fitted if fitted is not None else (np.empty((0,)), np.empty((0, 2)))
        against = "the fit"
    else:
        boxes, offsets = training_set_simulated(
            20000, config.box, sigma=config.sigma, camera=config.camera
        )
        against = "the simulated truth"
    options = {"epochs": training.epochs} if training.kind == "mlp" else {}
    try:
        done = yield from forward(train_centroid(boxes, offsets, kind=training.kind, **options))
    except ValueError as exc:
        raise SpecError(f"train-centroid: {exc}", option="train_centroid") from None
    model = None if done.stopped else done.result
    if model is None:
        return None
    i = model.info
    line = (
        f"centroid {model.kind} ({i['n_train']} {training.source} spots): std "
        f"{i['std_x']:.3f} / {i['std_y']:.3f} px (x / y) against {against} on {i['n']} held-out"
        f" spots, {i['per_second']:,.0f} predictions/s"
    )
    if training.source == "simulated" and fitted is not None and len(fitted[0]) >= 5:
        r = centroid_report(model, *fitted)
        line += f"; against this run's {r['n']} good fits {r['std_x']:.3f} / {r['std_y']:.3f} px"
    model.save(training.output)
    return f"{line} -> {training.output}"


__all__ = ["SpotsResult", "frames_of", "image_pixel_size", "run_spots_spec"]
