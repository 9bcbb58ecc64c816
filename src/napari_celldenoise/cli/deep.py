"""``celldenoise train`` and ``celldenoise predict``: self-supervised deep denoising.

TensorFlow is imported only when a command runs (in this process: the CLI has no viewer).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..deep.config import PredictConfig
from ..deep.masks import MIN_MASK_CORRELATION
from ..deep.registry import METHODS, NAMES
from .errors import CliError
from .progress import StderrProgress, StopOnInterrupt


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser(
        "train",
        help="train a denoiser (N2V, structN2V, PG blind-spot; CycleGAN for EM) on a noisy stack",
        description="Train a denoising network on the noisy image itself (no clean data needed). "
        "IN is a TIFF stack (e.g. TYX: frames are samples; ZYX trains a 3D N2V when --dims 3). "
        "MODEL_DIR receives the config, best and last weights, noise parameters, history and "
        "a thumbnail; it must be new or empty unless --resume.",
    )
    t.add_argument("input", metavar="IN", help="noisy TIFF/PNG stack")
    t.add_argument(
        "--method",
        required=True,
        choices=NAMES,
        help="; ".join(f"{m.name}: {m.summary}" for m in METHODS.values()),
    )
    t.add_argument("-o", "--output", required=True, metavar="MODEL_DIR", help="model folder")
    t.add_argument(
        "--epochs",
        type=int,
        default=20,
        help="epochs to train in this run; with --resume they are ADDED to the epochs "
        "already trained (default 20). pg-blindspot's learning rate decays to 0 over this "
        "run's epochs (cosine): choose them for the time you have",
    )
    t.add_argument("--steps", type=int, default=100, help="batches per epoch (default 100)")
    t.add_argument("--patch", type=int, help="patch side in pixels (default 64; cyclegan 256)")
    t.add_argument("--batch", type=int, help="patches per batch (default 16; cyclegan 1)")
    t.add_argument(
        "--target",
        metavar="REF|auto",
        help="cyclegan's clean domain: synthetic targets made from REF, a clean (simulated) "
        "image of the crystal at any zoom and rotation, or 'auto' from the lattice and motif "
        "measured on IN (default auto)",
    )
    t.add_argument(
        "--mask",
        metavar="FILE|auto",
        default=None,
        help="structN2V mask: a text file of 0/1 rows (centre = 1; for --dims 3, ZYX planes "
        "separated by a blank line), or 'auto' to derive it from the noise autocorrelation: "
        f"the neighbours correlated above {MIN_MASK_CORRELATION} (weaker correlation costs less "
        "than hiding them; default auto for structN2V)",
    )
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue MODEL_DIR from its last weights for --epochs more epochs (the "
        "network, patch, validation split and seed stay the model's)",
    )
    t.add_argument("--axes", help="axes of IN, e.g. TYX or ZYX (default: from the file)")
    t.add_argument(
        "--val-region",
        metavar="Y0:Y1,X0:X1",
        help="take the validation patches from this region (pixels, stop exclusive; "
        "Z0:Z1,Y0:Y1,X0:X1 for --dims 3) and the training patches from outside it "
        "(default: a random 10%% of the patches)",
    )
    t.add_argument("--dims", type=int, choices=[2, 3], default=2, help="2D or 3D network")
    t.add_argument(
        "--learning-rate",
        type=float,
        help="Adam's (peak) learning rate (default 1e-3 for pg-blindspot, 4e-4 otherwise)",
    )
    t.add_argument(
        "--structure-share",
        type=float,
        metavar="F",
        help="PG blind-spot: share (0-1) of training patches drawn in proportion to their "
        "structure instead of uniformly, so a mostly-background field does not spend most "
        "steps on background (default 0.5)",
    )
    t.add_argument(
        "--precision",
        choices=["auto", "float32", "bfloat16"],
        help="PG blind-spot's arithmetic: auto = bfloat16 on a CPU with bfloat16 instructions "
        "and no GPU (1.5x the steps per CPU-minute), float32 otherwise (default auto)",
    )
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=run_train)

    p = sub.add_parser(
        "predict",
        help="denoise an image with a trained model folder",
        description="Denoise IN with MODEL_DIR's best weights, tiled with overlap; OUT has IN's "
        "shape, axes, pixel size and intensity units (normalisation undone).",
    )
    p.add_argument("model", metavar="MODEL_DIR")
    p.add_argument("input", metavar="IN")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="OME-TIFF to write")
    defaults = {name: field.default for name, field in PredictConfig.model_fields.items()}
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=defaults["tta"],
        help="PG blind-spot: adapt to this image first (default on)",
    )
    tta_steps = defaults["tta_steps"]
    p.add_argument(
        "--tta-steps",
        type=int,
        default=tta_steps,
        metavar="N",
        help=f"PG blind-spot: fine-tuning batches of test-time adaptation (default {tta_steps}; "
        "on FMD 200 and 400 added 0.06 and 0.14 dB to 100, for twice and four times the time)",
    )
    p.add_argument(
        "--ensemble",
        action="store_true",
        help="average over the 8 flips/90-degree rotations of each tile (8x the time)",
    )
    p.add_argument(
        "--tile",
        type=int,
        default=defaults["tile"],
        help=f"tile side in pixels (default {defaults['tile']})",
    )
    p.add_argument("--weights", choices=["best", "last"], default=defaults["weights"])
    p.add_argument("--axes", help="axes of IN (default: from the file)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=run_predict)

    e = sub.add_parser(
        "export",
        help="export an N2V/structN2V model folder to the BioImage Model Zoo format",
        description="Package MODEL_DIR (an N2V or structN2V model) as a bioimage.io model zip: "
        "TensorFlow SavedModel weights, the folder's normalisation as pre/post-processing "
        "(output in the input's units), a test input/output, README and citation. The package "
        "is checked with bioimage.io's own test inference before it is written.",
    )
    e.add_argument("model", metavar="MODEL_DIR")
    e.add_argument("-o", "--output", required=True, metavar="OUT.zip", help="package to write")
    e.add_argument(
        "--test-image",
        metavar="IN",
        help="image to cut the test input from (default: the validation patch saved in "
        "MODEL_DIR at training)",
    )
    e.add_argument("--axes", help="axes of --test-image (default: from the file)")
    e.add_argument("--name", help="model name (default: method and folder name)")
    e.add_argument("--author", action="append", default=[], help="author name (repeatable)")
    e.add_argument(
        "--check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run bioimage.io's test inference before writing OUT (default on)",
    )
    e.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    e.set_defaults(func=run_export)


def _read(path: str, axes: str | None):
    from ..deep.file_job import read_input
    from ..jobs.specs import InputSpec, SpecError

    try:
        return read_input(InputSpec(path=path, axes=axes))
    except SpecError as exc:
        raise CliError(exc.for_cli()) from None


def _strip_singleton_channel(image):
    """``(data, axes)`` without a length-1 C axis (a view: lazy data stays lazy)."""
    from ..deep.file_job import strip_singleton_channel

    return strip_singleton_channel(image)


def train_config(args: argparse.Namespace, data, axes: str):
    """The TrainConfig of ``celldenoise train``'s options (also ``remote submit``'s) on the
    image ``data`` (its structN2V mask found from it with ``--mask auto``)."""
    from ..deep.config import TrainConfig, config_class, parse_region
    from ..deep.model import ModelFolderError

    if args.val_region and args.resume:
        raise CliError(
            "--val-region: a continued run keeps the model's validation split (its best weights "
            "were chosen on it)"
        )
    given = {"epochs": args.epochs, "steps": args.steps, "dims": args.dims, "seed": args.seed}
    for option in ("patch", "batch"):  # the method's own default when not given
        if getattr(args, option, None) is not None:
            given[option] = getattr(args, option)
    # the settings of some methods only: refused for the others, as the config refuses them
    for option, field in (("learning_rate", "learning_rate"), ("structure_share",
                          "structure_share"), ("precision", "precision")):  # fmt: skip
        if getattr(args, option) is not None:
            given[field] = getattr(args, option)
    cls = config_class(args.method)
    if args.mask and "mask" not in cls.model_fields:
        users = [n for n, m in METHODS.items() if "mask" in m.config.model_fields]
        raise CliError(f"--mask is only used with --method {' or '.join(users)}")
    target = getattr(args, "target", None)
    if target is not None and "target" not in cls.model_fields:
        users = [n for n, m in METHODS.items() if "target" in m.config.model_fields]
        raise CliError(f"--target is only used with --method {' or '.join(users)}")
    if target is not None:
        given["target"] = "auto" if target == "auto" else "reference"
    if args.resume:  # the folder's architecture (method, mask, dims) is kept
        from ..deep.config import resume_config
        from ..deep.model import ModelFolder

        try:
            saved = ModelFolder(args.output).read_info().train
            return resume_config(saved, given)
        except ModelFolderError as exc:
            raise CliError(str(exc)) from None
    if "mask" in cls.model_fields:
        given["mask"] = _mask(args.mask or "auto", data, axes, args.dims)
    if args.val_region:
        try:
            given["val_region"] = parse_region(args.val_region)
        except ValueError as exc:
            raise CliError(f"--val-region: {exc}") from None
    return TrainConfig(method=args.method, **given)


def run_train(args: argparse.Namespace) -> int:
    from ..deep.data import DeepInputError
    from ..deep.model import ModelFolderError

    image = _read(args.input, args.axes)
    data, axes = _strip_singleton_channel(image)
    config = train_config(args, data, axes)
    from ..deep.file_job import run_train_spec
    from ..jobs import run
    from ..jobs.specs import train_spec

    target = getattr(args, "target", None)
    extra = {"reference": target} if target not in (None, "auto") else None
    spec = train_spec(
        args.input, args.output, config, axes=args.axes, resume=args.resume, extra=extra
    )
    try:
        if extra:
            _read(extra["reference"], None)  # a bad reference is refused before training
        with StopOnInterrupt() as stop:
            job = run_train_spec(spec, should_stop=stop, image=image)
            info = run(job, StderrProgress())
    except (DeepInputError, ModelFolderError) as exc:
        raise CliError(str(exc)) from None
    best = f"{info.best_val_loss:.5g}" if info.best_val_loss is not None else "none"
    print(f"{args.output}: {info.epochs_done} epochs, best val loss {best}")
    if stop.requested:
        print("stopped: best and last weights kept; continue with --resume", file=sys.stderr)
        return 130
    return 0


def _mask(spec: str, data, axes: str, dims: int) -> list:
    """``--mask FILE`` (0/1 rows) or ``auto`` (from the noise autocorrelation), or CliError."""
    from ..deep.config import parse_mask
    from ..deep.data import DeepInputError

    if spec == "auto":
        from ..deep.masks import mask_from_data

        try:
            proposal = mask_from_data(data, axes, dims=dims)
        except DeepInputError as exc:
            raise CliError(f"--mask auto: {exc}") from None
        print(f"--mask auto: {proposal.describe()}", file=sys.stderr)
        return proposal.mask.tolist()
    try:
        return parse_mask(Path(spec).read_text())
    except OSError as exc:
        raise CliError(f"--mask: cannot read {spec}: {exc.strerror}") from None
    except ValueError as exc:
        raise CliError(f"--mask {spec}: {exc}") from None


def run_predict(args: argparse.Namespace) -> int:
    from ..deep.model import ModelFolder, ModelFolderError
    from ..jobs.specs import predict_spec
    from ._classical import check_output

    try:
        ModelFolder(args.model).read_info()
    except ModelFolderError as exc:
        raise CliError(str(exc)) from None
    check_output(args.output, args.overwrite, inputs=[args.input])
    config = PredictConfig(
        tile=args.tile,
        tta=args.tta,
        tta_steps=args.tta_steps,
        weights=args.weights,
        ensemble=args.ensemble,
    )
    spec = predict_spec(
        args.model, args.input, args.output, config, axes=args.axes, overwrite=args.overwrite
    )
    _run_spec(spec)
    print(args.output)
    return 0


def _run_spec(spec) -> object:
    """Run ``spec`` with progress on stderr; bad input becomes one line (exit 2)."""
    from ..deep.data import DeepInputError
    from ..deep.model import ModelFolderError
    from ..jobs import run
    from ..jobs.run_spec import run_spec
    from ..jobs.specs import SpecError

    try:
        return run(run_spec(spec), StderrProgress())
    except (DeepInputError, ModelFolderError) as exc:
        raise CliError(str(exc)) from None
    except SpecError as exc:
        raise CliError(exc.for_cli()) from None


def run_export(args: argparse.Namespace) -> int:
    from ..deep.export import ExportCheckFailed
    from ..jobs.specs import ExportSpec, InputSpec

    spec = ExportSpec(
        model=args.model,
        output=args.output,
        test_image=InputSpec(path=args.test_image, axes=args.axes) if args.test_image else None,
        name=args.name,
        authors=tuple(args.author),
        check=args.check,
        overwrite=args.overwrite,
    )
    try:
        _run_spec(spec)
    except ExportCheckFailed as exc:
        print(str(exc), file=sys.stderr)
        print(f"celldenoise export: the package failed bioimage.io's test; {args.output} "
              "not written", file=sys.stderr)  # fmt: skip
        return 1
    print(args.output)
    return 0
