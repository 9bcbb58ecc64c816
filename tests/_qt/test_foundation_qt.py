"""What a user sees in napari: files open with the right scale, Stack info, job panel."""

from __future__ import annotations

import time

import numpy as np
import pytest
import tifffile

pytestmark = pytest.mark.qt

PLUGIN = "napari-celldenoise"


def _ome(path):
    data = np.random.default_rng(0).integers(0, 1000, (2, 3, 2, 16, 20), dtype=np.uint16)
    tifffile.imwrite(
        path,
        data,
        ome=True,
        metadata={
            "axes": "TZCYX",
            "PhysicalSizeX": 0.1,
            "PhysicalSizeY": 0.1,
            "PhysicalSizeZ": 0.4,
            "TimeIncrement": 3.0,
            "Channel": {"Name": ["DAPI", "GFP"]},
        },
    )
    return path


def test_five_axis_ome_opens_as_two_channel_layers_with_scale(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    layers = viewer.open(str(_ome(tmp_path / "cells.ome.tif")), plugin=PLUGIN)
    assert [layer.name for layer in layers] == ["cells [DAPI]", "cells [GFP]"]
    for layer in layers:
        assert tuple(layer.scale) == (3.0, 0.4, 0.1, 0.1)
        assert layer.data.shape == (2, 3, 16, 20)
        assert [str(u) for u in layer.units][-1] == "micrometer"


def test_imagej_hyperstack_opens_with_scale(make_napari_viewer, tmp_path):
    data = np.zeros((2, 4, 2, 12, 12), np.float32)
    tifffile.imwrite(
        tmp_path / "h.tif",
        data,
        imagej=True,
        resolution=(1 / 0.25, 1 / 0.25),
        metadata={"axes": "TZCYX", "unit": "um", "spacing": 0.8, "finterval": 10.0},
    )
    viewer = make_napari_viewer()
    layers = viewer.open(str(tmp_path / "h.tif"), plugin=PLUGIN)
    assert len(layers) == 2
    assert tuple(layers[0].scale) == pytest.approx((10.0, 0.8, 0.25, 0.25))


def test_broken_file_gives_a_notification_not_a_crash(make_napari_viewer, tmp_path):
    from napari.utils.notifications import notification_manager

    viewer = make_napari_viewer()
    path = tmp_path / "truncated.tif"
    tifffile.imwrite(path, np.ones((4, 64, 64), np.uint16), photometric="minisblack")
    path.write_bytes(path.read_bytes()[:5000])
    seen = []
    notification_manager.notification_ready.connect(lambda n: seen.append(n.message))
    layers = viewer.open(str(path), plugin=PLUGIN)
    assert layers == [] and len(viewer.layers) == 0
    assert any("truncated.tif" in m and "truncated file" in m for m in seen)


def test_stack_info_dock_shows_the_selected_layer(make_napari_viewer, tmp_path, qtbot):
    from napari_celldenoise._qt.stack_info import StackInfoWidget

    viewer = make_napari_viewer()
    widget = StackInfoWidget(viewer)
    qtbot.addWidget(widget)
    assert "No layer selected" in widget.title.text()
    viewer.open(str(_ome(tmp_path / "cells.ome.tif")), plugin=PLUGIN)
    viewer.layers.selection.active = viewer.layers["cells [GFP]"]
    text = widget.text()
    assert "axes: TZYX" in text and "channels: GFP" in text
    assert "in the file: 2 x 3 x 2 x 16 x 20 (TZCYX)" in text
    assert "X 0.1 µm" in text and "T 3 s" in text and "Z 0.4 µm" in text
    assert "format: ome-tiff" in text and "lazy: no" in text
    viewer.add_image(np.zeros((5, 6)), name="plain", scale=(2, 2))
    viewer.layers.selection.active = viewer.layers["plain"]
    assert "shape: 5 x 6" in widget.text() and "(not from a file)" in widget.text()


def test_sample_data_and_dock_from_the_menu(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "noisy_cells")
    viewer.open_sample(PLUGIN, "spot_movie")
    assert {"cells (noisy)", "cells (clean)", "spots", "spots (truth)"} <= {
        layer.name for layer in viewer.layers
    }
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Stack info")
    viewer.layers.selection.active = viewer.layers["spots"]
    assert "shape: 20 x 128 x 128" in widget.text()


def test_save_layer_through_our_writer(make_napari_viewer, tmp_path):
    from napari_celldenoise.io import read_image

    viewer = make_napari_viewer()
    viewer.add_image(np.ones((3, 8, 8), np.float32), scale=(0.5, 0.2, 0.2), name="vol")
    viewer.layers[0].units = ("micrometer",) * 3
    out = tmp_path / "vol.ome.tif"
    viewer.layers.save(str(out), selected=False, plugin=PLUGIN)
    image = read_image(out)
    assert image.shape == (3, 8, 8) and image.scale == {"Z": 0.5, "Y": 0.2, "X": 0.2}


def _slow_job(n, *, should_stop):
    from napari_celldenoise.jobs import Done, Progress

    for i in range(n):
        if should_stop():
            yield Done(result=i, stopped=True)
            return
        time.sleep(0.02)
        yield Progress(i + 1, n, f"frame {i + 1}/{n}")
    yield Done(result=n)


def test_job_panel_shows_progress_and_result(qtbot):
    from napari_celldenoise._qt.jobs import JobPanel

    panel = JobPanel()
    qtbot.addWidget(panel)
    results = []
    with qtbot.waitSignal(panel.finished, timeout=10000):
        panel.start(lambda stop: _slow_job(10, should_stop=stop), on_done=results.append)
    assert results == [10]
    assert panel.progress.value() == panel.progress.maximum() and panel.status.text() == "done"
    assert not panel.cancel_button.isEnabled()


def _warning_job(*, should_stop):
    from napari_celldenoise.jobs import Done, Log

    yield Log("1,234 candidates a plane", level="warning")
    yield Log("an info line after it")
    yield Done(result=1)


def test_job_panel_keeps_a_warning_past_the_end(qtbot):
    """A job's warning is notified and still on the status line once the job is done (an
    info line or Done does not overwrite it); the next job starts without it."""
    from napari_celldenoise._qt.jobs import JobPanel

    panel = JobPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.finished, timeout=10000):
        panel.start(lambda stop: _warning_job(should_stop=stop))
    assert panel.warnings == ["1,234 candidates a plane"]
    assert panel.status.text() == "done; ⚠ 1,234 candidates a plane"
    with qtbot.waitSignal(panel.finished, timeout=10000):
        panel.start(lambda stop: _slow_job(2, should_stop=stop))
    assert panel.warnings == [] and panel.status.text() == "done"


