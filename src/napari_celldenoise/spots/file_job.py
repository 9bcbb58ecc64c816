"""Spots from an image file to a spot table: detect, fit (or localise with a centroid model),
classify, optionally train a centroid model, write the CSV with its provenance.

:func:`run_spots_spec` is what ``celldenoise spots`` runs and what a :class:`SpotsSpec`
recorded by the Spots dock replays.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..jobs import Done, Event, Log, Progress, ShouldStop, never_stop
from ..jobs.compose import forward
from ..jobs.specs import CentroidTraining, SpecError, SpotsSpec
from .config import SpotsConfig

if TYPE_CHECKING:
    from .drift import Drift

_UNIT_NM = {"nm": 1.0, "µm": 1000.0, "um": 1000.0, "mm": 1e6}


@dataclass(frozen=True)
class TableFacts:
    """What a run reports of its table without holding it: counts, median uncertainty (px)
    and the table's ``attrs``."""

    n_spots: int = 0
    n_good: int = 0
    median_uncertainty: float | None = None
    attrs: dict = field(default_factory=dict, hash=False)

    @classmethod
    def of(cls, table: pd.DataFrame) -> TableFacts:
        tally = FactsTally()
        tally.add(table)
        return tally.facts()


class FactsTally:
    """:class:`TableFacts` of tables added one by one (the parts of a streamed run): keeps
    counts and the uncertainties, not the rows."""

    def __init__(self) -> None:
        self.n = self.good = 0
        self.uncertainties: list[np.ndarray] = []
        self.attrs: dict = {}

    def add(self, table: pd.DataFrame) -> None:
        self.n += len(table)
        if len(table) and "class" in table:
            self.good += int((table["class"] == "good").sum())
        if "uncertainty" in table:
            values = table["uncertainty"].to_numpy(dtype=float)
            self.uncertainties.append(values[np.isfinite(values)])
        self.attrs = dict(table.attrs)

    def facts(self) -> TableFacts:
        values = np.concatenate(self.uncertainties) if self.uncertainties else np.empty(0)
        median = float(np.median(values)) if values.size else None
        return TableFacts(self.n, self.good, median, self.attrs)

    def passing(self, tables):
        """``tables`` as they pass, each added."""
        for table in tables:
            self.add(table)
            yield table


@dataclass(frozen=True, eq=False)
class SpotsResult:
    """The table written, and what the run reports beside it.

    Attributes
    ----------
    output, table
        The CSV written and the table (pipeline columns, px); ``table`` is None when the
        run streamed its localizations to the CSV part by part (a long movie):
        :meth:`read_table` reads it back.
    pixel_size
        nm per pixel used for the CSV.
    ignored_pixel_size
        The image's pixel size (nm) when it was implausible and 100 nm was used instead.
    centroid_line
        The trained centroid model's report, when one was trained.
    drift, smlm_lines
        The drift subtracted (nm per frame), and the report of the drift correction and
        merging, when the spec asked for them.
    facts
        Counts and the median uncertainty of the table (see :class:`TableFacts`).
    """

    output: str
    table: pd.DataFrame | None
    pixel_size: float
    ignored_pixel_size: float | None = None
    centroid_line: str | None = None
    drift: Drift | None = None
    smlm_lines: tuple[str, ...] = ()
    facts: TableFacts | None = None

    def __post_init__(self) -> None:
        if self.facts is None:
            table = self.table if self.table is not None else pd.DataFrame()
            object.__setattr__(self, "facts", TableFacts.of(table))

    @property
    def n_spots(self) -> int:
        return self.facts.n_spots

    @property
    def n_good(self) -> int:
        return self.facts.n_good

    def read_table(self) -> pd.DataFrame:
        """The table: the one in memory, else the CSV written."""
        if self.table is not None:
            return self.table
        from ..io.spots_csv import read_spots_csv

        return read_spots_csv(self.output, pixel_size=self.pixel_size)


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


