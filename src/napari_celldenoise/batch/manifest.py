"""The batch manifest: one record per input file, as JSON lines (appended as files finish, so
an interrupted batch keeps what it did) and as a CSV (rewritten atomically).

A record holds ``input``, ``size``, ``status`` (``done``, ``failed`` or ``cancelled``),
``seconds``, ``worker``, ``outputs``, ``error``, ``recipe_hash`` and the per-file summary
(``spots``, ``good_fraction``, ``median_uncertainty_nm``, ``noise_before``, ``noise_after``).
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from ..atomic import atomic_write
from ..io.fs import filesystem, is_remote

JSONL = "manifest.jsonl"
CSV = "manifest.csv"
COLUMNS = (
    "input",
    "size",
    "status",
    "seconds",
    "worker",
    "outputs",
    "error",
    "recipe_hash",
    "spots",
    "good_fraction",
    "median_uncertainty_nm",
    "noise_before",
    "noise_after",
)


def join(outdir: str, *parts: str) -> str:
    """``outdir/part/...`` for a local folder or a URL."""
    if is_remote(outdir):
        return "/".join([outdir.rstrip("/"), *parts])
    return str(Path(outdir, *parts))


def write_bytes(path: str, data: bytes) -> None:
    """Write a whole file atomically (local) or as one upload (an object store)."""
    if is_remote(path):
        fs, inner = filesystem(path)
        fs.pipe_file(inner, data)
    else:
        atomic_write(path, data, overwrite=True)


def read_records(outdir: str) -> dict[str, dict[str, Any]]:
    """The last record of each input in ``outdir``'s manifest ({} without one)."""
    path = join(outdir, JSONL)
    try:
        if is_remote(path):
            fs, inner = filesystem(path)
            if not fs.exists(inner):
                return {}
            text = fs.cat_file(inner).decode("utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    records: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:  # a line cut by a crash: that file runs again
            continue
        if isinstance(rec, dict) and "input" in rec:
            records[rec["input"]] = rec
    return records


class Manifest:
    """The manifest of one batch run in ``outdir`` (earlier records kept for ``--resume``)."""

    def __init__(self, outdir: str, *, keep: dict[str, dict[str, Any]] | None = None):
        self.outdir = outdir
        self.records: dict[str, dict[str, Any]] = dict(keep or {})
        self._remote = is_remote(outdir)
        self._last_upload = 0.0
        self._dirty = False
        if not self._remote:
            lines = "".join(json.dumps(r) + "\n" for r in self.records.values())
            atomic_write(join(outdir, JSONL), lines.encode("utf-8"), overwrite=True)

    def add(self, record: dict[str, Any]) -> None:
        """Record one finished file (appended at once locally; uploaded every few seconds)."""
        self.records[record["input"]] = record
        line = json.dumps(record) + "\n"
        if self._remote:
            self._dirty = True
            if time.monotonic() - self._last_upload > 5.0:
                self._upload_jsonl()
            return
        with open(join(self.outdir, JSONL), "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()

    def _upload_jsonl(self) -> None:
        text = "".join(json.dumps(r) + "\n" for r in self.records.values())
        write_bytes(join(self.outdir, JSONL), text.encode("utf-8"))
        self._last_upload = time.monotonic()
        self._dirty = False

    def frame(self) -> pd.DataFrame:
        """The records as a table (outputs joined by ``;``)."""
        rows = []
        for rec in self.records.values():
            row = {c: rec.get(c) for c in COLUMNS}
            row["outputs"] = ";".join(rec.get("outputs") or [])
            rows.append(row)
        return pd.DataFrame(rows, columns=list(COLUMNS))

    def close(self) -> None:
        """Write the CSV (and, on an object store, the JSON lines) as they stand now."""
        if self._remote and (self._dirty or self._last_upload == 0.0):
            self._upload_jsonl()
        buf = io.StringIO()
        self.frame().to_csv(buf, index=False, float_format="%.6g")
        write_bytes(join(self.outdir, CSV), buf.getvalue().encode("utf-8"))


__all__ = ["COLUMNS", "CSV", "JSONL", "Manifest", "join", "read_records", "write_bytes"]
