"""Export a model folder to the BioImage Model Zoo format (bioimage.io): the methods whose
registry entry has export support (N2V and structN2V).

n2v 0.3.3's own ``N2V.export_TF`` cannot run on this stack: it calls
``bioimageio.core.build_spec.build_model``, which bioimageio.core removed in 0.6 (installed:
0.11). The package is therefore described here with ``bioimageio.spec`` (format 0.5) directly:

- weights: a TensorFlow SavedModel bundle (zip) of the Keras U-Net, written with the legacy
  Keras that trained it; TensorFlow 2 consumers load it with ``keras.layers.TFSMLayer``,
- input ``raw`` (``b,y,x,c`` or ``b,z,y,x,c``, any size ``min + n * 2**depth``), output
  ``denoised`` of the same size, with a halo of the network's receptive radius,
- preprocessing ``fixed_zero_mean_unit_variance`` with the folder's mean/std, postprocessing
  ``scale_linear`` (gain std, offset mean): the output is in the input's intensity units,
- a test input (a crop of the given image, or the validation patch saved at training) and the
  test output of our own prediction, a README with the training settings and the citation.

:func:`check_package` loads the description again and runs bioimage.io's own test inference
(``bioimageio.core.test_model``) in a process *without* the legacy-Keras switch, as a consumer
would: it is the check that the package works outside napari-celldenoise.

Models trained on Anscombe-stabilised data (``vst``) and PG blind-spot models are refused (each
method's export support says why): the model zoo has no generalised-Anscombe processing step
and no posterior-mean output.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path
from ..jobs import Done, Event, Log, Progress, ShouldStop, never_stop
from ._bioimageio import import_spec
from .data import DeepInputError, check_axes
from .method import ExportSupport
from .model import SAMPLE, ModelFolder, ModelFolderError, ModelInfo
from .registry import METHODS, method_of

logger = logging.getLogger(__name__)

_TEST_SIDE = 256


def exportable_methods() -> tuple[str, ...]:
    """Names of the methods whose model folders can be exported."""
    return tuple(name for name, m in METHODS.items() if m.export is not None)


def _support(info: ModelInfo) -> ExportSupport:
    support = method_of(info.train).export
    assert support is not None  # checked by check_exportable
    return support


def check_exportable(model_dir: str | os.PathLike) -> ModelInfo:
    """The folder's info if it holds an exportable N2V model; else one-line errors (no TF)."""
    folder = ModelFolder(model_dir)
    info = folder.read_info()
    folder.weights("best")
    method = method_of(info.train)
    if method.export is None:
        titles = " and ".join(METHODS[name].export.short for name in exportable_methods())
        raise ModelFolderError(
            f"{folder.path}: a {method.name} model; only {titles} models can be exported "
            "to the BioImage Model Zoo format"
        )
    reason = method.export.refuse(info)
    if reason:
        raise ModelFolderError(f"{folder.path}: {reason}")
    return info