def test_job_panel_cancel_stops_the_job(qtbot):
    from napari_celldenoise._qt.jobs import JobPanel

    panel = JobPanel()
    qtbot.addWidget(panel)
    results = []
    panel.start(lambda stop: _slow_job(10_000, should_stop=stop), on_done=results.append)
    qtbot.waitUntil(lambda: panel.progress.value() > 3, timeout=5000)
    assert panel.cancel_button.isEnabled()
    with qtbot.waitSignal(panel.finished, timeout=10000):
        qtbot.mouseClick(panel.cancel_button, _left())
    assert results and results[0] < 10_000
    assert panel.status.text() == "stopped"


def test_job_panel_keeps_the_progress_reached_after_a_stop(qtbot):
    """A stopped job's bar shows the share of its planned steps that was done, not 0 %."""
    from napari_celldenoise._qt.jobs import JobPanel

    panel = JobPanel()
    qtbot.addWidget(panel)
    results = []
    panel.start(lambda stop: _slow_job(200, should_stop=stop), on_done=results.append)
    qtbot.waitUntil(lambda: panel.progress.value() >= 5, timeout=5000)
    with qtbot.waitSignal(panel.finished, timeout=10000):
        panel.cancel()
    assert panel.status.text() == "stopped"
    assert panel.progress.maximum() == 200
    assert panel.progress.value() == results[0]  # the frames done when it stopped
    assert 5 <= panel.progress.value() < 200
    # a stop before the first Progress leaves an empty bar, not a busy one
    with qtbot.waitSignal(panel.finished, timeout=10000):
        panel.start(lambda stop: _stopped_at_once(should_stop=stop))
        panel.cancel()
    assert (panel.progress.minimum(), panel.progress.maximum(), panel.progress.value()) == (0, 1, 0)


def _stopped_at_once(*, should_stop):
    from napari_celldenoise.jobs import Done

    while not should_stop():
        time.sleep(0.01)
    yield Done(result=None, stopped=True)


def _left():
    from qtpy.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_large_file_opens_lazily_in_the_viewer(make_napari_viewer, tmp_path, monkeypatch):
    monkeypatch.setenv("CELLDENOISE_LAZY_LIMIT", "10kB")
    data = np.arange(6 * 2 * 32 * 32, dtype=np.uint16).reshape(6, 2, 32, 32)
    tifffile.imwrite(tmp_path / "big.tif", data, imagej=True, metadata={"axes": "TCYX"})
    viewer = make_napari_viewer()
    layers = viewer.open(str(tmp_path / "big.tif"), plugin=PLUGIN)
    assert len(layers) == 2 and all(hasattr(layer.data, "dask") for layer in layers)
    lo, hi = layers[1].contrast_limits
    assert lo == data[3, 1].min() and hi == data[3, 1].max()
    np.testing.assert_array_equal(np.asarray(layers[0].data[2]), data[2, 0])


def test_layers_made_by_the_docks_keep_units_consistent(make_napari_viewer, qtbot):
    """A layer without the source's units makes napari drop units for every layer."""
    from napari_celldenoise._qt.demo import DOCKS

    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "noisy_cells")
    viewer.open_sample(PLUGIN, "spot_movie")
    for name in DOCKS:
        viewer.window.add_plugin_dock_widget(PLUGIN, name)
    viewer.layers.selection.active = viewer.layers["cells (noisy)"]
    qtbot.wait(1500)  # debounced live previews
    assert len(viewer.layers) >= 4
    assert viewer.layers.extent.units is not None, [
        (layer.name, [str(u) for u in layer.units]) for layer in viewer.layers
    ]
