"""Helpers shared by the classical-denoising subcommands (filter, noise, metrics, add-noise)."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from ..config import ReaderConfig
from ..io import ImageData, read_image
from .errors import CliError


def add_output_options(p: argparse.ArgumentParser) -> None:
    """``--keep-dtype``, ``--overwrite`` and ``--axes`` of the subcommands that write OUT."""
    p.add_argument(
        "--keep-dtype",
        action="store_true",
        help="write integer input back as its integer type (rounded, clipped)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--axes", help="override the axes read from the file, e.g. TYX")


def read(path: str, axes: str | None = None) -> ImageData:
    """Open ``path`` (ImageReadError for bad files: exit 2 with one line)."""
    config = ReaderConfig(axes=axes) if axes else None
    return read_image(path, config=config)


def check_output(path: str, overwrite: bool, inputs: tuple[str, ...] | list[str] = ()) -> None:
    """Refuse, before any work is done, a local OUT that is a folder, is one of ``inputs`` or
    exists (unless ``--overwrite``), or lies in a missing or read-only folder."""
    import os

    if "://" in path:
        return
    if os.path.isdir(path):
        raise CliError(f"{path}: is a folder; give a file name for the output")
    same = [p for p in inputs if "://" not in p and os.path.exists(p) and _same(p, path)]
    if same and not overwrite:
        raise CliError(f"{path}: is the input file; refusing to overwrite it (use --overwrite)")
    if not overwrite and os.path.exists(path):
        raise CliError(f"{path}: already exists (use --overwrite to replace it)")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CliError(f"{parent}: no such folder for the output")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CliError(f"{parent}: the output folder is not writable (permission denied)")


def _same(a: str, b: str) -> bool:
    import os

    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CliError(f"{name}: expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise CliError(f"{name}: must be a finite number, got {text!r}")
    return value


def jsonable(value: Any) -> Any:
    """Replace inf/nan (not valid JSON) by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return jsonable(value.item())
    return value


def print_json(obj: Any) -> None:
    print(json.dumps(jsonable(obj), ensure_ascii=False))
