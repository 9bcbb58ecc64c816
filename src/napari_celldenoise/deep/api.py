"""Entry points of deep denoising: :func:`train` and :func:`predict` job generators.

Both are module-level generator functions taking numpy (or dask) arrays and frozen configs, so
they run unchanged in the CLI process, in tests, or in a spawned child through
:func:`napari_celldenoise.jobs.run_in_process` (the napari dock). Every input is checked
before TensorFlow is imported or anything is written; a bad one raises
:class:`~.data.DeepInputError` or :class:`~.model.ModelFolderError` with one clear line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..jobs import Done, Event, Log, Preview, Progress, ShouldStop, never_stop
from .config import PredictConfig, TrainConfig, resume_config
from .data import (
    DeepInputError,
    check_axes,
    check_finite,
    check_values,
    make_patches,
    to_samples,
)
from .model import SAMPLE, ModelFolder, ModelFolderError, ModelInfo, prepare_new_folder
from .predictors import Dihedral
from .registry import method_of
from .tiling import predict_tiled


def train(
    data: np.ndarray,
    axes: str,
    config: TrainConfig,
    model_dir: str,
    *,
    resume: bool = False,
    extra: dict[str, Any] | None = None,
    should_stop: ShouldStop = never_stop,
) -> Iterator[Event]:
    """Train ``config.method`` on ``data`` (the user's noisy image) into ``model_dir``.

    With ``resume`` the folder's last weights are loaded and ``config.epochs`` more epochs are
    trained; the architecture (method, depth, features, mask, dims) is the folder's, the run's
    settings are merged over it by :func:`.config.resume_config`. ``extra`` holds the images a
    method trains on besides ``data`` (its ``extra_inputs``, same axes), by name.
    The final :class:`Done` carries the model folder's :class:`ModelInfo`.
    """
    folder = prepare_new_folder(model_dir, resume=resume)
    info: ModelInfo | None = None
    if resume:
        info = folder.read_info()
        config = resume_config(info.train, config)
        if config.dims == 3 and "Z" not in check_axes(axes, np.ndim(data)):
            raise DeepInputError(f"the model is 3D (trained on {info.axes}), the data has {axes}")
    method = method_of(config)
    extra = method.check_extra(extra)
    samples, order = to_samples(data, axes, config.dims)
    spatial = "ZYX" if config.dims == 3 else "YX"
    sample_axes = order[: len(order) - len(spatial)]
    lead = tuple(int(np.shape(data)[axes.upper().index(a)]) for a in sample_axes)
    check_values(samples)
    patches = make_patches(samples, config)
    sample = patches.val[0]
    gat = None
    if getattr(config, "vst", False):
        from .pg import estimate_noise_params
        from .vst import stabiliser

        noise = folder.read_noise() if resume else None
        ab = (noise["a"], noise["b"]) if noise else estimate_noise_params(samples[:8])
        gat = stabiliser(*ab)
        patches = replace(patches, train=gat.forward(patches.train), val=gat.forward(patches.val))
    if info is None:
        info = ModelInfo(
            train=config, axes=axes.upper(), overlap=method.receptive_radius(config.depth)
        )
    else:
        info = info.model_copy(update={"train": config})
    created = not folder.path.exists()
    try:
        final, stopped = yield from _write_and_fit(
            folder, info, patches, sample, gat, resume=resume, should_stop=should_stop,
            extra=extra, origin=patch_origin(patches.val_origin, sample_axes, lead),
        )  # fmt: skip
    except BaseException:
        if not resume and not folder.has_weights():  # nothing trained: leave nothing behind
            if folder.path.is_dir():
                folder.clear()
            if created and folder.path.is_dir() and not any(folder.path.iterdir()):
                folder.path.rmdir()
        raise
    yield Done(final, stopped=stopped)


def _write_and_fit(
    folder: ModelFolder,
    info: ModelInfo,
    patches: Any,
    sample: np.ndarray,
    gat: Any,
    *,
    resume: bool,
    should_stop: ShouldStop,
    extra: dict[str, Any],
    origin: dict[str, int],
) -> Iterator[Event]:
    """Write the folder's inputs and run the method's trainer; returns ``(info, stopped)``.

    Each :class:`Preview` (the first validation patch, denoised) gets the patch's ``origin``
    in the image (axis letter -> pixel) in its metadata.
    """
    config = info.train
    folder.path.mkdir(parents=True, exist_ok=True)
    if gat is not None:
        folder.write_noise(gat.a, gat.b)
    if not folder.file(SAMPLE).is_file():
        _write_npy(folder.file(SAMPLE), sample)
    yield Progress(0, config.epochs * config.steps, "starting TensorFlow")
    run = method_of(config).train(
        patches, config, folder, info, resume=resume, should_stop=should_stop, extra=extra
    )
    try:
        while True:
            try:
                event = next(run)
            except StopIteration as end:
                return end.value
            if isinstance(event, Preview):
                event = Preview(event.image, event.name, {**event.metadata, "origin": origin})
            yield event
    finally:
        run.close()  # as ``yield from`` would when this job is closed early


def patch_origin(
    origin: tuple[int, ...], sample_axes: str, lead: tuple[int, ...]
) -> dict[str, int]:
    """``(sample, *start)`` of a patch -> its first pixel in the image, by axis letter."""
    if not origin:
        return {}
    spatial = "ZYX"[3 - (len(origin) - 1) :]
    where = dict(zip(sample_axes, (int(i) for i in np.unravel_index(origin[0], lead or (1,)))))
    return {**({} if not sample_axes else where), **dict(zip(spatial, map(int, origin[1:])))}


def _write_npy(path: Any, array: np.ndarray) -> None:
    """Save ``array`` as ``.npy`` atomically (the raw validation patch: the export's test input)."""
    import io

    from ..atomic import atomic_write

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array, np.float32))
    atomic_write(path, buf.getvalue(), overwrite=True)


