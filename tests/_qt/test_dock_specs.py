"""Each dock's output layer records the spec that made it; run through the CLI it gives the
identical result (issue 23: one spec for every job)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_celldenoise.cli import main
from napari_celldenoise.io import read_image
from napari_celldenoise.jobs.provenance import spec_of
from napari_celldenoise.jobs.specs import save_spec
from napari_celldenoise.spots.simulate import simulate_spots
from napari_celldenoise.synthetic import fluorescence_image

pytestmark = pytest.mark.qt
PLUGIN = "napari-celldenoise"


def _ome(path, data, axes):
    meta = {"axes": axes, "PhysicalSizeX": 0.1, "PhysicalSizeY": 0.1}
    tifffile.imwrite(path, data, ome=True, metadata=meta)
    return str(path)


def _replay(layer, tmp_path):
    from napari_celldenoise._qt.provenance import layer_spec

    spec = layer_spec(layer)
    assert spec is not None, layer.metadata
    saved = save_spec(spec, tmp_path / "from-the-dock.yaml")
    assert main(["run", str(saved), "-q"]) == 0
    return spec


@pytest.mark.slow
def test_the_spots_docks_recorded_spec_gives_the_identical_table(
    make_napari_viewer, qtbot, tmp_path
):
    from napari_celldenoise._qt.provenance import layer_spec
    from napari_celldenoise._qt.spots import SpotsWidget
    from napari_celldenoise.io.spots_csv import read_spots_csv

    frames, _ = simulate_spots(3, (64, 64), n_spots=10, background=(5.0, 30.0), seed=5)
    path = _ome(tmp_path / "movie.ome.tif", frames, "TYX")
    viewer = make_napari_viewer()
    viewer.open(path, plugin=PLUGIN)
    widget = SpotsWidget(viewer)
    qtbot.addWidget(widget)
    widget.offset_spin.setValue(90.0)  # a setting away from its default travels too
    with qtbot.waitSignal(widget.jobs.finished, timeout=60000):
        assert widget.run() is not None
    points = viewer.layers["movie spots"]
    spec = _replay(points, tmp_path)
    assert spec.kind == "spots" and spec.config.offset == 90.0 and spec.input.path == path
    replayed = read_spots_csv(spec.output)
    docked = read_spots_csv(widget.save_csv(str(tmp_path / "dock.csv")))
    assert len(docked) >= 20
    pd.testing.assert_frame_equal(replayed, docked)
    assert spec_of(tmp_path / "dock.csv") == spec == spec_of(spec.output)
    widget.set_classes(np.array(["bad"]), rows=np.array([0]), user=True)  # an edit
    assert spec_of(widget.save_csv(str(tmp_path / "edited.csv"))) is None
    assert layer_spec(points) is None and points.metadata["celldenoise"]["edited"]


@pytest.mark.slow
def test_the_classical_docks_recorded_spec_gives_the_identical_pixels(
    make_napari_viewer, qtbot, tmp_path
):
    from napari_celldenoise._qt.classical import ClassicalDenoiseWidget

    noisy, _ = fluorescence_image((64, 64), seed=3)
    stack = np.stack([noisy, noisy[::-1]]).astype(np.float32)
    path = _ome(tmp_path / "cells.ome.tif", stack, "TYX")
    viewer = make_napari_viewer()
    viewer.open(path, plugin=PLUGIN)
    widget = ClassicalDenoiseWidget(viewer)
    qtbot.addWidget(widget)
    widget.set_method("tv")
    widget.vst.setChecked(True)
    widget.sliders["weight"].set_value(0.7)
    before = len(viewer.layers)
    widget.apply_to_stack()
    qtbot.waitUntil(lambda: not widget.jobs.running and len(viewer.layers) > before, timeout=30000)
    result = next(ly for ly in viewer.layers if ly.name.startswith("cells tv("))
    spec = _replay(result, tmp_path)
    assert spec.config.vst and spec.config.noise_a is not None
    replayed = read_image(spec.output)
    assert np.array_equal(np.asarray(replayed.data), np.asarray(result.data))
    assert spec_of(spec.output) == spec
    saved = tmp_path / "saved from napari.ome.tif"  # File > Save Selected Layer
    viewer.layers.selection.active = result
    viewer.layers.save(str(saved), selected=True, plugin=PLUGIN)
    assert spec_of(saved) == spec
    widget.live.setChecked(False)  # a preview still computing ends before the viewer closes
    qtbot.waitUntil(lambda: widget._worker is None, timeout=30000)


@pytest.mark.slow
def test_the_deep_docks_recorded_predict_spec_gives_the_identical_pixels(
    make_napari_viewer, qtbot, tmp_path
):
    """Train a tiny network in the dock, Denoise a layer read from a file, replay its spec."""
    import sys

    from napari_celldenoise._qt.deep import DeepDenoiseWidget

    noisy, _ = fluorescence_image((64, 64), seed=7)
    path = _ome(tmp_path / "cells.ome.tif", noisy.astype(np.float32), "YX")
    viewer = make_napari_viewer()
    (layer,) = viewer.open(path, plugin=PLUGIN)
    widget = DeepDenoiseWidget(viewer)
    qtbot.addWidget(widget)
    widget.layer_combo.setCurrentText(layer.name)
    widget.folder.setText(str(tmp_path / "model"))
    widget.patch.setValue(32)
    widget.batch.setValue(2)
    widget.steps.setValue(2)
    widget.epochs.setValue(1)
    with qtbot.waitSignal(widget.panel.finished, timeout=180_000):
        assert widget.start_training() is not None
    widget.ensemble.setChecked(True)  # a setting away from its default travels too
    with qtbot.waitSignal(widget.panel.finished, timeout=180_000):
        widget.predict_button.click()
    result = viewer.layers[f"{layer.name} (denoised)"]
    spec = _replay(result, tmp_path)
    assert spec.kind == "predict" and spec.model == str(tmp_path / "model")
    assert spec.input.path == path and spec.config.ensemble
    replayed = read_image(spec.output)
    assert np.array_equal(np.asarray(replayed.data), np.asarray(result.data))
    assert spec_of(spec.output) == spec
    assert "tensorflow" not in sys.modules  # the replay ran in a child too


def test_the_noise_docks_recorded_spec_gives_the_identical_pixels(
    make_napari_viewer, qtbot, tmp_path
):
    from napari_celldenoise._qt.noise import NoiseWidget

    clean, _ = fluorescence_image((48, 48), seed=2)
    stack = np.stack([clean, clean[::-1]]).astype(np.uint16)
    path = _ome(tmp_path / "clean.ome.tif", stack, "ZYX")
    viewer = make_napari_viewer()
    (layer,) = viewer.open(path, plugin=PLUGIN)
    widget = NoiseWidget(viewer)
    qtbot.addWidget(widget)
    widget.add_layer.setCurrentText(layer.name)
    widget.kind.setCurrentText("poisson-gaussian")
    widget.gain.setValue(2.5)
    widget.read_var.setValue(4.0)
    widget.seed.setValue(11)
    noisy = widget.add_noise()
    assert noisy.name == f"{layer.name} + poisson-gaussian (a=2.5, b=4)"
    spec = _replay(noisy, tmp_path)
    assert spec.kind == "add-noise" and spec.config.a == 2.5 and spec.config.seed == 11
    replayed = read_image(spec.output)
    assert replayed.axes == "ZYX" and np.asarray(replayed.data).dtype == np.float32
    assert np.array_equal(np.asarray(replayed.data), np.asarray(noisy.data))
    assert not np.array_equal(np.asarray(noisy.data), stack)  # noise was added
    assert spec_of(spec.output) == spec
