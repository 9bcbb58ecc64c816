"""The axes of the selected layer, shown in a dock, with "treat as time" for unlabelled 3D.

Every dock reads a layer's axes through :func:`~napari_celldenoise.io.layers.layer_axes`: the
reader's axes for a layer from a file, its axis labels when they are letters, otherwise ``ZYX``
for a 3D layer. :class:`AxesChoice` shows the result and, only when nothing names the axes of a
3D layer, offers to read its first axis as time (``TYX``) instead.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QWidget

from ..io.layers import layer_axes, layer_axes_guessed


class AxesChoice(QWidget):
    """A label "axes: ZYX" and, for an unlabelled 3D layer, a "first axis is time" box.

    Call :meth:`set_layer` when the dock's layer changes and read axes with :meth:`axes`;
    ``changed`` is emitted when the user toggles the box.
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.label = QLabel("")
        self.time = QCheckBox("first axis is time (T)")
        self.time.setToolTip(
            "The layer does not name its axes, so its first axis is read as Z (slices). "
            "Tick this for a time series: frames are then filtered or compared as time points."
        )
        self.time.setVisible(False)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label)
        row.addWidget(self.time)
        row.addStretch(1)
        self._layer: Any = None
        self.time.toggled.connect(self._toggled)

    def offered(self, layer: Any) -> bool:
        """Whether "first axis is time" applies to ``layer`` (3D, axes named by nothing)."""
        return layer is not None and layer.ndim == 3 and layer_axes_guessed(layer)

    def axes(self, layer: Any) -> str:
        """The axes the dock uses for ``layer``."""
        return layer_axes(layer, time=self.offered(layer) and self.time.isChecked())

    def set_layer(self, layer: Any) -> None:
        """Show the axes of ``layer`` (None: nothing selected)."""
        self._layer = layer
        self.time.setVisible(self.offered(layer))
        self._show()

    def _toggled(self, _: bool) -> None:
        self._show()
        self.changed.emit()

    def _show(self) -> None:
        layer = self._layer
        if layer is None:
            self.label.setText("")
            return
        guessed = layer_axes_guessed(layer)
        self.label.setText(f"axes: {self.axes(layer)}" + (" (not named)" if guessed else ""))
