"""Figures drawn off the GUI thread: shown when drawn, and harmless after the dock closed."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.qt


def _slow_plot(figure, values):
    time.sleep(0.3)  # a drawing that outlasts the label
    figure.add_subplot(111).plot(values)


def test_a_figure_is_drawn_in_a_worker_and_survives_its_label(qtbot):
    from PyQt6 import sip

    from napari_celldenoise._qt.figure_thread import ThreadedFigure

    view = ThreadedFigure((3.0, 2.0), 100, "white")
    qtbot.addWidget(view)
    shown = []
    view.drawn.connect(lambda pixels: shown.append(pixels.shape))
    start = time.perf_counter()
    view.render(_slow_plot, [1, 3, 2])
    assert time.perf_counter() - start < 0.1  # the caller does not wait for the drawing
    qtbot.waitUntil(lambda: bool(shown), timeout=20_000)
    assert shown[0][2] == 4 and not view.pixmap().isNull()
    other = ThreadedFigure((3.0, 2.0), 100, "white")
    other.render(_slow_plot, [1, 2])
    sip.delete(other)  # the dock closed while it draws: the pixels arrive for no one
    time.sleep(0.6)
    qtbot.wait(200)
    assert len(shown) == 1