def test_input(
    info: ModelInfo, folder: ModelFolder, image: Any = None, axes: str | None = None
) -> np.ndarray:
    """The export's test input: ``[Z]YX`` float32 from ``image`` (centre crop) or the folder.

    ``image`` with ``axes``: the first plane of every non-spatial axis is taken, then a centred
    crop of at most 256 pixels per side, cut to a multiple of ``2**depth``.
    """
    spatial = "ZYX" if info.train.dims == 3 else "YX"
    if image is None:
        if not folder.file(SAMPLE).is_file():
            raise DeepInputError(
                f"{folder.path} holds no {SAMPLE} (trained by an older version): give a test "
                "image of the kind the model was trained on"
            )
        arr = np.load(folder.file(SAMPLE))
        if arr.ndim != len(spatial):
            raise ModelFolderError(
                f"{folder.file(SAMPLE)}: expected {len(spatial)}D, got {arr.ndim}D"
            )
    else:
        axes = check_axes(axes or "", np.ndim(image))
        if "Z" in spatial and "Z" not in axes:
            raise DeepInputError(f"the model is 3D: the test image needs a Z axis, it has {axes}")
        index = tuple(0 if a not in spatial else slice(None) for a in axes)
        kept = "".join(a for a in axes if a in spatial)
        arr = np.asarray(image[index], np.float32)
        arr = np.transpose(arr, [kept.index(a) for a in spatial])
    div = 2**info.train.depth
    crop = []
    for n in arr.shape:
        side = min(n, _TEST_SIDE) // div * div
        if side < div:
            raise DeepInputError(f"the test image is smaller than {div} pixels along an axis")
        start = (n - side) // 2
        crop.append(slice(start, start + side))
    arr = np.ascontiguousarray(arr[tuple(crop)], np.float32)
    if not np.isfinite(arr).all():
        raise DeepInputError("the test image holds NaN or infinite values")
    # mirrored up to the smallest size whose core survives a halo of the network's full reach
    need = min_export_size(info)
    short = [max(0, need - n) for n in arr.shape]
    if not any(short):
        return arr
    return np.ascontiguousarray(np.pad(arr, [(d // 2, d - d // 2) for d in short], "symmetric"))


def min_export_size(info: ModelInfo) -> int:
    """Smallest input side of an exported model: a halo of ``info.overlap`` on each side
    around a core of ``2**depth`` pixels."""
    div = 2**info.train.depth
    return (2 * info.overlap // div + 1) * div


def export_bioimageio(
    model_dir: str | os.PathLike,
    output: str | os.PathLike,
    *,
    image: Any = None,
    axes: str | None = None,
    name: str | None = None,
    authors: tuple[str, ...] = (),
    overwrite: bool = False,
    should_stop: ShouldStop = never_stop,
) -> Iterator[Event]:
    """Write ``output`` (a ``.zip`` bioimage.io model package) from an N2V model folder.

    TensorFlow is imported here: run it in a CLI process or a child process. The zip appears
    only when complete. The final :class:`Done` carries the output path.
    """
    folder = ModelFolder(model_dir)
    info = check_exportable(model_dir)
    output = Path(output)
    if output.exists() and not overwrite:
        raise DeepInputError(f"{output}: already exists (use overwrite to replace it)")
    if not output.parent.is_dir():
        raise DeepInputError(f"{output.parent}: no such folder")
    x = test_input(info, folder, image, axes)
    yield Progress(0, 3, "loading the model (TensorFlow)")
    from ._tf import import_tensorflow

    tf = import_tensorflow()
    keras_model, predictor = _support(info).load(folder, info)
    y = predictor(x).astype(np.float32)
    if should_stop():
        yield Done(None, stopped=True)
        return
    yield Progress(1, 3, "writing the SavedModel")
    with tempfile.TemporaryDirectory(prefix="celldenoise-export-") as tmp:
        root = Path(tmp)
        bundle = root / "savedmodel"
        keras_model.save(str(bundle), save_format="tf", include_optimizer=False)
        weights = root / "tf_saved_model.zip"
        with zipfile.ZipFile(weights, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(bundle.rglob("*")):
                zf.write(path, path.relative_to(bundle))
        np.save(root / "test_input.npy", x[None, ..., None])
        np.save(root / "test_output.npy", y[None, ..., None])
        readme = root / "README.md"
        readme.write_text(_readme(info, name or folder.path.name), encoding="utf-8")
        yield Progress(2, 3, "describing and packaging")
        descr = describe(
            info,
            name=name or f"{info.train.method} {folder.path.name}",
            authors=authors,
            weights=weights,
            test_in=root / "test_input.npy",
            test_out=root / "test_output.npy",
            readme=readme,
            cover=folder.file("thumbnail.png"),
            tensorflow_version=tf.__version__,
        )
        spec = import_spec()
        with atomic_path(output, overwrite=overwrite) as target:
            spec.save_bioimageio_package(descr, output_path=target)
    yield Progress(3, 3, "exported")
    yield Done(str(output))


def describe(
    info: ModelInfo,
    *,
    name: str,
    authors: tuple[str, ...],
    weights: Path,
    test_in: Path,
    test_out: Path,
    readme: Path,
    cover: Path,
    tensorflow_version: str,
) -> Any:
    """The bioimage.io ``ModelDescr`` (format 0.5) of an exportable model folder."""
    import_spec()
    from bioimageio.spec.model import v0_5 as m

    div = 2**info.train.depth
    spatial = "zyx" if info.train.dims == 3 else "yx"
    # the halo (border a consumer's tiles should drop) is the context a tile needs, the
    # network's reach; the test input is at least the smallest size that keeps a core inside it
    halo = info.overlap
    min_size = min_export_size(info)
    in_axes = [m.BatchAxis()]
    out_axes = [m.BatchAxis()]
    for a in spatial:
        in_axes.append(
            m.SpaceInputAxis(id=m.AxisId(a), size=m.ParameterizedSize(min=min_size, step=div))
        )
        out_axes.append(
            m.SpaceOutputAxisWithHalo(
                id=m.AxisId(a),
                size=m.SizeReference(tensor_id=m.TensorId("raw"), axis_id=m.AxisId(a)),
                halo=halo,
            )
        )
    in_axes.append(m.ChannelAxis(channel_names=[m.Identifier("raw")]))
    out_axes.append(m.ChannelAxis(channel_names=[m.Identifier("denoised")]))
    support = _support(info)
    text, doi = support.citation, support.doi
    return m.ModelDescr(
        name=name,
        description=f"{support.title} self-supervised denoiser trained with napari-celldenoise "
        f"on {info.axes} data ({info.epochs_done} epochs).",
        authors=[m.Author(name=a) for a in authors] or [m.Author(name="napari-celldenoise user")],
        cite=[m.CiteEntry(text=text, doi=m.Doi(doi))],
        license=m.LicenseId("BSD-3-Clause"),
        documentation=m.FileDescr(source=readme),
        covers=[m.FileDescr(source=cover)] if cover.is_file() else [],
        tags=[
            "denoising",
            *support.tags,
            info.train.method,
            f"{len(spatial)}d",
            "unet",
            "tensorflow",
            "napari-celldenoise",
        ],
        inputs=[
            m.InputTensorDescr(
                id=m.TensorId("raw"),
                axes=in_axes,
                test_tensor=m.FileDescr(source=test_in),
                preprocessing=[
                    m.EnsureDtypeDescr(kwargs=m.EnsureDtypeKwargs(dtype="float32")),
                    m.FixedZeroMeanUnitVarianceDescr(
                        kwargs=m.FixedZeroMeanUnitVarianceKwargs(mean=info.mean, std=info.std)
                    ),
                ],
            )
        ],
        outputs=[
            m.OutputTensorDescr(
                id=m.TensorId("denoised"),
                axes=out_axes,
                test_tensor=m.FileDescr(source=test_out),
                postprocessing=[
                    m.ScaleLinearDescr(kwargs=m.ScaleLinearKwargs(gain=info.std, offset=info.mean)),
                    m.EnsureDtypeDescr(kwargs=m.EnsureDtypeKwargs(dtype="float32")),
                ],
            )
        ],
        weights=m.WeightsDescr(
            tensorflow_saved_model_bundle=m.TensorflowSavedModelBundleWeightsDescr(
                source=weights, tensorflow_version=m.Version(tensorflow_version)
            )
        ),
    )


def _readme(info: ModelInfo, name: str) -> str:
    t = info.train
    support = _support(info)
    text, doi = support.citation, support.doi
    lines = [
        f"# {name}",
        "",
        f"A {t.method} denoising network trained with napari-celldenoise on the user's own noisy "
        f"data (axes {info.axes}), self-supervised: no clean images were used.",
        "",
        "## Training",
        "",
        f"- epochs: {info.epochs_done}, {t.steps} steps of {t.batch} patches of {t.patch} pixels",
        f"- U-Net depth {t.depth}, {t.features} first-level features, {t.dims}D",
        *support.readme(info)[:1],
        f"- normalisation: mean {info.mean:.6g}, std {info.std:.6g} (undone on the output)",
        f"- best validation loss: {info.best_val_loss}",
        *support.readme(info)[1:],
    ]
    lines += [
        "",
        "Apply it to images of the same kind (microscope, noise level); denoised pixels are",
        "estimates, not measurements.",
        "",
        "## Cite",
        "",
        f"{text}. doi:{doi}",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- checking
def check_package(
    path: str | os.PathLike, *, should_stop: ShouldStop = never_stop
) -> Iterator[Event]:
    """Load the package's description and run bioimage.io's test inference on it.

    Meant for a fresh child process (:func:`napari_celldenoise.jobs.run_in_process`): the
    legacy-Keras switch is removed before TensorFlow is imported, so the SavedModel is loaded
    with Keras 3 as any bioimage.io consumer would. ``Done`` carries ``(passed, report)``.
    """
    if "tensorflow" not in sys.modules:
        os.environ.pop("TF_USE_LEGACY_KERAS", None)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    path = Path(path).resolve()
    yield Progress(0, 2, "loading the description")
    spec = import_spec()
    descr = spec.load_description(path)
    if isinstance(descr, spec.InvalidDescr):
        yield Done((False, _summary_text(descr.validation_summary)))
        return
    yield Progress(1, 2, "bioimage.io test inference")
    from bioimageio.core import test_model

    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="celldenoise-check-") as tmp:
        os.chdir(tmp)  # bioimageio.core unzips SavedModel weights under the working directory
        try:
            summary = test_model(path)
        finally:
            os.chdir(here)
    yield Progress(2, 2, "checked")
    yield Done((summary.status == "passed", _summary_text(summary)))


def _summary_text(summary: Any) -> str:
    lines = [f"bioimage.io validation: {summary.status}"]
    for detail in summary.details:
        lines.append(f"  {detail.status}: {detail.name}")
        for err in detail.errors:
            lines.append(f"    {'.'.join(map(str, err.loc))}: {err.msg}")
    return "\n".join(lines)


def export_and_check(
    model_dir: str | os.PathLike,
    output: str | os.PathLike,
    *,
    check: bool = True,
    overwrite: bool = False,
    should_stop: ShouldStop = never_stop,
    **kwargs: Any,
) -> Iterator[Event]:
    """Export in one child process, check the package in a second, clean one, then publish.

    The package is written under a temporary name next to ``output`` and renamed only when
    bioimage.io's test inference passed (or ``check`` is False): a failing package never
    appears under ``output``. The calling process never imports TensorFlow (the dock's
    rule). ``Done`` carries ``(output, report)``; :class:`ExportCheckFailed` is raised with
    the report when the check fails.
    """
    check_exportable(model_dir)
    output = Path(output)
    if output.exists() and not overwrite:
        raise DeepInputError(f"{output}: already exists (use overwrite to replace it)")
    if not output.parent.is_dir():
        raise DeepInputError(f"{output.parent}: no such folder")
    with atomic_path(output, overwrite=True, suffix=".zip") as tmp:
        exported = yield from _in_child(
            "bioimageio-export", export_bioimageio, model_dir, tmp, overwrite=True,
            should_stop=should_stop, **kwargs,
        )  # fmt: skip
        report = "bioimage.io validation: not run"
        stopped = exported is None
        if not stopped and check:
            checked = yield from _in_child(
                "bioimageio-check", check_package, tmp, should_stop=should_stop
            )
            stopped = checked is None
            if not stopped:
                passed, report = checked
                if not passed:
                    raise ExportCheckFailed(report)
        if stopped:  # abandon the package: output stays as it was
            tmp.unlink(missing_ok=True)
            yield Done(None, stopped=True)
            return
        if output.exists() and not overwrite:
            raise DeepInputError(f"{output}: appeared while exporting; not replaced")
    yield Log(report)
    yield Done((str(output), report))


def _in_child(kind: str, target: Any, *args: Any, **kwargs: Any) -> Iterator[Event]:
    """Run a job where ``kind`` runs (a spawned child, :mod:`...jobs.placement`); re-yield its
    events, return its result (None: stopped)."""
    from ..jobs.placement import place

    result = None
    for event in place(kind, target, *args, **kwargs):
        if isinstance(event, Done):
            result = event.result
        else:
            yield event
    return result


class ExportCheckFailed(RuntimeError):
    """bioimage.io's own test of the exported package failed; the message is its report."""


__all__ = [
    "ExportCheckFailed",
    "check_exportable",
    "check_package",
    "export_and_check",
    "export_bioimageio",
]
