"""``celldenoise spots`` (detect, fit, classify, write a CSV) and ``celldenoise simulate-spots``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import _smlm
from .errors import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "spots",
        help="find, fit and classify diffraction-limited spots; write a ThunderSTORM-style CSV",
        description="Detect spots (B-spline wavelet filter and local maxima), fit a pixel-"
        "integrated 2D Gaussian (least squares or maximum likelihood with Cramer-Rao bounds), "
        "classify them good/bad and write a CSV (frame 1-based, nm = (px + 0.5) * pixel size).",
    )
    p.add_argument("input", metavar="IN", help="TIFF/OME-TIFF/PNG frame or stack (YX, TYX, ZYX)")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT.csv",
        required=True,
        help="CSV to write (OUT.hdf5: Picasso's localization file and its .yaml)",
    )
    p.add_argument("--fit", choices=["lsq", "mle"], default="mle", help="estimator (default mle)")
    p.add_argument(
        "--fitter",
        choices=["cpu", "gpu", "auto"],
        default="cpu",
        help="cpu (numba, default), gpu (batched TensorFlow) or auto (the GPU when there is "
        "one); without a GPU it says so and fits on the CPU",
    )
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
        "--classify", metavar="MODEL", help="classifier (.skops) or rules (.yaml); default: rules"
    )
    p.add_argument(
        "--trust",
        action="store_true",
        help="allow an old pickle classifier (.joblib) for --classify: a pickle can run any "
        "code when opened, so only for files from a source you trust",
    )
    p.add_argument("--filter", choices=["wavelet", "dog", "log"], help="default wavelet")
    p.add_argument("--elliptical", action="store_true", help="fit sigma_x and sigma_y")
    p.add_argument(
        "--no-merge-z",
        action="store_true",
        help="volumes (ZYX, TZYX): report the 2D spots of every slice instead of one spot per "
        "emitter merged across consecutive slices",
    )
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
    _smlm.add_arguments(p)
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
    add_simulation_camera(s)
    s.set_defaults(func=run_simulate)


def add_simulation_camera(s: argparse.ArgumentParser) -> None:
    """The camera, pixel size, seed and overwrite options of the simulators."""
    s.add_argument("--offset", type=float, default=100.0, metavar="ADU")
    s.add_argument("--sensitivity", type=float, default=0.5, metavar="E_PER_ADU")
    s.add_argument("--read-noise", type=float, default=1.6, metavar="E")
    s.add_argument("--em-gain", type=float, default=1.0, metavar="G")
    s.add_argument("--qe", type=float, default=1.0, metavar="Q")
    s.add_argument("--pixel-size", type=float, default=100.0, metavar="NM")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--overwrite", action="store_true")


def build_config(args: argparse.Namespace, pixel_size: float):
    """A :class:`SpotsConfig` from the command line (unset options keep their defaults)."""
    from ..spots.config import THRESHOLDS, SpotsConfig

    values: dict = {
        "fit": args.fit,
        "fitter": args.fitter,
        "pixel_size": pixel_size,
        "elliptical": args.elliptical,
        "merge_z": not args.no_merge_z,
    }
    for name in ("offset", "sensitivity", "read_noise", "em_gain", "qe", "sigma", "box", "filter"):
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    if args.threshold is not None:
        values["threshold"] = args.threshold
    elif args.filter and args.filter != "wavelet":
        values["threshold"] = THRESHOLDS[args.filter]
    return SpotsConfig(**values)


def run(args: argparse.Namespace) -> int:
    from ..jobs import run as run_job
    from ..jobs.run_spec import run_spec
    from ..jobs.specs import SpecError
    from ._classical import check_output
    from .progress import StderrProgress

    out = Path(args.output)
    check_output(args.output, args.overwrite, inputs=[args.input])
    _check_classifier(args)
    _check_centroid_options(args)
    _smlm.check(args)
    spec = build_spec(args)
    try:
        result = run_job(run_spec(spec), on_event=StderrProgress(quiet=args.quiet))
    except SpecError as exc:
        raise CliError(exc.for_cli()) from None
    if result.ignored_pixel_size is not None:
        print(
            f"celldenoise spots: ignoring the image's pixel size "
            f"({result.ignored_pixel_size:.3g} nm); give --pixel-size",
            file=sys.stderr,
        )
    if result.centroid_line is not None:
        print(result.centroid_line, file=sys.stderr)
    _smlm.report(args, result)
    if not args.quiet:
        if result.n_spots == 0:
            print(
                f"no spots found in {args.input}: wrote the header only to {out}", file=sys.stderr
            )
        else:
            note = _z_note(result.facts.attrs)
            print(f"{result.n_spots} spots ({result.n_good} good){note} -> {out}", file=sys.stderr)
    return 0


def _z_note(attrs: dict) -> str:
    """How a volume's spots are counted: merged in Z, or 2D spots per slice."""
    merged = attrs.get("merged_in_z")
    if merged is not None:
        return f", merged in Z from {merged} 2D fits"
    if "Z" in str(attrs.get("axes", "")):
        return ", 2D spots per slice (not merged in Z)"
    return ""


def build_spec(args: argparse.Namespace):
    """The :class:`SpotsSpec` of the command line; CliError (exit 2) for bad options."""
    from pydantic import ValidationError

    from ..config import format_validation_error
    from ..jobs.specs import CentroidTraining, InputSpec, SpotsSpec

    try:
        config = build_config(args, args.pixel_size or 100.0)
    except ValidationError as exc:
        raise CliError(format_validation_error(exc)) from None
    training = None
    if args.train_centroid:
        training = CentroidTraining(
            kind=args.train_centroid,
            source=args.centroid_from,
            epochs=args.centroid_epochs,
            output=args.centroid_out,
        )
    return SpotsSpec(
        input=InputSpec(path=args.input, axes=args.axes, channel=args.channel),
        config=config,
        pixel_size=args.pixel_size,
        classify=args.classify,
        centroid=args.centroid,
        train_centroid=training,
        smlm=_smlm.steps(args),
        output=args.output,
        overwrite=args.overwrite,
    )


def _check_classifier(args: argparse.Namespace) -> None:
    """Open ``--classify`` before any work: a missing, damaged or untrusted file is one line."""
    if not args.classify:
        if args.trust:
            raise CliError("--trust is only used with --classify")
        return
    path = Path(args.classify)
    if not path.is_file():
        raise CliError(f"{args.classify}: no such classifier or rules file")
    from ..spots.classifier_file import is_pickle, trust_pickle
    from ..spots.classify import RuleSet, SpotClassifier

    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            RuleSet.load(path)
            return
        if args.trust and is_pickle(path):
            trust_pickle(path)  # the job opens the file again; this grant is for its content
        SpotClassifier.load(path)
    except (ValueError, OSError) as exc:
        raise CliError(f"--classify: {exc}") from None


def _check_centroid_options(args: argparse.Namespace) -> None:
    """Refuse centroid options that do not make sense together, before any work."""
    if args.train_centroid and not args.centroid_out:
        raise CliError("--train-centroid needs --centroid-out MODEL.npz")
    if args.train_centroid and args.centroid and args.centroid_from == "fit":
        raise CliError("--train-centroid from fits needs a fit: drop --centroid")
    if args.centroid_out and Path(args.centroid_out).exists() and not args.overwrite:
        raise CliError(f"{args.centroid_out}: already exists (use --overwrite to replace it)")
    if args.centroid_epochs < 1:
        raise CliError("--centroid-epochs must be >= 1")


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
