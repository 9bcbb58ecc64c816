"""``celldenoise simulate-smlm``: a blinking single-molecule movie with known truth."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import CliError
from .spots import add_simulation_camera


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "simulate-smlm",
        help="simulate a blinking single-molecule movie with a known drift (OME-TIFF + truth)",
        description="Write a movie of blinking emitters on a known structure (a grid of known "
        "spacing, labelled lines, or eight-emitter rings) under a known drift, as uint16 camera "
        "frames with shot and read noise (OME-TIFF with its pixel size), and the truth: every "
        "emitter-frame that is on as a spot CSV (x/y on the camera, drift included; x_sample/"
        "y_sample without it; emitter, burst, photons) and the drift of every frame.",
    )
    s.add_argument("-o", "--output", metavar="OUT.tif", required=True, help="OME-TIFF to write")
    s.add_argument("--truth", metavar="TRUTH.csv", help="CSV of the true localizations")
    s.add_argument(
        "--drift-truth", metavar="DRIFT.csv", help="CSV of the true drift (frame, x/y [nm])"
    )
    s.add_argument("--frames", type=int, default=1000, help="number of frames (default 1000)")
    s.add_argument("--size", type=int, nargs=2, default=[64, 64], metavar=("H", "W"))
    s.add_argument("--structure", choices=["grid", "lines", "rings"], default="grid")
    s.add_argument(
        "--spacing",
        type=float,
        metavar="NM",
        help="grid pitch (400), label spacing along lines (10) or ring pitch (500), in nm",
    )
    s.add_argument(
        "--drift", type=float, default=200.0, metavar="NM", help="largest drift (default 200 nm)"
    )
    s.add_argument("--p-on", type=float, default=0.002, help="off -> on per frame (0.002)")
    s.add_argument("--p-off", type=float, default=0.5, help="on -> off per frame (0.5)")
    s.add_argument("--p-bleach", type=float, default=0.0, help="on -> bleached per frame (0)")
    s.add_argument("--photons", type=float, default=1500.0, help="mean photons per on-frame")
    s.add_argument("--background", type=float, default=10.0, help="photons per px (10)")
    s.add_argument("--sigma", type=float, default=1.3, help="PSF sigma in px (1.3)")
    s.add_argument("--fiducials", type=int, default=0, help="bright markers in 95%% of frames")
    add_simulation_camera(s)
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io import ImageData, write_ome_tiff
    from ..io.spots_csv import write_spots_csv
    from ..spots.simulate import Camera
    from ..spots.smlm_simulate import Blinking, LazyMovie, simulate_smlm, truth_table

    if args.frames < 1 or min(args.size) < 8:
        raise CliError("--frames must be >= 1 and --size at least 8 8")
    if not args.pixel_size > 0:
        raise CliError(f"--pixel-size must be positive, got {args.pixel_size:g}")
    for path in (args.truth, args.drift_truth):
        if path and Path(path).exists() and not args.overwrite:
            raise CliError(f"{path}: already exists (use --overwrite to replace it)")
    try:
        blinking = Blinking(
            p_on=args.p_on, p_off=args.p_off, p_bleach=args.p_bleach, photons=args.photons
        )
        sim = simulate_smlm(
            args.frames,
            tuple(args.size),
            structure_kind=args.structure,
            spacing_nm=args.spacing,
            pixel_size=args.pixel_size,
            blinking=blinking,
            drift_nm=args.drift,
            sigma=args.sigma,
            background=args.background,
            fiducials=args.fiducials,
            seed=args.seed,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    camera = Camera(args.offset, args.sensitivity, args.read_noise, args.em_gain, args.qe)
    um = args.pixel_size / 1000.0
    movie = LazyMovie(sim, camera=camera, seed=args.seed)  # drawn plane by plane as written
    image = ImageData(
        movie, "TYX", scale={"Y": um, "X": um}, units={"Y": "µm", "X": "µm"}, lazy=True
    )
    write_ome_tiff(args.output, image, overwrite=args.overwrite)
    msg = (
        f"{args.frames} frames, {len(sim.emitters)} emitters ({args.structure}), "
        f"{len(sim.truth)} emitter-frames on -> {args.output}"
    )
    if args.truth:
        truth = truth_table(sim)
        write_spots_csv(args.truth, truth, overwrite=True)
        msg += f", truth -> {args.truth}"
    if args.drift_truth:
        _write_drift(args.drift_truth, sim.drift)
        msg += f", drift -> {args.drift_truth}"
    print(msg, file=sys.stderr)
    return 0


def _write_drift(path: str, drift) -> None:
    """The drift as a CSV: ``frame`` (1-based, as in the spot CSV), ``x [nm]``, ``y [nm]``."""
    import pandas as pd

    from ..atomic import atomic_path

    frame = pd.DataFrame({"frame": drift.frames + 1, "x [nm]": drift.x_nm, "y [nm]": drift.y_nm})
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(frame.to_csv(index=False, float_format="%.4f"), encoding="utf-8")
