"""Deep denoising from files: train a model folder on an image, denoise an image into an
OME-TIFF, export a model folder; the bodies of ``celldenoise train``, ``predict`` and ``export``.

These run in the calling process. TensorFlow is imported only when a job runs; a caller that
has a napari viewer runs them in a child, as ``run_in_process(run_spec, spec)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import scratch_folder
from ..io import ImageData
from ..jobs import Done, Event, ShouldStop, never_stop
from ..jobs.compose import forward
from ..jobs.specs import ExportSpec, InputSpec, PredictSpec, SpecError, TrainSpec


def read_input(source: InputSpec) -> ImageData:
    """Open an image the networks can take: one channel (RGB and several channels refused)."""
    image = source.read()
    path, axes = source.path, source.axes
    if "S" in image.axes:
        raise SpecError(f"{path}: RGB images are not supported; convert to one channel")
    if "C" in image.axes and image.shape[image.axes.index("C")] > 1:
        count = image.shape[image.axes.index("C")]
        hint = (
            "give --axes (e.g. ZYX or TYX) if they are planes or frames, or save one channel"
            if not axes
            else "save one channel"
        )
        raise SpecError(
            f"{path}: read as {count} channels (axes {image.axes}); the networks denoise one "
            f"channel: {hint}"
        )
    return image


def strip_singleton_channel(image: ImageData) -> tuple[Any, str]:
    """``(data, axes)`` without a length-1 C axis (a view: lazy data stays lazy)."""
    if "C" in image.axes and image.shape[image.axes.index("C")] == 1:
        i = image.axes.index("C")
        return image.data[(slice(None),) * i + (0,)], image.axes.replace("C", "")
    return image.data, image.axes


def run_train_spec(
    spec: TrainSpec, *, should_stop: ShouldStop = never_stop, image: ImageData | None = None
) -> Iterator[Event]:
    """Train ``spec.config`` on ``spec.input`` into the model folder ``spec.output``.

    ``image`` is the input when the caller has opened it already (``read_input(spec.input)``);
    the images of ``spec.extra`` (a CycleGAN's reference) are read here.
    ``Done`` carries the folder's ``ModelInfo``; the folder keeps its config, best and last
    weights (see :func:`.api.train`).
    """
    from .api import train

    data, axes = strip_singleton_channel(image if image is not None else read_input(spec.input))
    extra = {name: strip_singleton_channel(read_input(src))[0] for name, src in spec.extra.items()}
    job = train(
        data, axes, spec.config, spec.output, resume=spec.resume, extra=extra,
        should_stop=should_stop,
    )  # fmt: skip
    yield from job


def run_predict_spec(spec: PredictSpec, *, should_stop: ShouldStop = never_stop) -> Iterator[Event]:
    """Denoise ``spec.input`` with the model folder ``spec.model`` into ``spec.output``.

    The OME-TIFF has the input's shape, axes, pixel size and intensity units and carries the
    spec. A lazy (big) input is predicted tile by tile into a memory-mapped file next to the
    output, then written plane by plane. ``Done`` carries the path written (None: stopped,
    nothing written).
    """
    from ..io import write_ome_tiff
    from ..jobs.provenance import provenance_for
    from .api import predict
    from .model import ModelFolder

    ModelFolder(spec.model).read_info()  # a bad model folder is refused before any reading
    image = read_input(spec.input)
    data, axes = strip_singleton_channel(image)
    lazy = image.lazy or hasattr(data, "dask")
    with scratch_folder(_parent(spec.output)) as tmp:
        # memory holds a tile window and a plane, not the stack
        store = str(tmp / "denoised.npy") if lazy else None
        done = yield from forward(
            predict(spec.model, data, axes, spec.config, out=store, should_stop=should_stop)
        )
        if done.stopped or done.result is None:
            yield Done(None, stopped=True)
            return
        result = done.result.open() if lazy else done.result
        if len(image.axes) != len(axes):  # the stripped length-1 channel axis
            result = np.expand_dims(result, image.axes.index("C"))
        written = write_ome_tiff(
            spec.output,
            image.with_data(result, lazy=lazy),
            overwrite=spec.overwrite,
            inputs=[spec.input.path],
            provenance=provenance_for(spec, spec.input.path),
        )
        del result
    yield Done(written)


def _parent(path: str) -> str | None:
    """A local output's folder (big temporary files go there), or None for gs://."""
    parent = Path(path).resolve().parent
    return str(parent) if "://" not in path and parent.is_dir() else None


def run_export_spec(spec: ExportSpec, *, should_stop: ShouldStop = never_stop) -> Iterator[Event]:
    """Package ``spec.model`` as a bioimage.io zip (see :func:`.export.export_and_check`)."""
    from .export import export_and_check

    kwargs: dict[str, Any] = {}
    if spec.test_image is not None:
        data, axes = strip_singleton_channel(read_input(spec.test_image))
        kwargs = {"image": data, "axes": axes}
    yield from export_and_check(
        spec.model,
        spec.output,
        check=spec.check,
        overwrite=spec.overwrite,
        name=spec.name,
        authors=tuple(spec.authors),
        should_stop=should_stop,
        **kwargs,
    )


__all__ = [
    "read_input",
    "run_export_spec",
    "run_predict_spec",
    "run_train_spec",
    "strip_singleton_channel",
]
