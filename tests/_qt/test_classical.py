"""What a user sees in the "Classical denoise" and "Noise" docks."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.classical import filters
from napari_celldenoise.synthetic import fluorescence_image

pytestmark = pytest.mark.qt


@pytest.fixture
def noisy_image():
    noisy, clean = fluorescence_image((192, 192), seed=11)
    return noisy, clean


@pytest.fixture
def dock(make_napari_viewer, qtbot, noisy_image):
    from napari_celldenoise._qt.classical import ClassicalDenoiseWidget

    viewer = make_napari_viewer()
    noisy, clean = noisy_image
    viewer.add_image(clean, name="clean", scale=(0.1, 0.1))
    viewer.add_image(noisy, name="noisy", scale=(0.1, 0.1))
    widget = ClassicalDenoiseWidget(viewer)
    qtbot.addWidget(widget)
    widget.set_layer("noisy")
    return viewer, widget


def _wait_preview(qtbot, widget, timeout=15000):
    qtbot.waitUntil(lambda: not widget.busy and "preview" in widget.viewer.layers, timeout=timeout)


def test_moving_a_slider_changes_the_preview(dock, qtbot, noisy_image):
    viewer, widget = dock
    widget.set_method("gaussian")
    _wait_preview(qtbot, widget)
    before = np.array(viewer.layers["preview"].data)
    slider = widget.sliders["sigma"]
    with qtbot.waitSignal(widget.preview_updated, timeout=5000):
        slider.slider.setValue(slider.slider.value() + 400)
    after = np.array(viewer.layers["preview"].data)
    sigma = slider.value()
    assert sigma > 1.5
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, filters.gaussian(noisy_image[0], sigma=sigma), rtol=1e-5)
    assert viewer.layers["preview"].scale[-1] == pytest.approx(0.1)
    assert widget.last_preview_ms is not None and widget.last_preview_ms < 1000


def test_heavy_preview_runs_in_a_worker_and_keeps_only_the_newest(dock, qtbot, noisy_image):
    viewer, widget = dock
    widget.set_method("nlm")
    _wait_preview(qtbot, widget)
    slider = widget.sliders["h"]
    for pos in (100, 300, 500, 700, 900):  # faster than the worker: stale results dropped
        slider.slider.setValue(pos)
        qtbot.wait(20)
    _wait_preview(qtbot, widget, 30000)
    qtbot.wait(200)
    info = widget.noise()
    expected = filters.nlm(noisy_image[0], h=slider.value(), sigma=info.sigma)
    np.testing.assert_allclose(viewer.layers["preview"].data, expected, rtol=1e-4, atol=1e-3)


def test_preview_follows_the_current_plane_of_a_stack(make_napari_viewer, qtbot):
    from napari_celldenoise._qt.classical import ClassicalDenoiseWidget

    viewer = make_napari_viewer()
    stack = np.stack([np.full((32, 32), 10.0 * i, np.float32) for i in range(5)])
    stack += np.random.default_rng(0).normal(0, 1, stack.shape).astype(np.float32)
    viewer.add_image(stack, name="stack", axis_labels=("T", "Y", "X"))
    widget = ClassicalDenoiseWidget(viewer)
    qtbot.addWidget(widget)
    widget.set_method("median")
    viewer.dims.set_current_step(0, 3)
    qtbot.wait(200)
    _wait_preview(qtbot, widget)
    assert viewer.layers["preview"].data.shape == (32, 32)
    assert float(np.mean(viewer.layers["preview"].data)) == pytest.approx(30.0, abs=0.5)


def test_auto_tune_sets_the_slider_and_plots_the_loss_curve(dock, qtbot):
    _, widget = dock
    widget.set_method("gaussian")
    widget.auto_tune()
    qtbot.waitUntil(lambda: not widget.jobs.running, timeout=30000)
    result = widget.last_tune
    assert result is not None and result.param == "sigma"
    assert 0.5 < result.best < 3.0
    assert widget.sliders["sigma"].value() == pytest.approx(result.best, rel=1e-6)
    assert "sigma =" in widget.tune_label.text()
    if widget.axes is not None:
        assert len(widget.axes.lines) >= 1


def test_apply_to_stack_adds_a_layer_with_the_same_scale(make_napari_viewer, qtbot):
    from napari_celldenoise._qt.classical import ClassicalDenoiseWidget

    viewer = make_napari_viewer()
    stack = np.random.default_rng(1).poisson(20, (4, 48, 48)).astype(np.uint16)
    viewer.add_image(stack, name="s", scale=(2.0, 0.2, 0.2), axis_labels=("T", "Y", "X"))
    widget = ClassicalDenoiseWidget(viewer)
    qtbot.addWidget(widget)
    widget.set_method("median")
    widget.apply_to_stack()
    qtbot.waitUntil(lambda: not widget.jobs.running, timeout=20000)
    qtbot.waitUntil(lambda: len(viewer.layers) >= 2, timeout=5000)
    out = [ly for ly in viewer.layers if ly.name.startswith("s median")]
    assert len(out) == 1
    assert out[0].data.shape == stack.shape and out[0].data.dtype == np.float32
    assert tuple(out[0].scale) == pytest.approx((2.0, 0.2, 0.2))
    np.testing.assert_allclose(out[0].data[2], filters.median(stack[2], size=3))


def test_cancel_stops_a_running_stack_job_without_a_result_layer(make_napari_viewer, qtbot):
    from napari_celldenoise._qt.classical import ClassicalDenoiseWidget

    viewer = make_napari_viewer()
    stack = np.random.default_rng(2).normal(100, 10, (60, 96, 96)).astype(np.float32)
    viewer.add_image(stack, name="long", axis_labels=("T", "Y", "X"))
    widget = ClassicalDenoiseWidget(viewer)
    qtbot.addWidget(widget)
    widget.live.setChecked(False)
    qtbot.waitUntil(lambda: not widget.busy, timeout=20000)
    widget.set_method("tv")
    widget.apply_to_stack()
    assert widget.jobs.running
    qtbot.waitUntil(lambda: widget.jobs.progress.maximum() == 60, timeout=20000)
    widget.jobs.cancel_button.click()
    qtbot.waitUntil(lambda: not widget.jobs.running and not widget.busy, timeout=20000)
    assert widget.jobs.progress.value() < 60
    assert [ly.name for ly in viewer.layers if ly.name != "preview"] == ["long"]
    assert widget.jobs.status.text() == "stopped"


def test_noise_dock_estimates_adds_and_compares(make_napari_viewer, qtbot):
    from napari_celldenoise._qt.noise import NoiseWidget
    from napari_celldenoise.classical.noise import add_poisson_gaussian

    viewer = make_napari_viewer()
    _, clean = fluorescence_image((256, 256), seed=3)
    clean = (clean - clean.min()) * 10 + 20
    viewer.add_image(clean, name="clean")
    viewer.add_image(add_poisson_gaussian(clean, 3.0, 25.0, rng=0), name="pg")
    widget = NoiseWidget(viewer)
    qtbot.addWidget(widget)
    widget.est_layer.setCurrentText("pg")
    fit = widget.estimate()
    assert fit.model == "poisson-gaussian" and fit.a == pytest.approx(3.0, rel=0.2)
    assert "a = " in widget.est_result.text()
    widget.add_layer.setCurrentText("clean")
    widget.kind.setCurrentText("gaussian")
    widget.sigma.setValue(4.0)
    layer = widget.add_noise()
    assert layer.name.startswith("clean + gaussian")
    assert np.std(layer.data - clean) == pytest.approx(4.0, rel=0.05)
    widget.cmp_image.setCurrentText(layer.name)
    widget.cmp_ref.setCurrentText("clean")
    values = widget.compare()
    expected = 10 * np.log10(float(np.ptp(clean)) ** 2 / 16.0)
    assert values["psnr"] == pytest.approx(expected, abs=0.2)
    assert "PSNR" in widget.cmp_result.text()


def _notifications():
    from napari.utils.notifications import notification_manager

    seen = []
    notification_manager.notification_ready.connect(lambda n: seen.append(str(n.message)))
    return seen


def test_a_volume_too_thin_for_bm4d_is_refused_with_a_note_and_no_layer(make_napari_viewer, qtbot):
    """Two planes in true 3D with BM3D: the reason beside the sliders and as a notification,
    no preview, no result layer, and the dock stays usable."""
    from napari_celldenoise._qt.classical import ClassicalDenoiseWidget

    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    viewer.add_image(rng.normal(100, 5, (2, 48, 48)).astype(np.float32), name="two planes")
    widget = ClassicalDenoiseWidget(viewer)
    qtbot.addWidget(widget)
    widget.show()
    seen = _notifications()
    widget.set_layer("two planes")
    widget.set_method("bm3d")
    widget.three_d.setChecked(True)
    qtbot.waitUntil(lambda: not widget.busy, timeout=5000)
    assert widget.size_note.isVisible() and "at least 6 px" in widget.size_note.text()
    assert "preview" not in viewer.layers
    layers = len(viewer.layers)
    assert widget.apply_to_stack() is None
    qtbot.wait(50)
    assert len(viewer.layers) == layers and not widget.jobs.running
    assert any("bm3d" in m and "2 x 48 x 48" in m for m in seen)
    widget.three_d.setChecked(False)  # plane by plane: 48 x 48 planes are fine
    qtbot.waitUntil(lambda: "preview" in viewer.layers and not widget.busy, timeout=60000)
    assert not widget.size_note.isVisible()


def test_plots_say_no_data_until_something_is_measured(dock, qtbot):
    from napari_celldenoise._qt.noise import NoiseWidget

    viewer, widget = dock
    noise = NoiseWidget(viewer)
    qtbot.addWidget(noise)
    for ax in (widget.axes, noise.axes):
        assert not ax.axison and "no data yet" in ax.texts[0].get_text()
    noise.est_layer.setCurrentText("noisy")
    assert noise.estimate() is not None
    assert noise.axes.axison and not noise.axes.texts


@pytest.mark.slow
def test_the_preview_comes_back_on_top_of_an_applied_result(make_napari_viewer, qtbot):
    """An applied result added above the preview would hide it: moving a slider brings the
    preview back to the top, as the pixels drawn show (the result is tinted green)."""
    from napari_celldenoise._qt.classical import ClassicalDenoiseWidget

    viewer = make_napari_viewer(show=True)  # a hidden canvas renders nothing
    viewer.add_image(fluorescence_image((96, 96), seed=11)[0], name="noisy")
    widget = ClassicalDenoiseWidget(viewer)
    qtbot.addWidget(widget)
    widget.set_layer("noisy")
    widget.set_method("gaussian")
    _wait_preview(qtbot, widget)
    widget.apply_to_stack()
    qtbot.waitUntil(lambda: not widget.jobs.running and len(viewer.layers) == 3, timeout=20000)
    result = viewer.layers[-1]
    assert result.name.startswith("noisy gaussian")
    result.colormap = "green"

    def drawn():
        """Pixels drawn green (the result) and grey but not black (the preview)."""
        viewer.reset_view()
        rgb = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        green = (g - r > 30) & (g - b > 30)
        grey = (abs(g - r) < 3) & (abs(g - b) < 3) & (g > 40)
        return int(green.sum()), int(grey.sum())

    green, grey = drawn()
    assert green > 1000 and grey < green / 10  # the green result hides the preview
    widget.sliders["sigma"].set_value(2.5)
    qtbot.waitUntil(lambda: viewer.layers[-1].name == "preview" and not widget.busy, timeout=5000)
    green, grey = drawn()
    assert grey > 1000 and green < grey / 10  # the grey preview is drawn on top
