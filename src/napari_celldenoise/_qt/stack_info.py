"""The "Stack info" dock: shape, axes, pixel size, channels and origin of the selected layer.

It describes image layers. For a points or shapes layer it shows what applies to it (how many,
in how many dimensions) and says so; rows of an earlier layer never stay behind.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFormLayout, QLabel, QSizePolicy, QWidget

from ..io.describe import describe_parts, describe_rows
from ..io.layers import META_KEY, layer_axes, layer_axes_guessed, short_unit
from .scroll import scroll_layout


def layer_facts(layer: Any) -> dict[str, Any]:
    """:func:`describe_parts` facts for a napari layer, from the reader's record if present."""
    record = (layer.metadata or {}).get(META_KEY, {})
    data = layer.data
    ndim = layer.ndim
    labels = [str(a) for a in getattr(layer, "axis_labels", ())] or [str(i) for i in range(ndim)]
    if layer_axes_guessed(layer):  # napari's "-3 -2 -1": the axes the docks read it with
        labels = list(layer_axes(layer))
    units = [str(u) for u in getattr(layer, "units", ())] or ["pixel"] * ndim
    units = [short_unit(u) for u in units]
    scale = {a: float(s) for a, s in zip(labels, layer.scale)}
    shape = tuple(getattr(data, "shape", ()) or ())
    if not shape and hasattr(data, "__len__"):
        shape = (len(data),)
    channel = record.get("channel")
    return describe_parts(
        shape=shape,
        dtype=getattr(data, "dtype", "float64"),
        axes="".join(labels) if all(len(a) == 1 for a in labels) else " ".join(labels),
        scale=scale,
        units=dict(zip(labels, units)),
        channel_names=[channel] if channel else None,
        path=record.get("path", "") or str(getattr(layer.source, "path", "") or ""),
        size_bytes=record.get("size_bytes"),
        lazy=record.get("lazy", hasattr(data, "dask")),
        file_format=record.get("format", ""),
    )


def other_rows(layer: Any) -> list[tuple[str, str]]:
    """What applies to a layer that is not an image: count, dimensions, scale, source."""
    kind = layer.__class__.__name__.lower()
    data = layer.data
    count = len(data) if hasattr(data, "__len__") else None
    rows = [("about", f"Stack info describes image layers; this {kind} layer holds:")]
    if count is not None and kind in ("points", "shapes", "vectors", "tracks"):
        rows.append((kind, str(count)))
    elif hasattr(data, "shape"):
        rows.append(("shape", " x ".join(str(n) for n in data.shape)))
    rows.append(("dimensions", str(layer.ndim)))
    scale = [f"{float(s):g}" for s in layer.scale]
    uncalibrated = " (uncalibrated)" if all(v == "1" for v in scale) else ""
    rows.append(("scale", " x ".join(scale) + uncalibrated))
    features = getattr(layer, "features", None)
    if features is not None and len(getattr(features, "columns", ())):
        rows.append(("features", ", ".join(str(c) for c in features.columns)))
    path = str(getattr(layer.source, "path", "") or "")
    rows.append(("path", path or "(not from a file)"))
    return rows


class StackInfoWidget(QWidget):
    """Shows what the selected layer holds; follows the layer selection."""

    def __init__(self, napari_viewer: Any):
        super().__init__()
        self.viewer = napari_viewer
        self.title = QLabel("No layer selected")
        self.title.setWordWrap(True)
        self.form = QFormLayout()
        self.values: dict[str, QLabel] = {}
        layout = scroll_layout(self)
        # a few rows of facts: the docks below (where the work is done) get the height
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        layout.addWidget(self.title)
        layout.addLayout(self.form)
        layout.addStretch(1)
        self.viewer.layers.selection.events.active.connect(self._refresh)
        self.viewer.layers.events.inserted.connect(self._refresh)
        self._refresh()

    def _show_rows(self, rows: list[tuple[str, str]]) -> None:
        """Replace every row: no fact of the previous layer stays on screen."""
        while self.form.rowCount():
            self.form.removeRow(0)
        self.values = {}
        for key, value in rows:
            label = QLabel(value)
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.values[key] = label
            self.form.addRow(f"{key}:", label)

    def _refresh(self, event: Any = None) -> None:
        layer = self.viewer.layers.selection.active
        if layer is None:
            self.title.setText("No layer selected")
            self._show_rows([])
            return
        kind = layer.__class__.__name__.lower()
        self.title.setText(f"<b>{layer.name}</b> ({kind} layer)")
        if kind != "image":
            self._show_rows(other_rows(layer))
            return
        rows = describe_rows(layer_facts(layer))
        record = (layer.metadata or {}).get(META_KEY)
        if record and record.get("file_shape"):
            shape = " x ".join(str(s) for s in record["file_shape"])
            rows.append(("in the file", f"{shape} ({record.get('axes', '')})"))
        self._show_rows(rows)

    def text(self) -> str:
        """The shown facts as ``key: value`` lines (for tests and copying)."""
        return "\n".join(f"{k}: {v.text()}" for k, v in self.values.items())
