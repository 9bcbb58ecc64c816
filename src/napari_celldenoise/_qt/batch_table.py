"""The Batch dock's results: a live table of the manifest (one row per file, failures in red)
and the results across files (counts, spots per file or the noise before and after)."""

from __future__ import annotations

import math
from pathlib import PurePosixPath
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

COLUMNS = ("file", "status", "s", "spots", "good", "noise", "error")
FAILED = QColor("#ff6060")
CANCELLED = QColor("#a0a0a0")


def _number(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return format(value, fmt)


def row_cells(record: dict[str, Any]) -> tuple[str, ...]:
    """The table's text for one manifest record (see :data:`COLUMNS`)."""
    noise = ""
    if record.get("noise_before") is not None and record.get("noise_after") is not None:
        noise = f"{record['noise_before']:.3g} -> {record['noise_after']:.3g}"
    good = record.get("good_fraction")
    error = str(record.get("error") or "")
    prefix = f"{record['input']}: "
    if error.startswith(prefix):  # the reader names the file: the row already does
        error = error[len(prefix) :]
    return (
        PurePosixPath(str(record["input"]).replace("\\", "/")).name,
        str(record.get("status", "")),
        _number(record.get("seconds"), ".2f"),
        _number(record.get("spots"), "d"),
        "" if good is None else f"{100 * good:.0f}%",
        noise,
        error,
    )


class ManifestTable(QTableWidget):
    """One row per finished file, in the order files finish; a record for a file already
    shown replaces its row. ``records[i]`` is row ``i``'s manifest record."""

    def __init__(self) -> None:
        super().__init__(0, len(COLUMNS))
        self.setHorizontalHeaderLabels(list(COLUMNS))
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        for i in range(len(COLUMNS) - 1):
            header.setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.setMinimumHeight(160)
        self.records: list[dict[str, Any]] = []

    def clear_rows(self) -> None:
        self.records = []
        self.setRowCount(0)

    def add_record(self, record: dict[str, Any]) -> int:
        """Show ``record``; returns its row."""
        row = next((i for i, r in enumerate(self.records) if r["input"] == record["input"]), None)
        if row is None:
            row = len(self.records)
            self.records.append(record)
            self.insertRow(row)
        else:
            self.records[row] = record
        color = {"failed": FAILED, "cancelled": CANCELLED}.get(record.get("status", ""))
        for col, text in enumerate(row_cells(record)):
            item = QTableWidgetItem(text)
            item.setToolTip(str(record["input"]) if col == 0 else text)
            if col in (2, 3, 4):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if color is not None and col in (1, 6):
                item.setForeground(color)
            self.setItem(row, col, item)
        self._hide_empty_columns()
        return row

    def _hide_empty_columns(self) -> None:
        """Spots, good and noise columns only for recipes that have them."""
        for col in (3, 4, 5):
            empty = all(
                not (self.item(r, col) and self.item(r, col).text()) for r in range(self.rowCount())
            )
            self.setColumnHidden(col, empty)

    def selected_record(self) -> dict[str, Any] | None:
        rows = {i.row() for i in self.selectedIndexes()}
        return self.records[min(rows)] if rows else None


def record_details(record: dict[str, Any]) -> str:
    """The selected row in full: the file, its status and time, its outputs or its error."""
    seconds = record.get("seconds")
    lines = [
        str(record["input"]),
        f"{record.get('status', '')}"
        + (f" in {seconds:.2f} s on {record.get('worker') or '?'}" if seconds is not None else ""),
    ]
    if record.get("error"):
        lines.append(str(record["error"]))
    lines += [f"-> {out}" for out in record.get("outputs") or []]
    return "\n".join(lines)


def summary_text(result: Any) -> str:
    """The results across files of a finished batch, in two lines."""
    done = [r for r in result.records if r.get("status") == "done"]
    head = (
        f"{result.done} done, {result.failed} failed, {result.skipped} skipped, "
        f"{result.cancelled} cancelled in {result.seconds:.1f} s (recipe {result.recipe_hash})"
    )
    spots = [r["spots"] for r in done if r.get("spots") is not None]
    lines = [head]
    if spots:
        good = [r["good_fraction"] for r in done if r.get("good_fraction") is not None]
        unc = [r["median_uncertainty_nm"] for r in done if r.get("median_uncertainty_nm")]
        line = f"{sum(spots)} spots in {len(spots)} files ({min(spots)}-{max(spots)} per file)"
        if good:
            line += f", {100 * sum(good) / len(good):.0f}% good"
        if unc:
            line += f", median uncertainty {sorted(unc)[len(unc) // 2]:.3g} nm"
        lines.append(line)
    noise = [(r["noise_before"], r["noise_after"]) for r in done if r.get("noise_after")]
    if noise:
        ratio = sorted(b / a for b, a in noise if a)
        if ratio:
            lines.append(f"noise lowered {ratio[len(ratio) // 2]:.2f}x (median over files)")
    lines.append(f"manifest, summary.csv{', spots.csv' if spots else ''} in {result.outdir}")
    return "\n".join(lines)


def draw_results(ax: Any, records: list[dict[str, Any]]) -> bool:
    """Spots per file (a spot recipe) or the noise before and after (a denoising recipe) of
    the done files as bars; False when there is nothing to draw."""
    done = [r for r in records if r.get("status") == "done"]
    names = [row_cells(r)[0] for r in done]
    ax.clear()
    if not done:
        return False
    x = list(range(len(done)))
    if any(r.get("spots") is not None for r in done):
        ax.bar(x, [r.get("spots") or 0 for r in done], color="#4a90d9")
        ax.set_ylabel("spots")
        ax.set_title("spots per file", fontsize=9)
    elif any(r.get("noise_after") is not None for r in done):
        w = 0.4
        ax.bar(
            [i - w / 2 for i in x], [r.get("noise_before") or 0 for r in done], w, label="before"
        )
        ax.bar([i + w / 2 for i in x], [r.get("noise_after") or 0 for r in done], w, label="after")
        ax.set_ylabel("noise sigma")
        ax.set_title("noise per file", fontsize=9)
        ax.legend(fontsize=7)
    else:
        return False
    ax.set_xticks(x)
    ax.set_xticklabels(names if len(names) <= 12 else [""] * len(names), rotation=30, fontsize=7)
    return True


__all__ = [
    "COLUMNS",
    "ManifestTable",
    "draw_results",
    "record_details",
    "row_cells",
    "summary_text",
]
