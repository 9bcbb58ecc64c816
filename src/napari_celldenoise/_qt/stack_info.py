"""The "Stack info" dock: shape, axes, pixel size, channels and origin of the selected layer."""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFormLayout, QLabel, QVBoxLayout, QWidget

from ..io.describe import describe_parts, describe_rows
from ..io.layers import META_KEY, short_unit


def layer_facts(layer: Any) -> dict[str, Any]:
    """:func:`describe_parts` facts for a napari layer, from the reader's record if present."""
    record = (layer.metadata or {}).get(META_KEY, {})
    data = layer.data
    ndim = layer.ndim
    labels = [str(a) for a in getattr(layer, "axis_labels", ())] or [str(i) for i in range(ndim)]
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


class StackInfoWidget(QWidget):
    """Shows what the selected layer holds; follows the layer selection."""

    def __init__(self, napari_viewer: Any):
        super().__init__()
        self.viewer = napari_viewer
        self.title = QLabel("No layer selected")
        self.title.setWordWrap(True)
        self.form = QFormLayout()
        self.values: dict[str, QLabel] = {}
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(self.form)
        layout.addStretch(1)
        self.viewer.layers.selection.events.active.connect(self._refresh)
        self.viewer.layers.events.inserted.connect(self._refresh)
        self._refresh()

    def _row(self, key: str, value: str) -> None:
        if key not in self.values:
            label = QLabel(value)
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.values[key] = label
            self.form.addRow(f"{key}:", label)
        self.values[key].setText(value)

    def _refresh(self, event: Any = None) -> None:
        layer = self.viewer.layers.selection.active
        if layer is None:
            self.title.setText("No layer selected")
            for label in self.values.values():
                label.setText("")
            return
        self.title.setText(f"<b>{layer.name}</b> ({layer.__class__.__name__.lower()} layer)")
        rows = describe_rows(layer_facts(layer))
        record = (layer.metadata or {}).get(META_KEY)
        if record and record.get("file_shape"):
            shape = " x ".join(str(s) for s in record["file_shape"])
            rows.append(("in the file", f"{shape} ({record.get('axes', '')})"))
        for key, value in rows:
            self._row(key, value)

    def text(self) -> str:
        """The shown facts as ``key: value`` lines (for tests and copying)."""
        return "\n".join(f"{k}: {v.text()}" for k, v in self.values.items())
