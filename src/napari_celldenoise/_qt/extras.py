"""A dock says when it was opened without the extra that some of its buttons need."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel, QWidget

from ..extras import MissingExtra, missing_module


def missing_extra_label(
    extra: str, purpose: str | None = None, *, disable: tuple[QWidget, ...] = ()
) -> QLabel | None:
    """A label naming what to install when ``extra`` is missing (and ``disable`` disabled),
    or None when it is installed."""
    module = missing_module(extra)
    if module is None:
        return None
    label = QLabel(str(MissingExtra(extra, module, purpose)))
    label.setObjectName("missing-extra")
    label.setWordWrap(True)
    label.setStyleSheet("color: #f0a030;")
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    for widget in disable:
        widget.setEnabled(False)
        widget.setToolTip(label.text())
    return label


__all__ = ["missing_extra_label"]
