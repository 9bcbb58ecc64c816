"""``celldenoise metrics IN REF``: PSNR, SSIM and affine-fitted PSNR of IN against REF (JSON)."""

from __future__ import annotations

import argparse

import numpy as np

from .errors import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "metrics",
        help="PSNR, SSIM and affine-fitted PSNR of an image against a reference; one JSON object",
        description="Compare IN with the reference REF (same shape). PSNR's data range is the "
        "reference dtype's range for integer references (255 for 8-bit), the reference's "
        "max - min for float ones, or --data-range. SSIM is averaged over YX planes. "
        "psnr_affine first fits IN to REF by least squares (alpha * IN + beta).",
    )
    p.add_argument("input", metavar="IN", help="the image to score")
    p.add_argument("reference", metavar="REF", help="the reference (ground truth)")
    p.add_argument(
        "--data-range",
        type=float,
        default=None,
        metavar="R",
        help="peak value range for PSNR and SSIM",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..classical.metrics import ShapeMismatch, compare
    from ._classical import print_json, read

    if args.data_range is not None and not args.data_range > 0:
        raise CliError(f"--data-range must be > 0, got {args.data_range}")
    image = read(args.input)
    ref = read(args.reference)
    if image.shape != ref.shape:
        raise CliError(
            f"shape mismatch: {args.input} is {image.axes} {list(image.shape)}, "
            f"{args.reference} is {ref.axes} {list(ref.shape)}"
        )
    try:
        values = compare(np.asarray(image.data), np.asarray(ref.data), args.data_range)
    except ShapeMismatch as exc:
        raise CliError(str(exc)) from None
    print_json({"input": args.input, "reference": args.reference, **values})
    return 0
