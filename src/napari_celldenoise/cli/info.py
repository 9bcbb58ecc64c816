"""``celldenoise info PATH [--json]``: what an image file holds."""

from __future__ import annotations

import argparse
import json

from ..config import ReaderConfig, parse_size
from ..io import read_image
from ..io.describe import describe, describe_text
from .errors import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="shape, dtype, axes, pixel size, channels and size of an image file",
        description="Print what an image file holds: shape, dtype, axes, scale with units, "
        "channel names, size on disk and whether it would open lazily. "
        "PATH may be a local file or gs://bucket/key.",
    )
    p.add_argument("path", metavar="PATH", help="TIFF, OME-TIFF, ImageJ TIFF or PNG")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--axes", help="override the axes read from the file, e.g. TYX")
    p.add_argument(
        "--lazy-limit",
        default=None,
        help="files larger than this open lazily (default 1GB or $CELLDENOISE_LAZY_LIMIT)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = {}
    if args.lazy_limit is not None:
        try:
            options["lazy_limit"] = parse_size(args.lazy_limit)
        except ValueError as exc:
            raise CliError(f"--lazy-limit: {exc}") from None
    if args.axes:
        options["axes"] = args.axes
    image = read_image(args.path, config=ReaderConfig(**options))
    facts = describe(image)
    print(json.dumps(facts, ensure_ascii=False) if args.json else describe_text(facts))
    return 0
