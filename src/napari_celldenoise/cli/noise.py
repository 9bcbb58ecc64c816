"""``celldenoise noise IN [--stack]``: noise model of an image as one JSON object.

Prints ``model`` (poisson-gaussian or gaussian), ``a`` and ``b`` of ``variance = a * mean + b``,
``sigma`` (Gaussian noise sigma) and ``fit`` (r2, rel_rmse, n_bins, n_samples, source).
"""

from __future__ import annotations

import argparse

import numpy as np

from .errors import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "noise",
        help="estimate Poisson-Gaussian (a, b) and Gaussian sigma; one JSON object",
        description="Estimate the noise of IN: variance = a * mean + b (Poisson-Gaussian) and the "
        "Gaussian sigma. From one image (smooth regions, robust fit; planes of a stack are "
        "pooled) or, with --stack, from repeated frames of the same field (per-pixel mean and "
        "variance across frames).",
    )
    p.add_argument("input", metavar="IN", help="TIFF, OME-TIFF, ImageJ TIFF or PNG")
    p.add_argument(
        "--stack", action="store_true", help="IN holds repeated frames of one field along T (or Z)"
    )
    p.add_argument(
        "--frames-axis",
        default=None,
        metavar="A",
        help="axis of the repeated frames for --stack (default T, else Z)",
    )
    p.add_argument(
        "--bins", action="store_true", help="include the binned (mean, variance) points in the JSON"
    )
    p.add_argument("--plot", metavar="PNG", help="save the variance-against-mean plot")
    p.add_argument("--axes", help="override the axes read from the file, e.g. TYX")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..classical.noise import estimate_noise, estimate_noise_stack
    from ._classical import print_json, read

    image = read(args.input, args.axes)
    if image.rgb:
        raise CliError(f"{args.input}: RGB images are not supported")
    data = np.asarray(image.data, dtype=np.float32)
    if args.stack:
        axis = (args.frames_axis or ("T" if "T" in image.axes else "Z")).upper()
        if axis not in image.axes:
            raise CliError(
                f"{args.input}: --stack needs repeated frames along T or Z, axes are {image.axes}"
            )
        moved = np.moveaxis(data, image.axes.index(axis), 0)
        if moved.shape[0] < 2:
            raise CliError(f"{args.input}: --stack needs at least 2 frames along {axis}")
        rest = [a for a in image.axes if a != axis]
        frames = moved.reshape(moved.shape[0], -1, *moved.shape[-2:]) if len(rest) > 2 else moved
        try:
            fit = estimate_noise_stack(frames.reshape(frames.shape[0], -1, frames.shape[-1]))
        except ValueError as exc:
            raise CliError(f"{args.input}: {exc}") from None
    else:
        if min(data.shape[-2:]) < 8:
            raise CliError(f"{args.input}: image too small to estimate noise (need 8x8 pixels)")
        try:
            fit = estimate_noise(data.reshape(-1, *data.shape[-2:]))
        except ValueError as exc:
            raise CliError(f"{args.input}: {exc}") from None
    out = fit.to_dict()
    if not args.bins:
        out.pop("bins")
    out = {"path": args.input, **out}
    if args.plot:
        from ..classical.plots import save_noise_plot

        save_noise_plot(fit, args.plot, title=args.input)
        out["plot"] = args.plot
    print_json(out)
    return 0
