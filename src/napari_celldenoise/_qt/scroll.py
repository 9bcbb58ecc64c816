"""Docks that scroll: each keeps a usable height when napari stacks several in one area.

napari gives a dock its content's minimum height. Five docks stacked on the right then make
the window taller than the screen, and a dock whose content already scrolls shrinks to a
title bar when others are added above it. :func:`scroll_layout` puts a dock's content in a
scroll area with a fixed, usable minimum height instead.
"""

from __future__ import annotations

from qtpy.QtCore import QEvent, QSize, Qt
from qtpy.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

DOCK_MIN_HEIGHT = 150  # px: a few rows of fields stay visible, five docks fit a 1000 px screen


class DockScroll(QScrollArea):
    """Scrolls vertically only: as wide as its content needs, as short as ``min_height``."""

    def __init__(self, min_height: int):
        super().__init__()
        self._min_height = min_height
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumHeight(min_height)

    def setWidget(self, widget: QWidget) -> None:
        super().setWidget(widget)
        widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        # the content's layout changed (fields added, a note shown): the dock's size follows
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()
        return super().eventFilter(watched, event)

    def _width(self, content: QSize) -> int:
        return content.width() + self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()

    def minimumSizeHint(self) -> QSize:
        inner = self.widget()
        if inner is None:
            return super().minimumSizeHint()
        return QSize(self._width(inner.minimumSizeHint()), self._min_height)

    def sizeHint(self) -> QSize:
        inner = self.widget()
        if inner is None:
            return super().sizeHint()
        hint = inner.sizeHint()
        return QSize(self._width(hint), max(hint.height(), self._min_height))


def scroll_layout(dock: QWidget, min_height: int = DOCK_MIN_HEIGHT) -> QVBoxLayout:
    """The layout to fill with ``dock``'s content, inside a scroll area that fills ``dock``."""
    inner = QWidget()
    area = DockScroll(min_height)
    area.setWidget(inner)
    outer = QVBoxLayout(dock)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(area)
    dock.scroll_area = area
    return QVBoxLayout(inner)
