"""The single-molecule options of ``celldenoise spots``: ``--drift``, ``--merge``, ``--render``.

Drift correction and merging are steps of the spots job (:class:`~..jobs.specs.SmlmSteps`,
so a recorded spec replays them); the render is written after the job from the table it wrote.
"""

from __future__ import annotations

import argparse
import sys

from .errors import CliError

DEFAULT_GAP = 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "single-molecule localization",
        "for blinking (PALM/STORM/PAINT) movies: correct the drift, merge each molecule's "
        "blinks, render the super-resolution image",
    )
    g.add_argument(
        "--drift",
        choices=["rcc", "fiducials", "none"],
        default="none",
        help="correct the drift: rcc (redundant cross-correlation of time segments) or "
        "fiducials (bright markers in most frames); the raw positions stay in x_raw/y_raw "
        "(default none)",
    )
    g.add_argument(
        "--merge",
        metavar="RADIUS_NM:GAP",
        help="merge localizations within RADIUS_NM in consecutive frames, allowing GAP "
        f"missing frames (default {DEFAULT_GAP}), into one molecule with a photon-weighted "
        "position and summed photons (after the drift correction)",
    )
    g.add_argument(
        "--render",
        metavar="OUT.tif",
        help="also write the super-resolution render of the good localizations (OME-TIFF, nm)",
    )
    g.add_argument(
        "--magnification",
        type=float,
        default=10.0,
        metavar="M",
        help="camera pixels per render pixel for --render (default 10)",
    )


def parse_merge(text: str | None) -> tuple[float, int] | None:
    """``"RADIUS_NM:GAP"`` (or ``"RADIUS_NM"``) as ``(radius, gap)``; CliError when bad."""
    if text is None:
        return None
    radius, _, gap = text.partition(":")
    try:
        value = (float(radius), int(gap) if gap else DEFAULT_GAP)
    except ValueError:
        raise CliError(f"--merge: expected RADIUS_NM:GAP such as 50:1, got {text!r}") from None
    if not value[0] > 0 or value[1] < 0:
        raise CliError(f"--merge: the radius must be > 0 nm and the gap >= 0, got {text!r}")
    return value


def steps(args: argparse.Namespace):
    """The :class:`SmlmSteps` of the command line, or None when none was asked for."""
    from ..jobs.specs import SmlmSteps

    merge = parse_merge(args.merge)
    if args.drift == "none" and merge is None:
        return None
    return SmlmSteps(
        drift=args.drift,
        merge_radius_nm=merge[0] if merge else None,
        merge_gap=merge[1] if merge else DEFAULT_GAP,
    )


def check(args: argparse.Namespace) -> None:
    """Refuse bad single-molecule options before any work."""
    import numpy as np

    from ._classical import check_output

    parse_merge(args.merge)
    if not np.isfinite(args.magnification) or args.magnification <= 0:
        raise CliError(f"--magnification must be a positive number, got {args.magnification:g}")
    if args.render:
        if args.render == args.output:
            raise CliError("--render must name another file than -o")
        check_output(args.render, args.overwrite, inputs=[args.input])


def report(args: argparse.Namespace, result) -> None:
    """Write ``--render`` from the table written."""
    if not args.render:  # the drift and merge lines came as the job's log events
        return
    from ..jobs.provenance import SOFTWARE
    from ..spots.render import RenderError, render_table
    from .render import _history, write_render

    table = result.table
    if "class" in table:
        table = table[table["class"].astype(str) == "good"]
    if len(table) == 0:
        raise CliError(f"--render: no good localizations in {args.output}; nothing to render")
    method = (
        "gaussian"
        if "uncertainty" in table and table["uncertainty"].notna().any()
        else ("histogram")
    )
    try:
        rendered = render_table(table, magnification=args.magnification, method=method)
    except RenderError as exc:
        raise CliError(f"--render: {exc}") from None
    write_render(
        args.render,
        rendered,
        overwrite=args.overwrite,
        inputs=[args.input],
        provenance={"history": _history(args.output), "software": SOFTWARE},
    )
    if not args.quiet:
        rows, cols = rendered.image.shape
        print(
            f"{method} render of {len(table)} localizations, {rows} x {cols} px at "
            f"{rendered.pixel_nm:g} nm -> {args.render}",
            file=sys.stderr,
        )