# Mirrored slices a 3D prediction adds beyond a stack's first and last slice (YX get the full
# overlap). Measured with benchmarks/deep_z_border.py (docs/deep.md, "Thin stacks"): on 20
# slices, 8 change no slice by more than 0.03 dB (FMD frames) or 0.08 dB (synthetic nuclei)
# against the full 32 and predict 2.2-2.4x faster; none (zero padding) cost up to 9.7 dB.
Z_EDGE_CONTEXT = 8


def check_predict_input(data: Any, axes: str, info: ModelInfo) -> str:
    """Check data against a model before loading TensorFlow; returns normalised axes."""
    axes = check_axes(axes, len(data.shape))
    if info.train.dims == 3 and "Z" not in axes:
        raise DeepInputError(
            f"the model is a 3D network (trained on {info.axes}): the data "
            f"needs a Z axis, it has {axes}"
        )
    if "C" in axes and data.shape[axes.index("C")] > 1:
        raise DeepInputError("the image has several channels: select one channel (one layer)")
    if not hasattr(data, "dask"):  # a lazy stack is checked tile by tile (predict_tiled)
        check_finite(np.asarray(data, np.float32), before="predicting")
    return axes


def predict(
    model_dir: str,
    data: Any,
    axes: str,
    config: PredictConfig | None = None,
    *,
    out: str | os.PathLike | None = None,
    should_stop: ShouldStop = never_stop,
) -> Iterator[Event]:
    """Denoise ``data`` (numpy or dask, axes ``axes``) with the model in ``model_dir``.

    Tiles with overlap so that no seams show; the result (float32, same shape and axes as
    ``data``, in its intensity units) is carried by the final :class:`Done`.

    With ``out`` (a new ``.npy`` path) the result is written tile by tile into that file
    (memory-mapped) and ``Done`` carries a :class:`StoredResult` to open it lazily: with a
    dask input, memory then holds one tile window at a time, whatever the stack's size.
    """
    config = config or PredictConfig()
    folder = ModelFolder(model_dir)
    info = folder.read_info()
    folder.weights(config.weights)
    axes = check_predict_input(data, axes, info)
    dims = info.train.dims
    spatial = "ZYX" if dims == 3 else "YX"
    order = [a for a in axes if a not in spatial] + list(spatial)
    perm = [axes.index(a) for a in order]
    arr = data.transpose(perm) if hasattr(data, "dask") else np.transpose(np.asarray(data), perm)
    lead = arr.shape[: len(order) - len(spatial)]
    n = int(np.prod(lead)) if lead else 1
    arr = arr.reshape((n, *arr.shape[len(lead) :]))
    yield Progress(0, 0, "loading the model")
    method = method_of(info.train)
    predictor = yield from method.predictor(folder, info, config, arr, should_stop=should_stop)
    if config.ensemble:
        predictor = Dihedral(predictor)
    yield Log(
        f"predicting with {folder.weights(config.weights).name}"
        + (", averaged over 8 flips and rotations" if config.ensemble else "")
    )
    stored = None
    if out is None:
        result = np.empty(arr.shape, np.float32)
    else:
        stored = StoredResult(os.fspath(out), tuple(lead), tuple(int(p) for p in perm))
        result = np.lib.format.open_memmap(stored.path, "w+", np.float32, tuple(arr.shape))
    overlap = max(info.overlap, config.overlap) if config.overlap else info.overlap
    border = (min(overlap, Z_EDGE_CONTEXT), overlap, overlap) if dims == 3 else overlap
    tiling = dict(tile=config.tile, overlap=overlap, align=2**info.train.depth, border=border)
    from .tiling import tile_windows

    per = len(tile_windows(arr.shape[1:], **tiling))
    finish = method.finish(folder, info) if method.finish else None
    for i in range(n):
        gen = predict_tiled(
            predictor,
            arr[i],
            **tiling,
            should_stop=should_stop,
            out=result[i],
            progress_offset=i * per,
            progress_total=n * per,
            message=f"denoising {i + 1}/{n}",
            plane=f"plane {i + 1}/{n}" if n > 1 else "",
        )
        yield from gen
        if should_stop():
            yield Done(None, stopped=True)
            return
        if finish is not None:
            result[i] = finish(np.asarray(arr[i], dtype=np.float32), result[i])
    if stored is not None:
        result.flush()
        del result
        yield Done(stored)
        return
    yield Done(stored_view(result, lead, perm))


