"""``celldenoise``: entry point, subcommand registry and the one-line error contract.

Each subcommand lives in its own module of this package with a ``register(subparsers)``
function that adds its parser and sets ``func``; add the module's name to ``COMMANDS``.
Heavy imports (TensorFlow, napari, gcsfs) stay inside the subcommand functions.

Bad input (a missing, foreign or broken file, an out-of-range parameter) exits with status 2
and one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from .errors import USER_ERRORS, one_line

COMMANDS = ["info", "deep", "spots", "filter", "noise", "metrics", "add_noise", "run"]
COMMANDS += ["lattice", "em_targets"]  # electron microscopy (em/)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="celldenoise",
        description="Denoise microscopy stacks and find, fit and classify spots.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # tifffile warns about what we report as one line ourselves
        logging.getLogger("tifffile").setLevel(logging.CRITICAL)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        print(f"celldenoise {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"celldenoise {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
