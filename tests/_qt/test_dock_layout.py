"""All five docks in one window on a 1000 px screen: each keeps a usable height, the window fits."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.qt

PLUGIN = "napari-celldenoise"
DOCKS = ["Stack info", "Spots", "Classical denoise", "Noise", "Deep denoise"]


def test_every_dock_keeps_a_usable_height_and_the_window_fits_the_screen(make_napari_viewer, qtbot):
    from qtpy.QtWidgets import QApplication

    from napari_celldenoise._qt.scroll import DOCK_MIN_HEIGHT

    viewer = make_napari_viewer(show=True)
    viewer.open_sample(PLUGIN, "noisy_cells")
    window = viewer.window._qt_window
    docks = {}
    for name in DOCKS:  # as the Plugins menu adds them: stacked in the right area, not tabbed
        dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
        docks[name] = (dock, widget)
    screen = QApplication.primaryScreen().availableGeometry()
    assert screen.height() <= 1000
    window.resize(screen.width(), screen.height())
    qtbot.waitUntil(lambda: window.height() <= screen.height(), timeout=5000)
    qtbot.wait(100)
    assert window.minimumSizeHint().height() <= screen.height()
    for name, (dock, widget) in docks.items():
        assert dock.isVisible(), name
        assert widget.height() >= DOCK_MIN_HEIGHT, (name, widget.height())
        # the content scrolls inside the dock instead of stretching the window, and is
        # never cut at the side (the dock is as wide as its fields need)
        area = widget.scroll_area
        assert area.widget().width() <= area.viewport().width(), name
    inner = docks["Noise"][1].scroll_area
    assert inner.widget().sizeHint().height() > inner.viewport().height()  # it scrolls
    assert inner.verticalScrollBar().maximum() > 0


def test_a_dock_widens_when_its_fields_grow_instead_of_cutting_them(make_napari_viewer, qtbot):
    """The Classical dock's "first axis is time" box and the size note appear after it was
    added: the dock grows to show them whole."""
    import numpy as np
    from qtpy.QtWidgets import QApplication

    viewer = make_napari_viewer(show=True)
    screen = QApplication.primaryScreen().availableGeometry()
    viewer.window._qt_window.resize(screen.width(), screen.height())
    _, info = viewer.window.add_plugin_dock_widget(PLUGIN, "Stack info")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Classical denoise")
    viewer.add_image(np.zeros((2, 64, 64), np.float32), name="two planes")  # unlabelled 3D
    widget.set_layer("two planes")
    widget.set_method("bm3d")
    widget.three_d.setChecked(True)
    qtbot.waitUntil(lambda: widget.size_note.isVisible() and widget.axes_choice.time.isVisible())
    area = widget.scroll_area
    qtbot.waitUntil(lambda: area.widget().width() <= area.viewport().width(), timeout=3000)
    qtbot.wait(100)
    assert widget.height() > 2 * info.height()  # Stack info's few facts leave room below
