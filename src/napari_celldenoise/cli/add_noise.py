"""``celldenoise add-noise IN -o OUT --kind {gaussian,poisson-gaussian,salt-pepper} ...``."""

from __future__ import annotations

import argparse

from ._classical import add_output_options
from .errors import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "add-noise",
        help="add Gaussian, Poisson-Gaussian or salt-and-pepper noise (demos, tests)",
        description="Add noise to IN and write OUT (OME-TIFF, same shape, axes and scale). "
        "gaussian: + N(0, sigma^2). poisson-gaussian: a * Poisson(IN / a) + N(0, b), so that "
        "variance = a * IN + b. salt-pepper: a fraction --amount of the pixels set to --high "
        "(salt) or --low (pepper); defaults: the integer dtype's range, or the data's min and "
        "max for float data. Integer input is written as float32 unless --keep-dtype.",
    )
    p.add_argument("input", metavar="IN", help="TIFF, OME-TIFF, ImageJ TIFF or PNG")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="OME-TIFF to write")
    p.add_argument("--kind", required=True, choices=["gaussian", "poisson-gaussian", "salt-pepper"])
    p.add_argument("--sigma", type=float, help="gaussian: noise standard deviation (> 0)")
    p.add_argument("--a", type=float, help="poisson-gaussian: gain a (> 0)")
    p.add_argument(
        "--b",
        type=float,
        default=0.0,
        help="poisson-gaussian: Gaussian variance b (>= 0, default 0)",
    )
    p.add_argument(
        "--amount",
        type=float,
        default=0.05,
        help="salt-pepper: fraction of pixels hit (0-1, default 0.05)",
    )
    p.add_argument(
        "--salt-fraction",
        type=float,
        default=0.5,
        help="salt-pepper: share of salt among the hits (0-1, default 0.5)",
    )
    p.add_argument("--low", type=float, default=None, help="salt-pepper: pepper value")
    p.add_argument("--high", type=float, default=None, help="salt-pepper: salt value")
    p.add_argument("--seed", type=int, default=None, help="random seed (reproducible noise)")
    add_output_options(p)
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    import math

    for name in ("sigma", "a", "b", "amount", "salt_fraction", "low", "high"):
        v = getattr(args, name)
        if v is not None and not math.isfinite(v):
            raise CliError(f"--{name.replace('_', '-')} must be a finite number")
    if args.kind == "gaussian":
        if args.sigma is None or args.sigma <= 0:
            raise CliError("--kind gaussian needs --sigma > 0")
    elif args.kind == "poisson-gaussian":
        if args.a is None or args.a <= 0:
            raise CliError("--kind poisson-gaussian needs --a > 0")
        if args.b < 0:
            raise CliError(f"--b must be >= 0, got {args.b}")
    else:
        if not 0 <= args.amount <= 1:
            raise CliError(f"--amount must be between 0 and 1, got {args.amount}")
        if not 0 <= args.salt_fraction <= 1:
            raise CliError(f"--salt-fraction must be between 0 and 1, got {args.salt_fraction}")


def build_spec(args: argparse.Namespace):
    """The :class:`AddNoiseSpec` of the command line; CliError (exit 2) for bad options."""
    from ..jobs.specs import AddNoiseSpec, InputSpec, NoiseConfig

    _check(args)
    return AddNoiseSpec(
        input=InputSpec(path=args.input, axes=args.axes),
        config=NoiseConfig(
            noise=args.kind,
            sigma=args.sigma,
            a=args.a,
            b=args.b,
            amount=args.amount,
            salt_fraction=args.salt_fraction,
            low=args.low,
            high=args.high,
            seed=args.seed,
            keep_dtype=bool(args.keep_dtype),
        ),
        output=args.output,
        overwrite=args.overwrite,
    )


def run(args: argparse.Namespace) -> int:
    from ..jobs import run as run_job
    from ..jobs.run_spec import run_spec
    from ..jobs.specs import SpecError
    from ._classical import check_output

    spec = build_spec(args)
    check_output(args.output, args.overwrite, inputs=[args.input])
    try:
        result = run_job(run_spec(spec))
    except SpecError as exc:
        raise CliError(str(exc)) from None
    print(f"{result.output}: {args.kind} noise, {result.axes} {list(result.shape)} {result.dtype}")
    return 0
