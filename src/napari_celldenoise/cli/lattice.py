"""``celldenoise lattice IN [--json]``: lattice vectors, motif and noise of an atomic image.

Prints the real-space basis (lengths in pixels and in the file's unit, the angle between the
vectors, their orientation, a confidence), the motif (columns of the unit cell with their
relative intensities, the column width) and the Poisson-Gaussian noise; with ``--known-a`` the
pixel size that the known lattice constant implies. A field with no clear
lattice (vacuum, amorphous) exits with status 2 and "no lattice found".
"""

from __future__ import annotations

import argparse

import numpy as np

from .errors import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lattice",
        help="measure the crystal lattice (FFT), motif and noise of an atomic-resolution image",
        description="Measure the lattice of IN from its Fourier transform (Hann window, zero "
        "padding, parabola-refined peaks): basis vectors in pixels and physical units, angle, "
        "confidence; the motif by folding the image into the unit cell (column width, "
        "sublattice intensities); and the Poisson-Gaussian gain. Reads DM3/DM4, EMD, SER, "
        "MRC, TIFF and PNG.",
    )
    p.add_argument("input", metavar="IN", help="image file (2D, or a stack with --plane)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plane", type=int, default=0, help="plane of a stack to measure (default 0)")
    p.add_argument(
        "--min-cells",
        type=float,
        default=4.0,
        help="fewest lattice periods across the image a peak may stand for (default 4)",
    )
    p.add_argument(
        "--known-a",
        type=float,
        metavar="VALUE",
        help="the lattice constant a in the image's unit (0.316 for MoS2 in nm): prints the "
        "pixel size it implies and how far the file's pixel size is off",
    )
    p.add_argument("--axes", help="override the axes read from the file, e.g. ZYX")
    p.set_defaults(func=run)


def plane_of(image, index: int, path: str) -> np.ndarray:
    """One 2D plane of ``image`` (stacks: plane ``index`` of the flattened leading axes)."""
    if image.rgb or "C" in image.axes:
        raise CliError(f"{path}: needs a single-channel image, axes are {image.axes}")
    data = np.asarray(image.data)
    planes = data.reshape(-1, *data.shape[-2:])
    if not 0 <= index < len(planes):
        raise CliError(f"{path}: --plane {index} is out of range (0..{len(planes) - 1})")
    return planes[index].astype(np.float64)


def run(args: argparse.Namespace) -> int:
    from ..em.lattice import LatticeNotFound, analyse
    from ._classical import print_json, read

    image = read(args.input, args.axes)
    data = plane_of(image, args.plane, args.input)
    unit = image.units.get("X", "pixel")
    scale = (image.scale.get("Y", 1.0), image.scale.get("X", 1.0))
    if args.known_a is not None and not args.known_a > 0:
        raise CliError(f"--known-a must be positive, got {args.known_a}")
    try:
        result = analyse(
            data, scale=scale, unit=unit, min_cells=args.min_cells, known_a=args.known_a
        )
    except LatticeNotFound as exc:
        raise CliError(f"{args.input}: {exc}") from None
    except ValueError as exc:
        raise CliError(f"{args.input}: {exc}") from None
    out = {"path": args.input, "pixel_size": list(scale), **result}
    if args.json:
        print_json(out)
    else:
        from ..em.lattice import format_report

        print(format_report(out))
    return 0
