"""``celldenoise``: entry point, subcommand registry and the one-line error contract.

Each subcommand lives in its own module of this package with a ``register(subparsers)``
function that adds its parser and sets ``func``; add the module's name to ``COMMANDS``.
Heavy imports (TensorFlow, napari, gcsfs) stay inside the subcommand functions.

Bad input (a missing, foreign or broken file, an out-of-range parameter) and a missing extra of
the install (``pip install "napari-celldenoise[deep]"``...) exit with status 2 and one line on
stderr, no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..atomic import write_error_text
from ..jobs.placement import require_extra
from .errors import one_line, user_error

COMMANDS = [
    "info",
    "deep",
    "spots",
    "simulate_smlm",  # blinking single-molecule movies with truth
    "render",  # super-resolution image from a spot table
    "frc",  # its resolution (FRC, NeNA)
    "filter",
    "noise",
    "metrics",
    "add_noise",
    "run",
    "lattice",  # electron microscopy (em/): lattice, em-targets
    "em_targets",
    "recipe",  # batch runs (batch/): recipe, batch
    "batch",
    "remote",  # remote training: worker, remote submit
    "jobs_cmd",  # remote jobs: list, show, logs, stop, pull, delete
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="celldenoise",
        description="Denoise microscopy stacks and find, fit and classify spots.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    parser.add_argument("--allow-partial", action="store_true", default=False, help=ALLOW_PARTIAL)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    for leaf in _leaf_parsers(sub):  # also accepted after the subcommand
        leaf.add_argument(
            "--allow-partial", action="store_true", default=argparse.SUPPRESS, help=ALLOW_PARTIAL
        )
    return parser


ALLOW_PARTIAL = (
    "open a truncated TIFF (fewer planes than its metadata declares) with its complete planes "
    "and a warning instead of refusing it (also CELLDENOISE_ALLOW_PARTIAL=1)"
)


def _leaf_parsers(action: argparse._SubParsersAction) -> list[argparse.ArgumentParser]:
    """The parsers that run a command: nested subcommands (``deep train``) included."""
    leaves = []
    for parser in dict.fromkeys(action.choices.values()):  # aliases map to one parser
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        leaves.extend(_leaf_parsers(nested[0]) if nested else [parser])
    return leaves


@contextlib.contextmanager
def _reader_env(allow_partial: bool):
    """Pass ``--allow-partial`` to every reader, child processes included, through
    ``CELLDENOISE_ALLOW_PARTIAL`` (the default of :class:`ReaderConfig`)."""
    if not allow_partial:
        yield
        return
    before = os.environ.get(PARTIAL_ENV)
    os.environ[PARTIAL_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PARTIAL_ENV, None)
        else:
            os.environ[PARTIAL_ENV] = before


PARTIAL_ENV = "CELLDENOISE_ALLOW_PARTIAL"


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
        require_extra(args.command)  # train, predict, export: said before reading anything
        with _reader_env(args.allow_partial):
            status = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader that went away shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        return _stdout_closed()
    except Exception as exc:
        reported = user_error(exc)
        if reported is not None:
            message = one_line(reported)
        elif isinstance(exc, OSError):  # a full disk, a read-only folder...: not a bug
            message = write_error_text(exc)
        else:
            raise
        print(f"celldenoise {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"celldenoise {args.command}: interrupted", file=sys.stderr)
        return 130


def _stdout_closed() -> int:
    """The reader of stdout is gone (``celldenoise info X | head``): end quietly.

    As Python's documentation of SIGPIPE advises: point stdout at devnull so that the flush
    at exit does not raise again, and exit with status 1.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
