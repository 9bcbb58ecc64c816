"""``celldenoise filter IN -o OUT --method M [--param NAME=VALUE ...] [--auto-tune] [--vst]``.

Writes OUT (OME-TIFF) with the input's shape, axes and scale, in the input's intensity units:
float input stays float, integer input becomes float32 unless ``--keep-dtype``.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..classical.params import ParamError, parse_assignments
from ..classical.registry import METHODS, describe, get_method
from ..jobs.specs import ClassicalConfig, FilterSpec, InputSpec
from ._classical import add_output_options
from .errors import CliError
from .progress import StderrProgress


def _epilog() -> str:
    lines = ["methods and parameters (NAME=default  range  meaning):"]
    for m in METHODS.values():
        lines.append(f"  {m.name}: {m.summary}")
        lines.extend(f"      {line.split('.', 1)[1]}" for line in describe(m))
    lines.append(
        "Intensity parameters are in the image's units (with --vst: in stabilised units, noise "
        "sigma 1); their defaults are multiples of the estimated noise sigma."
    )
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "filter",
        help="denoise an image or stack with a classical filter or repair salt-and-pepper noise",
        description="Denoise IN with one method and write OUT as OME-TIFF with the same shape, "
        "axes and scale, in the input's intensity units.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="IN", help="TIFF, OME-TIFF, ImageJ TIFF or PNG")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="OME-TIFF to write")
    p.add_argument("--method", required=True, metavar="M", help=f"one of: {', '.join(METHODS)}")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a parameter (repeatable); see the list below",
    )
    p.add_argument(
        "--auto-tune",
        action="store_true",
        help="choose the main parameter by the Noise2Self J-invariant loss "
        "(on the middle plane or block) before filtering",
    )
    p.add_argument(
        "--vst",
        action="store_true",
        help="filter inside a generalized Anscombe transform (Poisson-Gaussian "
        "noise, parameters estimated from the image) with the exact unbiased inverse",
    )
    p.add_argument(
        "--noise-a",
        type=float,
        default=None,
        metavar="A",
        help="Poisson gain a for --vst (default: estimated)",
    )
    p.add_argument(
        "--noise-b",
        type=float,
        default=None,
        metavar="B",
        help="Gaussian variance b for --vst (default: estimated)",
    )
    p.add_argument(
        "--3d",
        dest="three_d",
        action="store_true",
        help="filter ZYX volumes (TYX without Z) as true 3D blocks instead of plane by plane",
    )
    add_output_options(p)
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (parameters, auto-tune curve, timing)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..classical.apply import describe_params
    from ..jobs import run as run_job
    from ..jobs.run_spec import run_spec
    from ..jobs.specs import SpecError
    from ._classical import check_output, print_json

    spec = build_spec(args)
    check_output(args.output, args.overwrite, inputs=[args.input])
    try:
        result = run_job(run_spec(spec), on_event=StderrProgress(quiet=args.quiet))
    except SpecError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print_json(result.to_dict())
    else:
        method = get_method(result.method)
        print(
            f"{result.output}: {method.name} {describe_params(method, result.params)}"
            f"{' (vst)' if result.gat is not None else ''}, {result.axes} {list(result.shape)} "
            f"{result.dtype}, {result.seconds:.2f} s"
        )
    return 0


def build_spec(args: argparse.Namespace) -> FilterSpec:
    """The :class:`FilterSpec` of the command line; CliError (exit 2) for bad options."""
    try:
        method = get_method(args.method)
        given: dict[str, Any] = parse_assignments(args.param)
        method.resolve(given)  # unknown names and out-of-range values, before reading
    except ParamError as exc:
        raise CliError(str(exc)) from None
    if (args.noise_a is None) != (args.noise_b is None):
        raise CliError("give both --noise-a and --noise-b, or neither")
    if args.noise_a is not None and args.noise_a < 0:
        raise CliError(f"--noise-a must be >= 0, got {args.noise_a}")
    if args.auto_tune and method.main is None:
        raise CliError(f"--auto-tune is not available for {method.name}")
    if args.auto_tune and method.main in given:
        raise CliError(f"--auto-tune chooses {method.main}: do not also set it with --param")
    given_noise = args.vst and args.noise_a is not None
    return FilterSpec(
        input=InputSpec(path=args.input, axes=args.axes),
        config=ClassicalConfig(
            method=method.name,
            params=given,
            three_d=args.three_d,
            vst=args.vst,
            noise_a=args.noise_a if given_noise else None,
            noise_b=args.noise_b if given_noise else None,
            auto_tune=args.auto_tune,
            keep_dtype=bool(args.keep_dtype),
        ),
        output=args.output,
        overwrite=args.overwrite,
    )