def stored_view(array: np.ndarray, lead: tuple[int, ...], perm: tuple[int, ...]) -> np.ndarray:
    """``(n, *spatial)`` prediction order back to the data's shape and axis order (a view)."""
    return np.transpose(array.reshape((*lead, *array.shape[1:])), np.argsort(perm))


@dataclass(frozen=True)
class StoredResult:
    """A prediction written to a ``.npy`` file; small to pickle across processes."""

    path: str
    lead: tuple[int, ...]
    perm: tuple[int, ...]

    def open(self) -> np.ndarray:
        """The result, memory-mapped read-only, in the input's shape and axis order."""
        return stored_view(np.load(self.path, mmap_mode="r"), self.lead, self.perm)


def predict_file(
    model_dir: str,
    path: str,
    shape: tuple[int, ...],
    axes: str,
    config: PredictConfig | None = None,
    *,
    out: str,
    should_stop: ShouldStop = never_stop,
) -> Iterator[Event]:
    """:func:`predict` of the image file ``path`` opened lazily here, into the ``.npy`` ``out``.

    For a dock's lazy layer, whose dask array cannot cross a process boundary (it holds the
    open file): the child reopens the file. ``shape`` is the layer's, to refuse a file that
    opens differently (a channel split into layers).
    """
    from ..io import read_image

    data = read_image(path, lazy=True).data
    if tuple(data.shape) != tuple(shape):
        raise DeepInputError(
            f"{path} opens as {tuple(data.shape)}, the layer is {tuple(shape)}: "
            "save the layer as a file and denoise that"
        )
    yield from predict(model_dir, data, axes, config, out=out, should_stop=should_stop)


__all__ = ["DeepInputError", "ModelFolderError", "predict", "train"]