def _offset_warning(stack, offset: float) -> str:
    """What is wrong with the camera offset for the first frame ("" when it fits): the CLI
    and a batch log say it, as the Spots dock shows it beside its camera fields."""
    from .camera import check_offset

    first = np.asarray(stack[(0,) * (stack.ndim - 2)], dtype=np.float64)  # one frame, lazily
    message = check_offset(first, offset).message
    return f"{message} (set the camera offset)" if message else ""


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
    from .pipeline import find_spots, plane_indices
    from .stream import SERIAL_BELOW, find_spots_streamed
    from .zmerge import merged_in_z

    source = spec.input.path
    plain_fit = spec.centroid is None and spec.train_centroid is None
    # a movie above the reader's lazy limit opens lazily; a plain fit then reads it a chunk at
    # a time (spots.stream), so it never has to fit in memory
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
    offset = _offset_warning(stack, config.offset)
    if offset:
        yield Log(offset, level="warning")
    model = _load_centroid(spec.centroid)
    from ..io.picasso_hdf5 import is_picasso_path

    plain_fit = plain_fit and not (config.merge_z and "Z" in axes)
    if plain_fit and spec.smlm is None and not is_picasso_path(spec.output):
        # frames stream through the workers, the table to the CSV part by part
        yield from _run_streamed(spec, stack, axes, config, ignored, should_stop)
        return
    # drift, merging or an HDF5 need the whole table: then only the fit streams
    long = plain_fit and len(plane_indices(tuple(stack.shape))) >= SERIAL_BELOW
    find = find_spots_streamed if long else find_spots
    try:
        if model is not None:
            from .centroid import locate_with_model

            job = locate_with_model(stack, model, config, axes=axes, should_stop=should_stop)
        else:
            job = find(stack, config, axes=axes, should_stop=should_stop)
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
        table = _classified(table, _load_classifier(spec.classify), stack, config, axes)
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


FULL_DISK = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
"""Write errors of a full disk or a file size limit."""


def _run_streamed(
    spec: SpotsSpec, stack, axes: str, config: SpotsConfig, ignored, should_stop: ShouldStop
) -> Iterator[Event]:
    """Fit in chunks into parts beside the output, then write the CSV part by part (each
    part classified as the whole table would be); a stop or an error leaves no file."""
    from ..io.spots_csv import write_spots_csv_parts
    from ..jobs.provenance import provenance_for
    from .expr import ExpressionError
    from .stream import PartStore, stream_spots, streamed_tables

    classifier = _load_classifier(spec.classify)
    try:
        store = PartStore.beside(spec.output)
    except OSError as exc:
        raise SpecError(f"{spec.output}: cannot write beside it ({exc})", option="output") from None
    with store:
        try:
            done = yield from forward(
                stream_spots(stack, config, store, axes=axes, should_stop=should_stop)
            )
        except ExpressionError as exc:
            raise SpecError(str(exc)) from None
        except OSError as exc:  # the parts lie beside the output: a full disk is the output's
            if exc.errno not in FULL_DISK:
                raise
            raise OSError(exc.errno, exc.strerror, spec.output) from None
        if done.stopped:
            yield Done(None, stopped=True)
            return
        streamed = done.result
        parts = streamed_tables(streamed, config)
        if classifier is not None:
            parts = (_classified(t, classifier, stack, config, axes) for t in parts)
        tally = FactsTally()
        yield Progress(0, 0, f"writing {streamed.n_spots:,} spots to {spec.output}")
        write_spots_csv_parts(
            spec.output,
            tally.passing(parts),
            pixel_size=config.pixel_size,
            overwrite=spec.overwrite,
            provenance=provenance_for(spec, spec.input.path),
        )
    result = SpotsResult(spec.output, None, config.pixel_size, ignored, facts=tally.facts())
    yield Done(result)


def _load_classifier(source: str | None):
    """The ``--classify`` rules or classifier, opened once (None: the default rules)."""
    if not source:
        return None
    from .classify import load_classifier

    try:
        return load_classifier(source)
    except (ValueError, OSError, KeyError) as exc:
        raise SpecError(f"classify: {exc}", option="classify") from None


def _classified(table: pd.DataFrame, classifier, stack, config: SpotsConfig, axes: str):
    from .classify import apply_classifier

    try:
        out = apply_classifier(table, classifier, frames=stack, box=config.box, axes=axes)
    except (ValueError, OSError, KeyError) as exc:
        raise SpecError(f"classify: {exc}", option="classify") from None
    out.attrs = dict(table.attrs)
    return out


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


__all__ = [
    "FactsTally",
    "SpotsResult",
    "TableFacts",
    "frames_of",
    "image_pixel_size",
    "run_spots_spec",
]
