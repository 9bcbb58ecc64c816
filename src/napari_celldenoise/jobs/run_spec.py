"""``run_spec``: execute any job spec as a generator of events.

One entry point for the CLI, the docks, the remote worker and batch runs. Where a job runs is
decided by :mod:`.placement`: training and prediction (TensorFlow) go to a spawned child when
this process may hold a napari viewer, and run here otherwise (the command line); specs pickle
and :func:`run_spec_here` is a module-level generator function, so any spec can cross.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

from .events import Done, Event, ShouldStop, never_stop
from .placement import kinds_of, place, require_extra
from .specs import AnySpec, ReadSpec

RUNNERS: dict[str, str] = {
    "read": ".run_spec:run_read_spec",
    "filter": "..classical.file_job:run_filter_spec",
    "add-noise": "..classical.noise_job:run_add_noise_spec",
    "train": "..deep.file_job:run_train_spec",
    "predict": "..deep.file_job:run_predict_spec",
    "spots": "..spots.file_job:run_spots_spec",
    "export": "..deep.file_job:run_export_spec",
}
"""Job kind -> ``module:function`` of its runner (imported when a spec of that kind runs, so
that TensorFlow and the spot fitter load only for the jobs that need them). A new kind is a
spec class in :mod:`.specs` and one entry here."""


def run_spec(spec: AnySpec, should_stop: ShouldStop = never_stop) -> Iterator[Event]:
    """Run ``spec``; yields its events, ``Done`` (with the job's typed result) last.

    =========  ================================================  ==========================
    kind       runs                                              ``Done.result``
    =========  ================================================  ==========================
    read       :func:`run_read_spec`                             ``ImageData`` or the path
    filter     :func:`..classical.file_job.run_filter_spec`      ``FilterResult``
    add-noise  :func:`..classical.noise_job.run_add_noise_spec`  ``NoiseResult``
    train      :func:`..deep.file_job.run_train_spec`            the folder's ``ModelInfo``
    predict    :func:`..deep.file_job.run_predict_spec`          the output path
    spots      :func:`..spots.file_job.run_spots_spec`           ``SpotsResult``
    export     :func:`..deep.file_job.run_export_spec`           ``(path, report)``
    =========  ================================================  ==========================

    The job runs where :func:`.placement.runs_in_child` says for ``spec.kind``; an extra that
    it or one of its sub-jobs needs is checked first, before anything is read.
    """
    for kind in kinds_of(spec):
        require_extra(kind)
    yield from place(spec.kind, run_spec_here, spec, should_stop=should_stop)


def run_spec_here(spec: AnySpec, *, should_stop: ShouldStop = never_stop) -> Iterator[Event]:
    """Run ``spec`` in this process, whatever its kind."""
    module, name = RUNNERS[spec.kind].split(":")
    runner = getattr(importlib.import_module(module, __package__), name)
    yield from runner(spec, should_stop=should_stop)


def run_read_spec(spec: ReadSpec, *, should_stop: ShouldStop = never_stop) -> Iterator[Event]:
    """Open ``spec.input``; with ``spec.output`` write it as OME-TIFF (with provenance)."""
    image = spec.input.read()
    if spec.output is None:
        yield Done(image)
        return
    from ..io import write_ome_tiff
    from .provenance import provenance_for

    written = write_ome_tiff(
        spec.output,
        image,
        overwrite=spec.overwrite,
        inputs=[spec.input.path],
        provenance=provenance_for(spec, spec.input.path),
    )
    yield Done(written)


__all__ = ["RUNNERS", "run_read_spec", "run_spec", "run_spec_here"]
