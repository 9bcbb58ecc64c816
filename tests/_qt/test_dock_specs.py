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
