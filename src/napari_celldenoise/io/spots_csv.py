"""Spot tables as CSV: our ThunderSTORM-compatible format, and ThunderSTORM's own.

Written header (then any further columns)::

    id,frame,x [nm],y [nm],x [px],y [px],sigma [nm],intensity [photon],offset [photon],
    bkgstd [photon],uncertainty [nm],class

``frame`` is 1-based; ``x`` is the column and ``y`` the row; a pixel's centre is at integer
px and ``nm = (px + 0.5) * pixel_size`` (ThunderSTORM's convention), so a table opened in
ThunderSTORM lands on the same pixels. Widths and uncertainties are ``px * pixel_size``.

In memory a table is a :class:`pandas.DataFrame` in the pipeline's columns (``frame`` 0-based,
``x``/``y``/``sigma``/``uncertainty`` in px, ``photons``, ``background``...), with
``attrs["pixel_size"]`` in nm.

The job spec that made a table is kept beside it in ``NAME.csv.provenance.json`` (see
:mod:`.provenance`), so that the CSV itself stays one header line and rows.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..atomic import atomic_path
from .provenance import sidecar_path, sidecar_text

HEADER = [
    "id",
    "frame",
    "x [nm]",
    "y [nm]",
    "x [px]",
    "y [px]",
    "sigma [nm]",
    "intensity [photon]",
    "offset [photon]",
    "bkgstd [photon]",
    "uncertainty [nm]",
    "class",
]
"""The first columns of every table we write, in this order."""

# table column -> (csv name, kind): "pos" nm = (px + 0.5) * ps, "len" nm = px * ps,
# "frame" 1-based, "raw"
_EXTRA = {
    "x_raw": ("x_raw [nm]", "pos"),  # before drift correction (spots/drift.py)
    "y_raw": ("y_raw [nm]", "pos"),
    "x_sample": ("x_sample [nm]", "pos"),  # simulated truth without drift (spots/smlm_simulate.py)
    "y_sample": ("y_sample [nm]", "pos"),
    "last_frame": ("last_frame", "frame"),  # of a molecule merged from blinks (spots/merge.py)
    "z": ("z [slice]", "raw"),
    "sigma_x": ("sigma_x [nm]", "len"),
    "sigma_y": ("sigma_y [nm]", "len"),
    "ellipticity": ("ellipticity", "raw"),
    "crlb_x": ("crlb_x [nm]", "len"),
    "crlb_y": ("crlb_y [nm]", "len"),
    "crlb_photons": ("crlb_intensity [photon]", "raw"),
    "crlb_background": ("crlb_offset [photon]", "raw"),
    "crlb_sigma": ("crlb_sigma [nm]", "len"),
    "chi2": ("chi2", "raw"),
    "loglik": ("loglik", "raw"),
    "significance": ("significance", "raw"),
    "iterations": ("iterations", "raw"),
    "converged": ("converged", "raw"),
    "peak": ("peak", "raw"),
}
_MAIN = {
    "sigma": ("sigma [nm]", "len"),
    "photons": ("intensity [photon]", "raw"),
    "background": ("offset [photon]", "raw"),
    "bkgstd": ("bkgstd [photon]", "raw"),
    "uncertainty": ("uncertainty [nm]", "len"),
}
# ThunderSTORM's names (and the EPFL challenge's ground truth) -> ours
_ALIASES = {
    "uncertainty_xy [nm]": "uncertainty [nm]",
    "xnano": "x [nm]",
    "ynano": "y [nm]",
    "znano": "z [nm]",
    "intensity": "intensity [photon]",
    "ground-truth": "id",
}


class SpotTableError(ValueError):
    """A CSV that is not a spot table, or a broken one (the message names the file)."""


def to_csv_frame(table: pd.DataFrame, pixel_size: float | None = None) -> pd.DataFrame:
    """The table in CSV columns and units (``frame`` 1-based, nm)."""
    ps = float(pixel_size or table.attrs.get("pixel_size") or 100.0)
    n = len(table)
    out: dict[str, object] = {"id": np.arange(1, n + 1)}
    frame = table["frame"].to_numpy() if "frame" in table else np.zeros(n, int)
    out["frame"] = np.asarray(frame, int) + 1
    x = table["x"].to_numpy(float)
    y = table["y"].to_numpy(float)
    out["x [nm]"] = (x + 0.5) * ps
    out["y [nm]"] = (y + 0.5) * ps
    out["x [px]"] = x
    out["y [px]"] = y
    for col, (name, kind) in _MAIN.items():
        out[name] = _convert(table, col, kind, ps, n)
    out["class"] = table["class"].astype(str).to_numpy() if "class" in table else ["good"] * n
    used = {"frame", "x", "y", "class", *_MAIN}
    for col in table.columns:
        if col in used:
            continue
        name, kind = _EXTRA.get(col, (col, "raw"))
        out[name] = _convert(table, col, kind, ps, n)
    frame_out = pd.DataFrame(out)
    return frame_out[HEADER + [c for c in frame_out.columns if c not in HEADER]]


def _convert(table: pd.DataFrame, col: str, kind: str, ps: float, n: int) -> np.ndarray:
    if col not in table:
        return np.full(n, np.nan)
    values = table[col].to_numpy()
    if kind == "len":
        return values.astype(float) * ps
    if kind == "pos":
        return (values.astype(float) + 0.5) * ps
    if kind == "frame":
        return values + 1
    return values


def write_spots_csv(
    path: str | os.PathLike,
    table: pd.DataFrame,
    *,
    pixel_size: float | None = None,
    overwrite: bool = False,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``table`` atomically as our CSV; returns the path.

    Parameters
    ----------
    pixel_size
        nm per pixel (default: ``table.attrs["pixel_size"]``, else 100).
    overwrite
        Replace an existing file.
    provenance
        What made the table (``spec``, ``history``, ``software``), written beside it as
        ``NAME.csv.provenance.json``; without it a provenance file left there by an earlier
        table is removed, so that it never describes another table.
    """
    text = to_csv_frame(table, pixel_size).to_csv(index=False, float_format="%.6g")
    side = sidecar_path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
        if provenance:  # written before the table appears: a table never lacks its own
            with atomic_path(side, overwrite=True) as tmp_side:
                tmp_side.write_text(sidecar_text(provenance), encoding="utf-8")
        elif side.exists():
            side.unlink()
    return Path(path)


