"""``celldenoise render LOCS -o OUT.tif``: a super-resolution image from a spot table (our CSV,
ThunderSTORM's, or Picasso's HDF5)."""

from __future__ import annotations

import argparse

from .errors import CliError

DEFAULT_MAGNIFICATION = 10.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render",
        help="render a super-resolution image (OME-TIFF, nm scale) from a spot table",
        description="Render the localizations of a spot CSV (ours or ThunderSTORM's) or of a "
        "Picasso .hdf5 as an "
        "OME-TIFF whose pixel is the camera pixel / MAGNIFICATION, its physical size in nm. "
        "histogram: localizations per pixel; gaussian: each localization a normalised "
        "Gaussian of its own uncertainty (at least half a render pixel). The image starts at "
        "0 nm, the camera frame's corner.",
    )
    p.add_argument(
        "input", metavar="LOCS", help="spot table: CSV (x [nm], y [nm], ...) or Picasso .hdf5"
    )
    p.add_argument("-o", "--output", metavar="OUT.tif", required=True, help="OME-TIFF to write")
    p.add_argument(
        "--magnification",
        type=float,
        default=DEFAULT_MAGNIFICATION,
        metavar="M",
        help=f"camera pixels per render pixel along each axis (default {DEFAULT_MAGNIFICATION:g})",
    )
    p.add_argument(
        "--camera-pixel",
        type=float,
        metavar="NM",
        help="camera pixel in nm (default: the table's, from its x [nm] / x [px] columns or "
        "a Picasso file's Pixelsize, else 100)",
    )
    p.add_argument(
        "--method",
        choices=["histogram", "gaussian"],
        default="gaussian",
        help="default gaussian",
    )
    p.add_argument(
        "--include-bad",
        action="store_true",
        help="render every localization, not only those of class good",
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUT.tif if it exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..jobs.provenance import SOFTWARE
    from ..spots.render import RenderError, render_table
    from ._classical import check_output
    from ._locs import check_positive, good_rows, read_table

    m = args.magnification
    if not np.isfinite(m) or m <= 0:
        raise CliError(f"--magnification must be a positive number, got {m:g}")
    check_positive(args.camera_pixel, "--camera-pixel")
    check_output(args.output, args.overwrite, inputs=[args.input])
    table = read_table(args.input, camera_pixel=args.camera_pixel)
    table = good_rows(table, args.input, include_bad=args.include_bad, what="render")
    camera = float(args.camera_pixel or table.attrs["pixel_size"])
    pixel_nm = camera / m
    if args.method == "gaussian" and "uncertainty" not in table:
        raise CliError(
            f"{args.input}: no 'uncertainty [nm]' column for the gaussian render "
            "(use --method histogram)"
        )
    try:
        rendered = render_table(table, magnification=m, method=args.method, camera_pixel=camera)
    except RenderError as exc:
        raise CliError(f"{args.input}: {exc}") from None
    write_render(
        args.output,
        rendered,
        overwrite=args.overwrite,
        inputs=[args.input],
        provenance={"history": _history(args.input), "software": SOFTWARE},
    )
    rows, cols = rendered.image.shape
    print(
        f"{args.output}: {args.method} render of {len(table)} localizations, "
        f"{rows} x {cols} px at {pixel_nm:g} nm (camera {camera:g} nm / {m:g})"
    )
    return 0


def write_render(path, rendered, **write_options) -> None:
    """Write a :class:`~..spots.render.Rendered` as a YX OME-TIFF with its pixel in nm
    (``write_options`` go to :func:`~..io.write_ome_tiff`)."""
    from ..io import ImageData, write_ome_tiff

    pixel_nm = rendered.pixel_nm
    image = ImageData(
        rendered.image, "YX", scale={"Y": pixel_nm, "X": pixel_nm}, units={"Y": "nm", "X": "nm"}
    )
    write_ome_tiff(path, image, **write_options)


def _history(path: str) -> list:
    """The specs that made the table (its provenance file's history and spec), oldest first:
    the render itself has no job spec yet, so the image records only where it came from."""
    from ..io.provenance import read_provenance

    try:
        earlier = read_provenance(path) or {}
    except (OSError, ValueError):
        return []
    if not isinstance(earlier.get("spec"), dict):
        return []
    return [*earlier.get("history", []), earlier["spec"]]
