"""``celldenoise metrics IN REF``: PSNR, SSIM and affine-fitted PSNR of IN against REF (JSON)."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ..io import ImageData
from .errors import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "metrics",
        help="PSNR, SSIM and affine-fitted PSNR of an image against a reference; one JSON object",
        description="Compare IN with the reference REF (same shape). PSNR's data range is the "
        "reference dtype's range for integer references (255 for 8-bit), the reference's "
        "max - min for float ones, or --data-range. SSIM is averaged over YX planes. "
        "psnr_affine first fits IN to REF by least squares (alpha * IN + beta). "
        'Colour (RGB) and multichannel images are scored per channel, under "channels"; '
        "a PNG with a one-colour lookup table is one intensity channel.",
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
        channels = split_channels(image)
        if channels is None:
            values = compare(np.asarray(image.data), np.asarray(ref.data), args.data_range)
        else:
            refs = split_channels(ref) or []  # same shape, so the same channels in order
            values = {
                "channels": {
                    name: compare(np.asarray(plane), np.asarray(other), args.data_range)
                    for (name, plane), (_, other) in zip(channels, refs, strict=True)
                }
            }
    except ShapeMismatch as exc:
        raise CliError(str(exc)) from None
    print_json({"input": args.input, "reference": args.reference, **values})
    return 0


def split_channels(image: ImageData) -> list[tuple[str, Any]] | None:
    """``(name, pixels)`` per colour sample (``S``: R, G, B, A) or channel (``C``), else None.

    Scores of colours or dyes are never averaged: each channel is compared on its own.
    """
    for letter in "SC":
        if letter in image.axes:
            axis = image.axes.index(letter)
            n = image.shape[axis]
            names = image.channel_names if letter == "C" else list("RGBA"[:n])
            return [(names[i], np.take(image.data, i, axis=axis)) for i in range(n)]
    return None
