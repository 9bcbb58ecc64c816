"""``celldenoise spots`` (detect, fit, classify, write a CSV) and ``celldenoise simulate-spots``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .errors import CliError

_UNIT_NM = {"nm": 1.0, "µm": 1000.0, "um": 1000.0, "mm": 1e6}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "spots",
        help="find, fit and classify diffraction-limited spots; write a ThunderSTORM-style CSV",
        description="Detect spots (B-spline wavelet filter and local maxima), fit a pixel-"
        "integrated 2D Gaussian (least squares or maximum likelihood with Cramer-Rao bounds), "
        "classify them good/bad and write a CSV (frame 1-based, nm = (px + 0.5) * pixel size).",
    )
    p.add_argument("input", metavar="IN", help="TIFF/OME-TIFF/PNG frame or stack (YX, TYX, ZYX)")
    p.add_argument("-o", "--output", metavar="OUT.csv", required=True, help="CSV to write")
    p.add_argument("--fit", choices=["lsq", "mle"], default="mle", help="estimator (default mle)")
    p.add_argument("--offset", type=float, metavar="ADU", help="camera offset (default 100)")
    p.add_argument(
        "--sensitivity",
        type=float,
        metavar="E_PER_ADU",
        help="photoelectrons per ADU (default 0.5)",
    )
    p.add_argument("--read-noise", type=float, metavar="E", help="read noise, e- rms (1.6)")
    p.add_argument("--em-gain", type=float, metavar="G", help="EM gain (default 1: none)")
    p.add_argument("--qe", type=float, metavar="Q", help="quantum efficiency (default 1)")
    p.add_argument(
        "--pixel-size",
        type=float,
        metavar="NM",
        help="nm per pixel (default: the image's scale, else 100)",
    )
    p.add_argument(
        "--threshold",
        metavar="EXPR",
        help="detection threshold: a number or an expression such as "
        "'2*std(Wave.F1)' (default 0.7*localnoise(Wave.F1): 0.7 x the local robust noise of "
        "the first wavelet plane; std(Wave.F1) is ThunderSTORM's, more conservative)",
    )
    p.add_argument("--sigma", type=float, metavar="PX", help="PSF sigma in px (default 1.3)")
    p.add_argument("--box", type=int, metavar="N", help="fit box side, odd (default 7)")
    p.add_argument(
        "--classify", metavar="MODEL", help="classifier (.joblib) or rules (.yaml); default: rules"
    )
    p.add_argument("--filter", choices=["wavelet", "dog", "log"], help="default wavelet")
    p.add_argument("--elliptical", action="store_true", help="fit sigma_x and sigma_y")
    p.add_argument("--axes", help="override the image axes, e.g. TYX or ZYX")
    p.add_argument("--channel", type=int, default=0, help="channel of a multichannel image")
    p.add_argument("--overwrite", action="store_true", help="replace OUT.csv if it exists")
    g = p.add_argument_group(
        "ML centroids",
        "a ridge regression or a small TensorFlow network that predicts each spot's sub-pixel "
        "centre from its box, trained on this run's good fitted spots or on simulated ones; "
        "faster than fitting, for data as it is acquired. The network trains in a child "
        "process.",
    )
    g.add_argument(
        "--centroid",
        metavar="MODEL.npz",
        help="localise with this trained centroid model instead of fitting (positions only: "
        "no sigma, bounds or fit values; every spot good)",
    )
    g.add_argument(
        "--train-centroid",
        choices=["ridge", "mlp"],
        help="after fitting, train a centroid model and report its std against the held-out "
        "fits (or simulated truth) and its predictions/s",
    )
    g.add_argument(
        "--centroid-from",
        choices=["fit", "simulated"],
        default="fit",
        help="training spots: this run's good fits (default) or spots simulated with --sigma "
        "and the camera settings",
    )
    g.add_argument(
        "--centroid-out", metavar="MODEL.npz", help="where to save the trained model (required)"
    )
    g.add_argument(
        "--centroid-epochs", type=int, default=20, metavar="N", help="network epochs (20)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)

    s = sub.add_parser(
        "simulate-spots",
        help="simulate camera frames of spots with known positions (TIFF + truth CSV)",
        description="Write frames of pixel-integrated Gaussian spots with Poisson shot noise, "
        "read noise, gain and offset (uint16 ADU) and the true positions as a spot CSV.",
    )
    s.add_argument("-o", "--output", metavar="OUT.tif", required=True, help="OME-TIFF to write")
    s.add_argument("--truth", metavar="TRUTH.csv", help="CSV of the true spots")
    s.add_argument("--frames", type=int, default=10, help="number of frames (default 10)")
    s.add_argument("--size", type=int, nargs=2, default=[128, 128], metavar=("H", "W"))
    s.add_argument("--spots", type=int, default=20, help="spots per frame (random layout)")
    s.add_argument("--layout", choices=["random", "grid"], default="random")
    s.add_argument("--min-distance", type=float, default=6.0, help="px between random spots")
    s.add_argument("--spacing", type=float, default=4.0, help="grid pitch in px")
    s.add_argument("--sigma", type=float, default=1.3, help="PSF sigma in px")
    s.add_argument("--photons", type=float, nargs=2, default=[300.0, 5000.0], metavar=("LO", "HI"))
    s.add_argument(
        "--background",
        type=float,
        nargs=2,
        default=[10.0, 10.0],
        metavar=("LO", "HI"),
        help="photons per px, drawn per frame",
    )
    s.add_argument("--offset", type=float, default=100.0, metavar="ADU")
    s.add_argument("--sensitivity", type=float, default=0.5, metavar="E_PER_ADU")
    s.add_argument("--read-noise", type=float, default=1.6, metavar="E")
    s.add_argument("--em-gain", type=float, default=1.0, metavar="G")
    s.add_argument("--qe", type=float, default=1.0, metavar="Q")
    s.add_argument("--pixel-size", type=float, default=100.0, metavar="NM")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=run_simulate)


def build_config(args: argparse.Namespace, pixel_size: float):
    """A :class:`SpotsConfig` from the command line (unset options keep their defaults)."""
    from ..spots.config import THRESHOLDS, SpotsConfig

    values: dict = {"fit": args.fit, "pixel_size": pixel_size, "elliptical": args.elliptical}
    for name in ("offset", "sensitivity", "read_noise", "em_gain", "qe", "sigma", "box", "filter"):
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    if args.threshold is not None:
        values["threshold"] = args.threshold
    elif args.filter and args.filter != "wavelet":
        values["threshold"] = THRESHOLDS[args.filter]
    return SpotsConfig(**values)


def _image_pixel_size(image) -> float | None:
    """nm per pixel from the image's X scale; None without a unit or for an implausible value
    (some TIFF writers store a resolution that makes pixels picometres wide)."""
    unit = image.units.get("X", "pixel")
    factor = _UNIT_NM.get(unit)
    if factor is None:
        return None
    nm = float(image.scale.get("X", 1.0)) * factor
    if not 1.0 <= nm <= 100_000.0:
        print(
            f"celldenoise spots: ignoring the image's pixel size ({nm:.3g} nm); give --pixel-size",
            file=sys.stderr,
        )
        return None
    return nm


def _stack(image, channel: int) -> tuple[np.ndarray, str]:
    data, axes = image.data, image.axes
    if "S" in axes:
        raise CliError(f"{image.path}: RGB images are not camera frames; give one channel")
    if "C" in axes:
        n = data.shape[axes.index("C")]
        if not 0 <= channel < n:
            raise CliError(f"--channel {channel}: the image has {n} channels")
        data = np.take(data, channel, axis=axes.index("C"))
        axes = axes.replace("C", "")
    return data, axes


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from ..config import ReaderConfig, format_validation_error
    from ..io import read_image
    from ..io.spots_csv import write_spots_csv
    from ..jobs import run as run_job
    from ..spots.classify import apply_classifier
    from ..spots.pipeline import find_spots
    from ._classical import check_output
    from .progress import StderrProgress

    out = Path(args.output)
    check_output(args.output, args.overwrite)
    if args.classify and not Path(args.classify).is_file():
        raise CliError(f"{args.classify}: no such classifier or rules file")
    image = read_image(args.input, config=ReaderConfig(axes=args.axes) if args.axes else None)
    stack, axes = _stack(image, args.channel)
    pixel_size = args.pixel_size or _image_pixel_size(image) or 100.0
    try:
        config = build_config(args, pixel_size)
    except ValidationError as exc:
        raise CliError(format_validation_error(exc)) from None
    if min(stack.shape[-2:]) < config.box:
        raise CliError(
            f"{args.input}: frames of {stack.shape[-2]}x{stack.shape[-1]} px are "
            f"smaller than the {config.box}x{config.box} fit box"
        )
    from ..spots.expr import ExpressionError

    model = _load_centroid(args)
    try:
        if model is not None:
            from ..spots.centroid import locate_with_model

            job = locate_with_model(stack, model, config, axes=axes)
        else:
            job = find_spots(stack, config, axes=axes)
        table = run_job(job, on_event=StderrProgress(quiet=args.quiet))
    except ExpressionError as exc:
        raise CliError(str(exc)) from None
    if args.train_centroid:
        _train_centroid(args, stack, axes, table, config)
    if args.classify:  # otherwise the pipeline's rules (around the PSF the data show) stand
        try:
            table = apply_classifier(table, args.classify, frames=stack, box=config.box, axes=axes)
        except (ValueError, OSError, KeyError) as exc:
            raise CliError(f"--classify: {exc}") from None
    write_spots_csv(out, table, pixel_size=pixel_size, overwrite=args.overwrite)
    n_good = int((table["class"] == "good").sum()) if len(table) else 0
    if not args.quiet:
        if len(table) == 0:
            print(
                f"no spots found in {args.input}: wrote the header only to {out}", file=sys.stderr
            )
        else:
            print(f"{len(table)} spots ({n_good} good) -> {out}", file=sys.stderr)
    return 0


def _load_centroid(args: argparse.Namespace):
    """The ``--centroid`` model, after checking the centroid options make sense together."""
    if args.train_centroid and not args.centroid_out:
        raise CliError("--train-centroid needs --centroid-out MODEL.npz")
    if args.train_centroid and args.centroid and args.centroid_from == "fit":
        raise CliError("--train-centroid from fits needs a fit: drop --centroid")
    if args.centroid_out and Path(args.centroid_out).exists() and not args.overwrite:
        raise CliError(f"{args.centroid_out}: already exists (use --overwrite to replace it)")
    if args.centroid_epochs < 1:
        raise CliError("--centroid-epochs must be >= 1")
    if not args.centroid:
        return None
    from ..spots.centroid import CentroidModel

    if not Path(args.centroid).is_file():
        raise CliError(f"{args.centroid}: no such centroid model")
    try:
        return CentroidModel.load(args.centroid)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _train_centroid(args: argparse.Namespace, stack, axes: str, table, config) -> None:
    """Train, report (one line on stderr) and save the ``--train-centroid`` model."""
    from ..jobs import run as run_job
    from ..spots.centroid import (
        centroid_report,
        train_centroid,
        training_set_from_spots,
        training_set_simulated,
    )
    from .progress import StderrProgress

    fitted = training_set_from_spots(stack, table, config.box, axes) if len(table) else None
    if args.centroid_from == "fit":
        boxes, offsets = fitted if fitted is not None else (np.empty((0,)), np.empty((0, 2)))
        against = "the fit"
    else:
        boxes, offsets = training_set_simulated(
            20000, config.box, sigma=config.sigma, camera=config.camera
        )
        against = "the simulated truth"
    try:
        model = run_job(
            train_centroid(boxes, offsets, kind=args.train_centroid, epochs=args.centroid_epochs)
            if args.train_centroid == "mlp"
            else train_centroid(boxes, offsets, kind="ridge"),
            on_event=StderrProgress(quiet=args.quiet),
        )
    except ValueError as exc:
        raise CliError(f"--train-centroid: {exc}") from None
    if model is None:
        raise CliError("--train-centroid: training stopped before a model was made")
    i = model.info
    line = (
        f"centroid {model.kind} ({i['n_train']} {args.centroid_from} spots): std "
        f"{i['std_x']:.3f} / {i['std_y']:.3f} px (x / y) against {against} on {i['n']} held-out"
        f" spots, {i['per_second']:,.0f} predictions/s"
    )
    if args.centroid_from == "simulated" and fitted is not None and len(fitted[0]) >= 5:
        r = centroid_report(model, *fitted)
        line += f"; against this run's {r['n']} good fits {r['std_x']:.3f} / {r['std_y']:.3f} px"
    model.save(args.centroid_out)
    print(f"{line} -> {args.centroid_out}", file=sys.stderr)


def run_simulate(args: argparse.Namespace) -> int:
    from ..io import ImageData, write_ome_tiff
    from ..io.spots_csv import write_spots_csv
    from ..spots.simulate import Camera, simulate_spots, truth_table

    out = Path(args.output)
    if args.frames < 1 or min(args.size) < 3:
        raise CliError("--frames must be >= 1 and --size at least 3 3")
    if args.truth and Path(args.truth).exists() and not args.overwrite:
        raise CliError(f"{args.truth}: already exists (use --overwrite to replace it)")
    try:
        camera = Camera(args.offset, args.sensitivity, args.read_noise, args.em_gain, args.qe)
        lo, hi = args.background
        frames, truth = simulate_spots(
            args.frames,
            tuple(args.size),
            n_spots=args.spots,
            sigma=args.sigma,
            photons=tuple(args.photons),
            background=(lo, hi) if hi > lo else lo,
            min_distance=args.min_distance,
            camera=camera,
            layout=args.layout,
            spacing=args.spacing,
            seed=args.seed,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    um = args.pixel_size / 1000.0
    image = ImageData(frames, "TYX", scale={"Y": um, "X": um}, units={"Y": "µm", "X": "µm"})
    write_ome_tiff(out, image, overwrite=args.overwrite)
    msg = f"{args.frames} frames, {len(truth)} spots -> {out}"
    if args.truth:
        write_spots_csv(args.truth, truth_table(truth, args.pixel_size), overwrite=True)
        msg += f", truth -> {args.truth}"
    print(msg, file=sys.stderr)
    return 0
