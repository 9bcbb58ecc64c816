"""Results across the files of a batch: the spots of every file in one table, with the file as
a column, and one summary row per file (spot count, good fraction, median uncertainty; noise
before and after a denoising step)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pandas as pd

from ..jobs import Event, Log
from .manifest import join, write_bytes

SPOTS = "spots.csv"
SUMMARY = "summary.csv"
SUMMARY_COLUMNS = (
    "input",
    "status",
    "spots",
    "good_fraction",
    "median_uncertainty_nm",
    "noise_before",
    "noise_after",
)


def summary_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per file, the columns of :data:`SUMMARY_COLUMNS` that any file has."""
    rows = [{c: r.get(c) for c in SUMMARY_COLUMNS} for r in records]
    frame = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    keep = [c for c in SUMMARY_COLUMNS[:2]] + [
        c for c in SUMMARY_COLUMNS[2:] if frame[c].notna().any()
    ]
    return frame[keep]


def merged_spots(records: list[dict[str, Any]]) -> pd.DataFrame | None:
    """Every done file's spot table (as its CSV has it, nm), with ``file`` first; None if no
    file wrote one."""
    from ..io.fs import filesystem

    parts = []
    for rec in records:
        if rec.get("status") != "done":
            continue
        for out in rec.get("outputs") or []:
            if out.endswith(".csv"):
                fs, inner = filesystem(out)
                with fs.open(inner, "rb") as fh:
                    table = pd.read_csv(fh)
                table.insert(0, "file", rec["input"])
                parts.append(table)
    if not parts:
        return None
    return pd.concat(parts, ignore_index=True)


def _csv(frame: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, float_format="%.6g")
    return buf.getvalue().encode("utf-8")


def write_results(outdir: str, records: list[dict[str, Any]]) -> Iterator[Event]:
    """Write ``summary.csv`` and, for spot recipes, ``spots.csv`` in ``outdir``."""
    write_bytes(join(outdir, SUMMARY), _csv(summary_frame(records)))
    spots = merged_spots(records)
    if spots is not None:
        write_bytes(join(outdir, SPOTS), _csv(spots))
        n_files = spots["file"].nunique()
        yield Log(f"{len(spots)} spots from {n_files} files -> {join(outdir, SPOTS)}")
    yield Log(f"summary per file -> {join(outdir, SUMMARY)}")


__all__ = ["SPOTS", "SUMMARY", "merged_spots", "summary_frame", "write_results"]
