"""What the Spots dock holds, without Qt: the last run's source and table, the user's filter
ranges and marks, and the texts the dock shows.

The widget (:mod:`napari_celldenoise._qt.spots`) only renders this state: a Points layer of
:meth:`SpotsDockState.shown_rows`, the feature table of :meth:`SpotsDockState.shown_table`,
the summary of :meth:`SpotsDockState.summary`, and the CSV of
:meth:`SpotsDockState.export_table`. The canvas, the table and the export therefore follow
one filter, in 2D and 3D alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

Ranges = dict[str, tuple[float, float]]

MAX_POINTS = 200_000
"""The most spots the points layer holds: napari builds a layer of a million points (with
their features, colours and sizes) in one blocking call, so a long movie's spots are shown as
an evenly spaced subsample; the histograms, filter and export use every spot."""


@dataclass(frozen=True)
class SourceSnapshot:
    """The image a run worked on.

    Attributes
    ----------
    stack
        The layer's pixels when the run started (a reference the worker only reads).
    axes
        ``YX``, ``TYX``, ``ZYX`` or ``TZYX``.
    name
        The image layer's name.
    scale, units
        The layer's scale and units, given to the spots layer.
    pixel_size
        nm per pixel the run used (what a saved CSV records).
    """

    stack: Any
    axes: str
    name: str
    scale: tuple[float, ...]
    units: tuple[str, ...]
    pixel_size: float = 100.0

    @property
    def is_volume(self) -> bool:
        """The stack has a Z axis."""
        return "Z" in self.axes


def range_mask(table: pd.DataFrame, ranges: Ranges) -> np.ndarray:
    """True for each row inside every ``low <= feature <= high`` range (NaN is outside)."""
    keep = np.ones(len(table), bool)
    for name, (lo, hi) in ranges.items():
        if name in table:
            v = pd.to_numeric(table[name], errors="coerce").to_numpy(float)
            keep &= (v >= lo - 1e-12) & (v <= hi + 1e-12)
    return keep


def range_text(table: pd.DataFrame, ranges: Ranges) -> str:
    """``showing 19 of 135: 5 <= significance <= 40``."""
    keep = range_mask(table, ranges)
    text = ", ".join(f"{lo:.3g} <= {k} <= {hi:.3g}" for k, (lo, hi) in ranges.items())
    return f"showing {int(keep.sum())} of {len(table)}" + (f": {text}" if text else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass
class SpotsDockState:
    """The Spots dock's model: source and table of the last run, filter ranges, models.

    ``table`` has the pipeline's columns plus ``user`` (True where the user set the class);
    rows keep their order, and ``shown_rows`` are indices into it.
    """

    source: SourceSnapshot | None = None
    table: pd.DataFrame | None = None
    ranges: Ranges = field(default_factory=dict)
    classifier: Any = None
    centroid_model: Any = None

    # ------------------------------------------------------------------ results
    def set_result(self, source: SourceSnapshot, table: pd.DataFrame) -> None:
        """A new table from ``source``; the user's marks start empty.

        The table is not copied: pandas' copy-on-write copies a column of it only when the
        dock changes one (``class``), so a long movie's million spots are held once, and the
        caller's table stays as it was."""
        table = table.copy(deep=False)
        table["user"] = False
        self.source = source
        self.table = table.reset_index(drop=True)

    @property
    def has_result(self) -> bool:
        return self.table is not None and self.source is not None

    def mask(self) -> np.ndarray:
        """True for each row the filter shows."""
        if self.table is None:
            return np.zeros(0, bool)
        return range_mask(self.table, self.ranges)

    def shown_rows(self) -> np.ndarray:
        """Indices into ``table`` of the rows the filter shows (the points layer's rows)."""
        return np.flatnonzero(self.mask())

    def shown_table(self) -> pd.DataFrame:
        """The rows the filter shows, in order, indexed from 0."""
        if self.table is None:
            return pd.DataFrame()
        return self.table.iloc[self.shown_rows()].reset_index(drop=True)

    def layer_rows(self, max_points: int | None = None) -> np.ndarray:
        """Indices into ``table`` of the points layer's rows: the shown rows, or every k-th
        of them when there are more than ``max_points``."""
        rows = self.shown_rows()
        max_points = max_points or MAX_POINTS
        step = -(-len(rows) // max_points) if len(rows) > max_points else 1
        return rows[::step]

    def layer_table(self, max_points: int | None = None) -> pd.DataFrame:
        """The rows of :meth:`layer_rows`, in order, indexed from 0."""
        if self.table is None:
            return pd.DataFrame()
        return self.table.iloc[self.layer_rows(max_points)].reset_index(drop=True)

    def layer_note(self, max_points: int | None = None) -> str:
        """What the points layer holds when it is a subsample ("" when it holds every
        shown spot)."""
        n_shown = int(self.mask().sum())
        n_layer = len(self.layer_rows(max_points))
        if n_layer == n_shown:
            return ""
        step = -(-n_shown // (max_points or MAX_POINTS))
        return (
            f"The points layer shows 1 in {step} spots ({n_layer:,} of {n_shown:,}); the "
            "histograms, filter and Save CSV use all of them."
        )

    def export_table(self) -> pd.DataFrame:
        """What a saved CSV holds: the shown rows, without the ``user`` column."""
        if self.table is None:
            raise ValueError("no spots to save")
        out = self.shown_table().drop(columns=["user"], errors="ignore")
        out.attrs = dict(self.table.attrs)
        return out

    def coords(self, table: pd.DataFrame) -> np.ndarray:
        """Point coordinates of ``table``'s rows in the source's axes (px): ``(T, Z,) y, x``."""
        assert self.source is not None
        columns = {"T": "frame", "Z": "z", "Y": "y", "X": "x"}
        axes = self.source.axes
        data = np.column_stack([table[columns[a]].to_numpy(float) for a in axes])
        return data.reshape(-1, len(axes))

    # ------------------------------------------------------------------ classes
    def set_classes(
        self, classes: np.ndarray, *, rows: np.ndarray | None = None, user: bool = False
    ) -> None:
        """Set ``class`` of all rows or of ``rows`` (indices into ``table``)."""
        if self.table is None:
            return
        idx = np.arange(len(self.table)) if rows is None else np.asarray(rows, int)
        self.table.iloc[idx, self.table.columns.get_loc("class")] = np.asarray(classes, object)
        if user:
            self.table.iloc[idx, self.table.columns.get_loc("user")] = True

    def keep_user_marks(self, classes: np.ndarray) -> np.ndarray:
        """``classes`` for every row, with the user's own marks put back."""
        assert self.table is not None
        out = np.asarray(classes, object).copy()
        keep = self.table["user"].to_numpy(bool)
        out[keep] = self.table["class"].to_numpy()[keep]
        return out

    # ------------------------------------------------------------------ texts
    def summary(self) -> str:
        """``135 spots in 10 frames: 120 good, 15 bad``; a volume counts its slices, and says
        whether spots were merged in Z or are 2D spots counted in each slice."""
        if self.table is None or self.source is None:
            return "no spots yet"
        table = self.table
        n = len(table)
        n_good = int((table["class"] == "good").sum())
        counts = f"{n_good} good, {n - n_good} bad"
        shape = tuple(getattr(self.source.stack, "shape", ()))
        sizes = dict(zip(self.source.axes, shape))
        where = []
        if "T" in sizes:
            where.append(_plural(int(sizes["T"]), "frame"))
        if "Z" in sizes:
            where.append(_plural(int(sizes["Z"]), "slice"))
        place = f" in {' x '.join(where)}" if where else ""
        if not self.source.is_volume:
            return f"{_plural(n, 'spot')}{place}: {counts}"
        merged = table.attrs.get("merged_in_z")
        if merged is not None:
            return f"{_plural(n, 'spot')}{place} (merged in Z from {merged} 2D fits): {counts}"
        return (
            f"{_plural(n, '2D spot')}{place}, per slice (a spot in consecutive slices is "
            f"counted in each): {counts}"
        )

    def kept_on_plane(self, index: tuple[int, ...]) -> int | None:
        """Spots of the last run on the plane ``index`` (lead axes of the source), or None."""
        if self.table is None or self.source is None:
            return None
        lead = self.source.axes[:-2]
        if len(index) != len(lead):
            return None
        keep = np.ones(len(self.table), bool)
        for axis, i in zip(lead, index):
            col = "frame" if axis == "T" else "z"
            if axis == "Z" and "z_first" in self.table:  # merged: a spot spans its slices
                keep &= (self.table["z_first"] <= i) & (self.table["z_last"] >= i)
            else:
                keep &= self.table[col].to_numpy(int) == i
        return int(keep.sum())