def _normalise(name: str) -> str:
    name = name.strip().strip('"').strip()
    return _ALIASES.get(name.lower(), name)


def sniff_header(path: str | os.PathLike) -> list[str] | None:
    """The normalised column names if ``path`` looks like a spot table, else None (no raise)."""
    try:
        with open(path, encoding="utf-8", errors="strict", newline="") as fh:
            first = fh.readline(8192)
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not first.strip():
        return None
    try:
        names = [_normalise(c) for c in next(csv.reader([first]))]
    except (csv.Error, StopIteration):
        return None
    if "x [nm]" in names and "y [nm]" in names:
        return names
    if "x [px]" in names and "y [px]" in names:
        return names
    return None


def is_spot_table(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a CSV whose header names spot positions (never raises)."""
    return sniff_header(path) is not None


def read_spots_csv(path: str | os.PathLike, *, pixel_size: float | None = None) -> pd.DataFrame:
    """Read our CSV or a ThunderSTORM CSV into a table in px (``frame`` 0-based).

    Parameters
    ----------
    pixel_size
        nm per pixel for files that only give nm (ThunderSTORM's); ours carries it in the
        ``x [nm]``/``x [px]`` pair. Default 100.

    Raises
    ------
    SpotTableError
        Not a spot table, or rows that do not parse.
    """
    names = sniff_header(path)
    if names is None:
        raise SpotTableError(f"{path}: not a spot table (no x/y position columns)")
    try:
        raw = pd.read_csv(path, skipinitialspace=True)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise SpotTableError(f"{path}: cannot read the table ({exc})") from None
    raw.columns = [_normalise(str(c)) for c in raw.columns]
    return from_csv_frame(raw, pixel_size=pixel_size, source=str(path))


def from_csv_frame(
    raw: pd.DataFrame, *, pixel_size: float | None = None, source: str = "table"
) -> pd.DataFrame:
    """Convert CSV columns (normalised names) back to the pipeline's table."""
    n = len(raw)

    def num(col: str) -> np.ndarray:
        try:
            return pd.to_numeric(raw[col]).to_numpy(float)
        except (ValueError, TypeError):
            raise SpotTableError(f"{source}: column {col!r} is not numeric") from None

    ps = pixel_size
    if "x [px]" in raw and "x [nm]" in raw and ps is None and n:
        xpx, xnm = num("x [px]"), num("x [nm]")
        ok = np.abs(xpx + 0.5) > 1e-6
        if ok.any():
            ps = float(np.median(xnm[ok] / (xpx[ok] + 0.5)))
    ps = float(ps or 100.0)
    if not np.isfinite(ps) or ps <= 0:
        raise SpotTableError(f"{source}: cannot tell the pixel size from the table")
    table = pd.DataFrame()
    frames = num("frame") if "frame" in raw else np.ones(n)
    table["frame"] = np.where(np.isfinite(frames), frames, 1).astype(int) - 1
    for axis in ("x", "y"):
        if f"{axis} [px]" in raw:
            table[axis] = num(f"{axis} [px]")
        else:
            table[axis] = num(f"{axis} [nm]") / ps - 0.5
    bad = ~np.isfinite(table[["x", "y"]].to_numpy(float)).all(axis=1)
    if "frame" in raw:
        bad |= ~np.isfinite(num("frame"))
    if bad.any():  # a cut-off last line, or a corrupt one
        row = int(np.flatnonzero(bad)[0]) + 2  # 1-based, after the header
        raise SpotTableError(
            f"{source}: line {row} has no valid frame/x/y (a truncated or corrupt table)"
        )
    inverse = {name: (col, kind) for col, (name, kind) in {**_MAIN, **_EXTRA}.items()}
    skip = {"id", "frame", "x [nm]", "y [nm]", "x [px]", "y [px]", "class"}
    for name in raw.columns:
        if name in skip:
            continue
        col, kind = inverse.get(name, (name, "raw"))
        if kind == "len":
            table[col] = num(name) / ps
        elif kind == "pos":
            table[col] = num(name) / ps - 0.5
        elif kind == "frame":
            table[col] = num(name).astype(np.int64) - 1
        else:
            table[col] = raw[name].to_numpy()
    if "z" in table:
        table["z"] = pd.to_numeric(table["z"], errors="coerce").fillna(0).astype(int)
    table["class"] = raw["class"].astype(str).to_numpy() if "class" in raw else ["good"] * n
    table.attrs["pixel_size"] = ps
    return table


def csv_text(table: pd.DataFrame, pixel_size: float | None = None) -> str:
    """The CSV as a string (for tests and clipboards)."""
    buf = io.StringIO()
    to_csv_frame(table, pixel_size).to_csv(buf, index=False, float_format="%.6g")
    return buf.getvalue()
