"""``celldenoise add-noise IN -o OUT --kind {gaussian,poisson-gaussian,salt-pepper} ...``."""

from __future__ import annotations

import argparse

import numpy as np

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


def run(args: argparse.Namespace) -> int:
    from ..classical.apply import cast_output, output_dtype
    from ..classical.noise import add_gaussian, add_poisson_gaussian, add_salt_pepper
    from ..io import write_ome_tiff
    from ._classical import check_output, read

    _check(args)
    check_output(args.output, args.overwrite, inputs=[args.input])
    image = read(args.input, args.axes)
    data = np.asarray(image.data)
    if not np.issubdtype(data.dtype, np.number) or np.issubdtype(data.dtype, np.complexfloating):
        raise CliError(f"{args.input}: cannot add noise to {data.dtype} data")
    rng = np.random.default_rng(args.seed)
    if args.kind == "gaussian":
        noisy = add_gaussian(data, args.sigma, rng=rng)
    elif args.kind == "poisson-gaussian":
        if float(np.min(data)) < 0:
            raise CliError(f"{args.input}: poisson-gaussian needs non-negative intensities")
        noisy = add_poisson_gaussian(data, args.a, args.b, rng=rng)
    else:
        noisy = add_salt_pepper(
            data,
            args.amount,
            salt_fraction=args.salt_fraction,
            low=args.low,
            high=args.high,
            rng=rng,
        )
    dtype = output_dtype(data.dtype, args.keep_dtype)
    out = cast_output(np.asarray(noisy), dtype)
    written = write_ome_tiff(
        args.output, image.with_data(out), overwrite=args.overwrite, inputs=[args.input]
    )
    print(f"{written}: {args.kind} noise, {image.axes} {list(image.shape)} {out.dtype}")
    return 0
