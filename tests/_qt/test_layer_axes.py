"""Every dock reads an unlabelled 3D layer the same way: slices (ZYX), or time when asked."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.classical import filters
from napari_celldenoise.spots.simulate import simulate_spots

pytestmark = pytest.mark.qt


def _volume() -> np.ndarray:
    rng = np.random.default_rng(4)
    volume = np.zeros((6, 40, 40), np.float32)
    volume[3, 20, 20] = 1000.0  # a point: 3D smoothing spreads it over the slices
    return volume + rng.normal(0, 1, volume.shape).astype(np.float32)


def _apply(widget, viewer, qtbot) -> np.ndarray:
    before = set(viewer.layers)
    widget.apply_to_stack()
    qtbot.waitUntil(lambda: not widget.jobs.running, timeout=20000)
    qtbot.waitUntil(lambda: len(set(viewer.layers) - before - {"preview"}) >= 1, timeout=5000)
    [new] = [ly for ly in viewer.layers if ly not in before and ly.name != "preview"]
    viewer.layers.remove(new)
    return np.asarray(new.data)


def test_classical_dock_filters_an_unlabelled_3d_layer_as_a_volume(make_napari_viewer, qtbot):
    from napari_celldenoise._qt.classical import ClassicalDenoiseWidget

    viewer = make_napari_viewer()
    volume = _volume()
    viewer.add_image(volume, name="volume")
    viewer.add_image(volume, name="named", axis_labels=("Z", "Y", "X"))
    widget = ClassicalDenoiseWidget(viewer)
    qtbot.addWidget(widget)
    widget.live.setChecked(False)
    widget.set_layer("volume")
    choice = widget.axes_choice
    assert choice.label.text() == "axes: ZYX (not named)"
    assert choice.time.isVisibleTo(widget)
    widget.set_method("gaussian")
    widget.sliders["sigma"].set_value(1.5)
    widget.three_d.setChecked(True)
    out = _apply(widget, viewer, qtbot)
    sigma = widget.params()["sigma"]
    planes = np.stack([filters.gaussian(p, sigma=sigma) for p in volume])
    assert planes[2, 20, 20] < 5 < out[2, 20, 20]  # smoothed across slices, not plane by plane
    widget.set_layer("named")
    np.testing.assert_array_equal(out, _apply(widget, viewer, qtbot))
    widget.set_layer("volume")

    choice.time.setChecked(True)  # the user says it is a time series
    assert choice.label.text() == "axes: TYX (not named)"
    assert widget.layer_axes(viewer.layers["volume"]) == "TYX"
    widget.set_layer("named")  # named axes: nothing to choose
    assert choice.label.text() == "axes: ZYX"
    assert not choice.time.isVisibleTo(widget)


def test_noise_dock_reads_repeated_frames_of_an_unlabelled_stack(make_napari_viewer, qtbot):
    from napari_celldenoise._qt.noise import NoiseWidget

    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    mean = np.linspace(50, 500, 64 * 64).reshape(64, 64)
    frames = rng.poisson(mean, (20, 64, 64)).astype(np.float32)
    viewer.add_image(frames, name="frames")
    widget = NoiseWidget(viewer)
    qtbot.addWidget(widget)
    widget.est_layer.setCurrentText("frames")
    assert widget.est_axes.label.text() == "axes: ZYX (not named)"
    widget.est_stack.setChecked(True)
    fit = widget.estimate()
    assert fit is not None and fit.a == pytest.approx(1.0, rel=0.15)
    widget.est_axes.time.setChecked(True)
    assert widget.est_axes.label.text() == "axes: TYX (not named)"
    assert widget.estimate().a == pytest.approx(fit.a)


def test_deep_dock_offers_a_3d_network_for_an_unlabelled_3d_layer(make_napari_viewer):
    from napari_celldenoise._qt.deep import DeepDenoiseWidget

    viewer = make_napari_viewer()
    viewer.add_image(_volume(), name="volume")
    widget = DeepDenoiseWidget(viewer)
    widget.layer_combo.setCurrentText("volume")
    widget.method.setCurrentText("n2v")
    widget.is_3d()
    assert widget.three_d.isVisibleTo(widget)


def test_spots_dock_reports_slices_of_an_unlabelled_3d_layer(make_napari_viewer, qtbot):
    from napari_celldenoise._qt.spots import SpotsWidget

    viewer = make_napari_viewer()
    frames, _ = simulate_spots(3, (48, 48), n_spots=6, background=(5.0, 30.0), seed=2)
    viewer.add_image(frames, name="stack")
    widget = SpotsWidget(viewer)
    qtbot.addWidget(widget)
    with qtbot.waitSignal(widget.jobs.finished, timeout=60000):
        assert widget.run() is not None
    features = viewer.layers["stack spots"].features
    assert len(features) > 0
    assert set(features["z"]) == {0, 1, 2} and set(features["frame"]) == {0}
