"""Result views of the Spots dock: a feature table, histograms and feature range sliders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..classical.plots import NO_DATA, draw_empty
from ..spots.dock_state import Ranges, range_mask, range_text

TABLE_COLUMNS = [
    "frame",
    "y",
    "x",
    "photons",
    "background",
    "sigma",
    "uncertainty",
    "significance",
    "class",
]
MAX_ROWS = 1000
ONE_BASED = ("frame",)
"""Columns shown 1-based, as the CSV writes them."""
PREFERRED_FILTERS = ("significance", "photons", "uncertainty", "sigma")
"""The feature the range filter starts on: the first of these in the table."""


class FeatureTable(QTableWidget):
    """The first ``MAX_ROWS`` spots with their main fit values; a click selects the spot."""

    spot_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(0, len(TABLE_COLUMNS), parent)
        self.setHorizontalHeaderLabels(TABLE_COLUMNS)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.verticalHeader().setVisible(False)
        self.setMinimumHeight(150)
        self.cellClicked.connect(lambda row, _col: self.spot_clicked.emit(row))

        self.columns = list(TABLE_COLUMNS)

    def show_table(self, table: pd.DataFrame, *, volume: bool = False) -> None:
        """The first rows of ``table``; ``frame`` 1-based as in the CSV; ``volume`` adds the
        slice (``z``, as in the CSV)."""
        columns = list(TABLE_COLUMNS)
        if volume:
            columns.insert(1, "z")
        if columns != self.columns:
            self.columns = columns
            self.setColumnCount(len(columns))
            self.setHorizontalHeaderLabels(columns)
        n = min(len(table), MAX_ROWS)
        self.setUpdatesEnabled(False)  # one repaint for all cells, not one per cell
        try:
            self.setRowCount(n)
            for j, col in enumerate(columns):
                values = table[col].to_numpy()[:n] if col in table else [""] * n
                if col in ONE_BASED and col in table:
                    values = np.asarray(values, int) + 1
                for i, v in enumerate(values):
                    text = f"{v:.4g}" if isinstance(v, float | np.floating) else str(v)
                    self.setItem(i, j, QTableWidgetItem(text))
        finally:
            self.setUpdatesEnabled(True)

    def cell_text(self, row: int, column: str) -> str:
        item = self.item(row, self.columns.index(column))
        return item.text() if item is not None else ""


Panel = tuple[str, list[tuple[np.ndarray, np.ndarray, str]] | None]
"""One histogram: its label and ``(counts, bin edges, colour)`` per class (None: no data)."""


class Histograms(QWidget):
    """Photons, uncertainty and sigma histograms of the good and bad spots.

    The counts are computed here (numpy, milliseconds); the figure is drawn in a worker
    thread (:class:`.figure_thread.ThreadedFigure`), so that a whole-stack result does not
    hold the viewer while matplotlib lays out and rasterises it.
    """

    FEATURES = (
        ("photons", "photons", 1.0),
        ("uncertainty", "uncertainty (nm)", None),
        ("sigma", "sigma (nm)", None),
    )

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        from .figure_thread import ThreadedFigure

        self.view = ThreadedFigure((4.2, 1.6), 90, BACKGROUND)
        self.view.setMinimumHeight(140)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self.counts: dict[str, int] = {}
        self.panels: list[Panel] = [(label, None) for _, label, _ in self.FEATURES]
        self.view.render(draw_histograms, self.panels)

    def show_table(
        self, table: pd.DataFrame, pixel_size: float, shown: np.ndarray | None = None
    ) -> None:
        cls = table["class"].astype(str).to_numpy() if "class" in table else np.array([])
        keep = np.ones(len(table), bool) if shown is None else shown
        panels: list[Panel] = []
        for col, label, factor in self.FEATURES:
            if col not in table or len(table) == 0:
                panels.append((label, None))
                continue
            v = pd.to_numeric(table[col], errors="coerce").to_numpy(float)
            v = v * (factor if factor is not None else pixel_size)
            ok = np.isfinite(v) & keep
            if not ok.any():
                panels.append((label, None))
                continue
            hi = np.percentile(v[ok], 99) if ok.sum() > 5 else v[ok].max()
            bins = np.linspace(v[ok].min(), max(hi, v[ok].min() + 1e-9), 30)
            classes = []
            for name, colour in (("good", "#33dd55"), ("bad", "#ff4040")):
                sel = ok & (cls == name)
                if sel.any():
                    counts, _ = np.histogram(np.clip(v[sel], bins[0], bins[-1]), bins)
                    classes.append((counts, bins, colour))
            panels.append((label, classes))
        self.panels = panels
        self.counts = {name: int((cls[keep] == name).sum()) for name in ("good", "bad")}
        self.view.render(draw_histograms, panels)


BACKGROUND = "#262930"  # napari's dark theme


def draw_histograms(figure: Any, panels: list[Panel]) -> None:
    """One axes per panel, one filled outline per class (``ax.hist``'s 30 bar patches per
    class were several times slower to draw)."""
    axes = figure.subplots(1, len(panels))
    for ax, (label, classes) in zip(np.atleast_1d(axes), panels):
        if classes is None:
            draw_empty(ax, f"{label}\n{NO_DATA}", color="0.7")
            continue
        ax.set_facecolor(BACKGROUND)
        ax.tick_params(colors="white", labelsize=6)
        ax.set_title(label, color="white", fontsize=7)
        for counts, bins, colour in classes:
            ax.stairs(counts, bins, fill=True, color=colour, alpha=0.7)
    figure.tight_layout()


class FeatureFilter(QWidget):
    """A feature picker and a range slider; spots outside any chosen range are hidden."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        from superqt import QLabeledDoubleRangeSlider

        self.feature = QComboBox()
        self.slider = QLabeledDoubleRangeSlider(Qt.Orientation.Horizontal)
        self.slider.setDecimals(3)
        self.reset_button = QPushButton("Show all")
        self.summary = QLabel("")
        self.ranges: Ranges = {}
        self._table: pd.DataFrame | None = None
        self._updating = False
        row = QHBoxLayout()
        row.addWidget(QLabel("filter by"))
        row.addWidget(self.feature, 1)
        row.addWidget(self.reset_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.slider)
        layout.addWidget(self.summary)
        self.feature.currentTextChanged.connect(self._feature_changed)
        self.slider.valueChanged.connect(self._slid)
        self.reset_button.clicked.connect(self.reset)

    def set_table(self, table: pd.DataFrame) -> None:
        self._table = table
        numeric = [
            c
            for c in table.columns
            if c not in ("frame", "z", "class", "converged", "user")
            and pd.api.types.is_numeric_dtype(table[c])
        ]
        current = self.feature.currentText()
        if current not in numeric:  # a first table: a quality feature, not a coordinate
            current = next((c for c in PREFERRED_FILTERS if c in numeric), "")
        self._updating = True
        self.feature.clear()
        self.feature.addItems(numeric)
        if current in numeric:
            self.feature.setCurrentText(current)
        self._updating = False
        self.ranges = {k: v for k, v in self.ranges.items() if k in numeric}
        self._feature_changed(self.feature.currentText())

    def _limits(self, name: str) -> tuple[float, float]:
        assert self._table is not None
        v = pd.to_numeric(self._table[name], errors="coerce").to_numpy(float)
        v = v[np.isfinite(v)]
        if len(v) == 0:
            return 0.0, 1.0
        return float(v.min()), float(max(v.max(), v.min() + 1e-9))

    def _feature_changed(self, name: str) -> None:
        if self._updating or self._table is None or not name:
            return
        lo, hi = self._limits(name)
        self._updating = True
        self.slider.setRange(lo, hi)
        self.slider.setValue(self.ranges.get(name, (lo, hi)))
        self._updating = False

    def _slid(self, value: tuple[float, float]) -> None:
        if self._updating or self._table is None:
            return
        name = self.feature.currentText()
        lo, hi = self._limits(name)
        if value[0] <= lo and value[1] >= hi:
            self.ranges.pop(name, None)
        else:
            self.ranges[name] = (float(value[0]), float(value[1]))
        self.changed.emit()

    def set_range(self, name: str, low: float, high: float) -> None:
        """Choose ``name`` and set its range (what dragging the slider does)."""
        self.feature.setCurrentText(name)
        self.slider.setValue((low, high))

    def reset(self) -> None:
        self.ranges.clear()
        self._feature_changed(self.feature.currentText())
        self.changed.emit()

    def mask(self, table: pd.DataFrame) -> np.ndarray:
        """True for the rows inside every range; the label says how many are shown."""
        self.summary.setText(range_text(table, self.ranges))
        return range_mask(table, self.ranges)


def connect_all(signals: list[Any], slot: Callable[..., Any]) -> None:
    for s in signals:
        s.connect(slot)
