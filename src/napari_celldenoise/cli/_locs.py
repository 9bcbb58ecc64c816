"""Reading a localization table (CSV or Picasso HDF5) for a subcommand, with one-line errors."""

from __future__ import annotations

import pandas as pd

from .errors import CliError


def read_table(path: str, *, camera_pixel: float | None = None) -> pd.DataFrame:
    """The table at ``path``; ``camera_pixel`` (nm) is the pixel size of a Picasso file's px
    positions (over its metadata), CliError for a missing, foreign or broken file."""
    from ..io.locs import read_localizations
    from ..io.picasso_hdf5 import is_picasso_path
    from ..io.spots_csv import SpotTableError

    try:
        pixel = camera_pixel if is_picasso_path(path) else None
        return read_localizations(path, pixel_size=pixel)
    except SpotTableError as exc:
        raise CliError(str(exc)) from None
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise CliError(f"{path}: cannot read ({exc.strerror or exc})") from None


def good_rows(table: pd.DataFrame, path: str, *, include_bad: bool, what: str) -> pd.DataFrame:
    """The rows of class good (all with ``include_bad``); CliError when none is left."""
    total = len(table)
    if not include_bad and "class" in table:
        table = table[table["class"].astype(str) == "good"]
    if len(table) == 0:
        which = "no localizations" if total == 0 else f"none of its {total} localizations is good"
        raise CliError(f"{path}: {which}; nothing to {what}")
    return table


def check_positive(value: float | None, option: str, unit: str = " in nm") -> None:
    """CliError unless ``value`` is None or a positive finite number."""
    import math

    if value is not None and not (math.isfinite(value) and value > 0):
        raise CliError(f"{option} must be a positive size{unit}, got {value:g}")
