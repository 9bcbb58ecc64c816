"""``celldenoise frc LOCS``: the resolution of a localization table (FRC, NeNA, uncertainty)."""

from __future__ import annotations

import argparse

from .errors import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "frc",
        help="resolution of a spot table: Fourier ring correlation, NeNA, median uncertainty",
        description="The Fourier ring correlation resolution of a spot table (CSV or Picasso "
        ".hdf5): its localizations split in two halves, each rendered as a histogram, the "
        "correlation over rings of spatial frequency smoothed and cut at 1/7 (Nieuwenhuizen "
        "et al., Nat. Methods 2013). Also the median localization uncertainty and the NeNA "
        "precision from neighbours in consecutive frames (Endesfelder et al. 2014).",
    )
    p.add_argument("input", metavar="LOCS", help="spot table: CSV or Picasso .hdf5")
    p.add_argument(
        "--pixel",
        type=float,
        metavar="NM",
        help="FRC render pixel in nm (default: half the median uncertainty, 1-20 nm)",
    )
    p.add_argument(
        "--split",
        choices=["random", "blocks"],
        default="random",
        help="halves of single localizations at random (default), or of blocks of frames, "
        "which keeps a molecule's repeated blinks in one half",
    )
    p.add_argument(
        "--block-frames",
        type=int,
        metavar="N",
        help="frames per block for --split blocks (default: a twentieth of the movie)",
    )
    p.add_argument("--repeats", type=int, default=3, metavar="N", help="splits averaged (3)")
    p.add_argument("--seed", type=int, default=0, help="of the random splits (default 0)")
    p.add_argument(
        "--camera-pixel",
        type=float,
        metavar="NM",
        help="camera pixel in nm of a Picasso file's positions (default: its Pixelsize)",
    )
    p.add_argument(
        "--include-bad",
        action="store_true",
        help="use every localization, not only those of class good",
    )
    p.add_argument(
        "--curve",
        metavar="OUT.csv",
        help="write the FRC curve (frequency [1/nm], frc, smoothed) to this CSV",
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUT.csv if it exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..jobs import run as run_job
    from ..spots.resolution import (
        ResolutionError,
        frc_table_job,
        precision_summary,
        summary_text,
    )
    from ._classical import check_output
    from ._locs import check_positive, good_rows, read_table
    from .progress import StderrProgress

    check_positive(args.pixel, "--pixel")
    check_positive(args.camera_pixel, "--camera-pixel")
    if args.repeats < 1:
        raise CliError(f"--repeats must be at least 1, got {args.repeats}")
    if args.block_frames is not None and args.block_frames < 1:
        raise CliError(f"--block-frames must be at least 1, got {args.block_frames}")
    if args.curve:
        check_output(args.curve, args.overwrite, inputs=[args.input])
    table = read_table(args.input, camera_pixel=args.camera_pixel)
    table = good_rows(table, args.input, include_bad=args.include_bad, what="measure")
    try:
        result = run_job(
            frc_table_job(
                table,
                pixel_nm=args.pixel,
                split=args.split,
                block_frames=args.block_frames,
                repeats=args.repeats,
                seed=args.seed,
            ),
            on_event=StderrProgress(),
        )
    except ResolutionError as exc:
        raise CliError(f"{args.input}: {exc}") from None
    if result.resolution_nm == result.resolution_nm:  # not NaN
        print(
            f"FRC resolution {result.resolution_nm:.1f} nm ({result.split} halves, "
            f"{args.repeats} splits, {result.pixel_nm:g} nm pixels, "
            f"{result.n_localizations:,} localizations)"
        )
    else:
        print(f"FRC resolution: none ({result.message})")
    print(summary_text(precision_summary(table)))
    if args.curve:
        _write_curve(args.curve, result, args.overwrite)
    return 0


def _write_curve(path: str, result, overwrite: bool) -> None:
    import pandas as pd

    from ..atomic import atomic_path

    frame = pd.DataFrame(
        {"frequency [1/nm]": result.frequency, "frc": result.frc, "smoothed": result.smoothed}
    )
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(frame.to_csv(index=False, float_format="%.6g"), encoding="utf-8")
