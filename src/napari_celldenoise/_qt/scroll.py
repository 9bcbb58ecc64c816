"""Docks that scroll: each keeps a usable height when napari stacks several in one area.

napari gives a dock its content's minimum height. Five docks stacked on the right then make
the window taller than the screen, and a dock whose content already scrolls shrinks to a
title bar when others are added above it. :func:`scroll_layout` puts a dock's content in a
scroll area with a fixed, usable minimum height instead.
"""

from __future__ import annotations

from qtpy.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

DOCK_MIN_HEIGHT = 150  # px: a few rows of fields stay visible, five docks fit a 1000 px screen


def scroll_layout(dock: QWidget, min_height: int = DOCK_MIN_HEIGHT) -> QVBoxLayout:
    """The layout to fill with ``dock``'s content, inside a scroll area that fills ``dock``."""
    inner = QWidget()
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(inner)
    area.setMinimumHeight(min_height)
    outer = QVBoxLayout(dock)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(area)
    dock.scroll_area = area
    return QVBoxLayout(inner)
