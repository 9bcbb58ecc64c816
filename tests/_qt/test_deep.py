"""The Deep denoise dock: training through the child process, loss plot, preview, Stop."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from napari_celldenoise.synthetic import fluorescence_image

pytestmark = pytest.mark.qt


@pytest.fixture
def dock(make_napari_viewer, tmp_path):
    from napari_celldenoise._qt.deep import DeepDenoiseWidget

    viewer = make_napari_viewer()
    noisy, _ = fluorescence_image((96, 96), seed=5)
    viewer.add_image(noisy, name="noisy", scale=(0.2, 0.2), axis_labels=("Y", "X"))
    widget = DeepDenoiseWidget(viewer)
    widget.folder.setText(str(tmp_path / "model"))
    widget.patch.setValue(32)
    widget.batch.setValue(2)
    widget.steps.setValue(2)
    return viewer, widget


def test_widget_values_build_the_config_and_estimate(dock):
    _, w = dock
    w.method.setCurrentText("structn2v")
    w.mask_editor.buttons[3][2].click()
    w.mask_editor.buttons[3][4].click()
    config = w.config()
    assert config.method == "structn2v" and config.mask == [[1, 1, 1]]
    assert w.mask_box.isVisibleTo(w)
    w.patch.setValue(34)  # not a multiple of 2**depth = 4
    assert "multiple" in w.estimate.text()
    w.patch.setValue(32)
    assert "s per epoch" in w.estimate.text()
    w.method.setCurrentText("pg-blindspot")
    w.patch.setValue(64)
    w.batch.setValue(16)
    w.steps.setValue(100)  # about 4 min an epoch on 2 CPU cores
    assert "min per epoch" in w.estimate.text() and "e+" not in w.estimate.text()


def test_pg_shows_test_time_adaptation_and_its_steps(dock):
    _, w = dock
    w.method.setCurrentText("n2v")
    assert not w.tta_box.isVisibleTo(w)
    w.method.setCurrentText("pg-blindspot")
    assert w.tta_box.isVisibleTo(w)
    w.tta_steps.setValue(250)
    assert w.predict_config().tta_steps == 250 and w.predict_config().tta
    w.tta.setChecked(False)
    assert not w.tta_steps.isEnabled() and not w.predict_config().tta


def test_propose_mask_shows_the_autocorrelation(dock):
    from scipy import ndimage as ndi

    viewer, w = dock
    rng = np.random.default_rng(0)
    smeared = ndi.convolve1d(rng.normal(size=(128, 128)), [1.0, 1.0, 1.0], axis=1) + 100
    viewer.add_image(smeared, name="streaky")
    w.layer_combo.setCurrentText("streaky")
    w.method.setCurrentText("structn2v")
    w.propose_mask()
    assert w.mask_editor.mask() == [[1, 1, 1, 1, 1]]
    assert "noise autocorrelation" in viewer.layers


def test_3d_network_proposes_and_edits_a_zyx_mask(dock):
    from scipy import ndimage as ndi

    viewer, w = dock
    rng = np.random.default_rng(1)
    smeared = ndi.convolve1d(rng.normal(size=(24, 64, 64)), [1.0, 1.0, 1.0], axis=0) + 100
    viewer.add_image(smeared, name="volume", axis_labels=("z", "y", "x"))
    w.layer_combo.setCurrentText("volume")
    w.method.setCurrentText("structn2v")
    assert w.three_d.isVisibleTo(w)
    w.three_d.setChecked(True)
    assert w.mask_editor.z_offset.isVisibleTo(w)
    w.propose_mask()  # noise correlated along Z: a column of the box
    assert np.array(w.mask_editor.mask()).shape == (5, 1, 1)
    assert viewer.layers["noise autocorrelation"].data.ndim == 3
    w.mask_editor.z_offset.setValue(0)
    w.mask_editor.buttons[3][4].click()  # hide the right neighbour in the centre plane too
    mask = np.array(w.mask_editor.mask())
    assert mask.shape == (5, 1, 3) and mask[2, 0].tolist() == [0, 1, 1]
    config = w.config()
    assert config.dims == 3 and np.array(config.mask).shape == (5, 1, 3)
    w.three_d.setChecked(False)  # back to 2D: the centre plane only
    assert w.mask_editor.mask() == [[0, 1, 1]]


def test_train_in_child_updates_plot_and_preview_then_denoise(dock, qtbot, fake_nvidia):
    viewer, w = dock

    def loss_values_shown() -> bool:
        return any(t.label1.get_visible() for t in w.plot.axes.yaxis.get_major_ticks())

    # before the first epoch: a hint, and no made-up axis values
    assert w.plot.view.wait() and w.plot.hint.get_visible() and not loss_values_shown()
    w.epochs.setValue(2)
    with qtbot.waitSignal(w.panel.finished, timeout=180_000):
        assert w.start_training() is not None
    assert w.plot.view.wait()  # the plot is drawn in a worker thread
    assert w.plot.epochs == [1, 2] and len(w.plot.loss_line.get_xdata()) == 2
    assert not w.plot.hint.get_visible() and loss_values_shown()
    ticks = w.plot.axes.get_xticks()
    assert np.allclose(ticks, np.round(ticks)), ticks  # whole epochs only
    (preview,) = [layer for layer in viewer.layers if layer.name.startswith("n2v preview")]
    # laid over the validation patch it was cut from, which its name gives
    y, x = (int(v) for v in preview.name.split("y ")[1].rstrip(")").split(", x "))
    assert preview.data.shape == (32, 32)
    np.testing.assert_allclose(preview.translate, (0.2 * y, 0.2 * x))
    np.testing.assert_allclose(preview.scale, (0.2, 0.2))
    assert preview.contrast_limits == viewer.layers["noisy"].contrast_limits
    assert "CPU" in w.device.text() or "GPU" in w.device.text()
    if w.device.text().startswith("device: CPU"):
        # an NVIDIA driver but no CUDA for TensorFlow: the dock says why, and the fix
        assert "GPU is present but TensorFlow cannot use it" in w.device.text()
        assert "napari-celldenoise[gpu]" in w.device.text()
    assert w.last_info is not None and w.last_info.epochs_done == 2
    with qtbot.waitSignal(w.panel.finished, timeout=180_000):
        w.predict_button.click()
    result = viewer.layers["noisy (denoised)"]
    assert result.data.shape == (96, 96)
    np.testing.assert_allclose(result.scale, (0.2, 0.2))
    single = np.array(result.data)
    # the self-ensemble checkbox reaches the prediction: same layer, averaged values
    w.ensemble.setChecked(True)
    with qtbot.waitSignal(w.panel.finished, timeout=180_000):
        w.predict_button.click()
    averaged = np.asarray(viewer.layers["noisy (denoised)"].data)
    assert averaged.shape == single.shape and not np.allclose(averaged, single)
    assert "tensorflow" not in sys.modules


def test_validation_region_from_a_shapes_layer(dock):
    viewer, w = dock
    assert w.val_combo.currentText() == "random split" and w.config().val_region is None
    # a rectangle drawn in world units (the image has 0.2 um pixels)
    viewer.add_shapes(
        [[[2.0, 4.0], [2.0, 12.0], [8.0, 12.0], [8.0, 4.0]]], name="val", shape_type="rectangle"
    )
    w.val_combo.setCurrentText("val")
    assert w.config().val_region == [[10, 40], [20, 60]]


def test_lazy_layer_is_denoised_tile_by_tile_then_exported(dock, qtbot, tmp_path, monkeypatch):
    import tifffile

    viewer, w = dock
    w.epochs.setValue(1)
    with qtbot.waitSignal(w.panel.finished, timeout=180_000):
        w.start_training()
    stack = np.stack([viewer.layers["noisy"].data] * 3).astype(np.float32)
    tifffile.imwrite(tmp_path / "stack.tif", stack, imagej=True, metadata={"axes": "TYX"})
    monkeypatch.setenv("CELLDENOISE_LAZY_LIMIT", "1000")
    (layer,) = viewer.open(tmp_path / "stack.tif", plugin="napari-celldenoise")
    assert hasattr(layer.data, "dask")
    w.layer_combo.setCurrentText(layer.name)
    with qtbot.waitSignal(w.panel.finished, timeout=180_000):
        w.predict_button.click()
    result = viewer.layers[f"{layer.name} (denoised)"]
    assert isinstance(result.data, np.memmap) and result.data.shape == stack.shape
    np.testing.assert_allclose(
        result.data[0], result.data[2], atol=1e-4 * float(np.abs(result.data).max())
    )
    out = tmp_path / "model.zip"
    with qtbot.waitSignal(w.panel.finished, timeout=300_000):
        w.start_export(str(out))
    assert out.is_file() and "passed" in w.last_export[1].splitlines()[0]
    assert "tensorflow" not in sys.modules


def test_stop_keeps_weights_and_continue_adds_epochs(dock, qtbot, tmp_path):
    _, w = dock
    w.epochs.setValue(500)
    w.start_training()
    qtbot.waitUntil(lambda: len(w.epoch_events) >= 1, timeout=180_000)
    with qtbot.waitSignal(w.panel.finished, timeout=120_000):
        w.panel.cancel_button.click()
    assert w.last_info is not None and w.last_info.epochs_done < 500
    done = w.last_info.epochs_done
    assert (tmp_path / "model" / "weights_best.h5").is_file()
    assert (tmp_path / "model" / "weights_last.h5").is_file()
    w.epochs.setValue(1)
    with qtbot.waitSignal(w.panel.finished, timeout=180_000):
        w.continue_button.click()
    assert w.last_info.epochs_done == done + 1


def test_a_new_training_refuses_a_used_folder_but_reuses_a_killed_start(dock, qtbot, monkeypatch):
    import napari_celldenoise._qt.deep as deep_dock

    _, w = dock
    errors = []
    monkeypatch.setattr(deep_dock, "show_error", errors.append)
    folder = w.folder.text()
    w.folder.setText("")
    assert w.start_training() is None and errors[-1] == "Choose a model folder."
    w.folder.setText(folder)
    model = Path(folder)
    model.mkdir()
    (model / "notes.txt").write_text("the user's own file")
    assert w.start_training() is None and "is not empty" in errors[-1]
    assert (model / "notes.txt").read_text() == "the user's own file"
    # a start killed before its first weights: the info file alone; the next training uses it
    (model / "notes.txt").unlink()
    (model / "celldenoise.yaml").write_text("left by a killed start\n")
    w.epochs.setValue(1)
    n_errors = len(errors)
    with qtbot.waitSignal(w.panel.finished, timeout=180_000):
        assert w.start_training() is not None
    assert len(errors) == n_errors, errors
    assert (model / "weights_best.h5").is_file()
    assert w.last_info is not None and w.last_info.epochs_done == 1


def test_the_method_list_and_its_options_come_from_the_registry(dock):
    from napari_celldenoise.deep.registry import METHODS

    _, w = dock
    assert [w.method.itemData(i) for i in range(w.method.count())] == list(METHODS)
    for name, method in METHODS.items():
        w.set_method(name)
        assert w.method_name() == name
        assert w.mask_box.isVisibleTo(w) == ("mask" in method.dock)
        assert w.tta_box.isVisibleTo(w) == ("tta" in method.dock)


def _preview(image, origin):
    from napari_celldenoise.jobs import Preview

    return Preview(image.astype(np.float32), "n2v preview", {"epoch": 1, "origin": origin})


def test_the_preview_lies_over_its_patch_and_keeps_the_images_contrast(dock):
    viewer, w = dock
    src = viewer.layers["noisy"]
    src.translate = (1.0, 2.0)
    w._source_layer = src
    flat = np.full((32, 32), float(np.percentile(src.data, 5)))
    flat[0, 0] += 1.0  # an untrained network: a narrow range, near the background
    w._on_train_event(_preview(flat, {"Y": 32, "X": 64}))
    name = "n2v preview (patch at y 32, x 64)"
    layer = viewer.layers[name]
    np.testing.assert_allclose(layer.translate, (1.0 + 0.2 * 32, 2.0 + 0.2 * 64))
    np.testing.assert_allclose(layer.scale, (0.2, 0.2))
    # a later epoch's preview spans the image's range: shown in the image's contrast, it
    # does not saturate (the first preview's narrow limits turned its thumbnail white)
    later = np.asarray(src.data)[32:64, 64:96]
    w._on_train_event(_preview(later, {"Y": 32, "X": 64}))
    assert viewer.layers[name].data is not None and len(viewer.layers) == 2
    assert layer.bounding_box.visible  # outlined here too (a preview without prepare)
    assert layer.contrast_limits == src.contrast_limits
    thumb = np.asarray(layer.thumbnail)[..., :3].astype(float)
    assert (thumb.min(axis=-1) > 250).mean() < 0.2  # not white
    assert name not in [w.layer_combo.itemText(i) for i in range(w.layer_combo.count())]


def test_the_preview_layer_is_made_first_and_each_preview_fills_it(dock):
    viewer, w = dock
    src = viewer.layers["noisy"]
    src.translate = (1.0, 2.0)
    w._source_layer = src
    layer = w.preview.prepare(src, "YX", "n2v", (32, 32))  # what the click on Train does
    assert layer.name == "n2v preview (first epoch pending)" and not layer.visible
    # its outline shows where the patch lies (a preview looks like the image under it)
    assert layer.bounding_box.visible and not layer.bounding_box.points
    assert layer.name not in [w.layer_combo.itemText(i) for i in range(w.layer_combo.count())]
    assert layer.contrast_limits == src.contrast_limits
    np.testing.assert_allclose(layer.scale, (0.2, 0.2))
    n_layers = len(viewer.layers)
    first = np.asarray(src.data)[32:64, 64:96]
    w._on_train_event(_preview(first, {"Y": 32, "X": 64}))  # no layer added: it is filled,
    assert len(viewer.layers) == n_layers and layer.visible  # placed, named and shown
    assert layer.name == "n2v preview (patch at y 32, x 64)"
    np.testing.assert_allclose(layer.translate, (1.0 + 0.2 * 32, 2.0 + 0.2 * 64))
    np.testing.assert_array_equal(layer.data, first)
    assert layer.contrast_limits == src.contrast_limits
    w._on_train_event(_preview(first[::-1], {"Y": 32, "X": 64}))
    np.testing.assert_array_equal(layer.data, first[::-1])
    w.preview.finish()
    # a next training of that method on that image (Continue) shows its previews there too
    assert w.preview.prepare(src, "YX", "n2v", (32, 32)) is layer and layer.visible
    w.preview.finish()  # it ended before its first preview: the last one stays
    assert layer in viewer.layers and layer.name.endswith("(patch at y 32, x 64)")
    # another method gets a layer of its own, removed when its training sent no preview
    viewer.layers.selection.active = src
    other = w.preview.prepare(src, "YX", "pg-blindspot", (32, 32))
    assert other is not layer and viewer.layers.selection.active is other
    w.preview.finish()
    assert other not in viewer.layers and len(viewer.layers) == n_layers
    assert viewer.layers.selection.active is src  # selected again, as before the click


def test_the_measured_time_per_epoch_stays_when_a_layer_is_added(dock):
    from napari_celldenoise.jobs import Log, Timing

    viewer, w = dock
    w._training_config = w.config()
    assert "before measuring" in w.estimate.text()
    # what a training sends after its first batches
    w._on_train_event(Timing(0.5, 2))
    w._on_train_event(Log("about 1 s per epoch (0.50 s per batch)"))
    assert w.estimate.text().startswith("measured: about 1 s per epoch")
    viewer.add_image(np.zeros((40, 40), np.float32), name="another")
    assert w.estimate.text().startswith("measured: about 1 s per epoch")
    w.epochs.setValue(w.epochs.value() + 3)  # more epochs: the same time per epoch
    assert w.estimate.text().startswith("measured")
    w.batch.setValue(w.batch.value() * 4)  # other settings: back to the estimate
    assert "before measuring" in w.estimate.text()
    w.batch.setValue(w.batch.value() // 4)
    assert w.estimate.text().startswith("measured")


def test_an_unlabelled_3d_layer_can_be_read_as_a_time_series(dock):
    viewer, w = dock
    rng = np.random.default_rng(3)
    viewer.add_image(rng.normal(100, 5, (4, 48, 48)).astype(np.float32), name="stack")
    w.layer_combo.setCurrentText("stack")
    layer = viewer.layers["stack"]
    assert w.axes_choice.time.isVisibleTo(w)
    assert w.axes(layer) == "ZYX" and w.three_d.isVisibleTo(w)  # slices: a 3D network possible
    w.axes_choice.time.setChecked(True)
    assert w.axes(layer) == "TYX" and w.axes_choice.label.text() == "axes: TYX (not named)"
    assert not w.three_d.isVisibleTo(w)  # frames are separate images
    w.layer_combo.setCurrentText("noisy")  # named YX: nothing to offer
    assert not w.axes_choice.time.isVisibleTo(w)


def test_the_loss_plot_draws_a_methods_further_losses(qtbot):
    from napari_celldenoise._qt.deep import LossPlot
    from napari_celldenoise.jobs import Epoch

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.set_losses(("loss", "val_loss", "generator", "cycle"))
    for epoch, (g, c) in enumerate([(2.0, 0.5), (1.5, 0.25)], start=1):
        plot.add(Epoch(epoch, 1.0 / epoch, None, metrics={"generator": g, "cycle": c}))
    assert list(plot.lines["generator"].get_ydata()) == [2.0, 1.5]
    assert list(plot.lines["cycle"].get_ydata()) == [0.5, 0.25]
    labels = [t.get_text() for t in plot.axes.get_legend().get_texts()]
    assert labels == ["loss", "val loss", "generator", "cycle"]
    plot.set_losses(("loss", "val_loss"))  # the next method's: the extra lines go
    assert plot.lines == {} and len(plot.axes.lines) == 2 and plot.epochs == []


def _visible_ticks(axis, lo, hi):
    return [t for t in axis.get_majorticklocs() if lo <= t <= hi]


def test_the_loss_plot_of_one_epoch_has_plain_ticks_and_room_for_its_marker(qtbot):
    from napari_celldenoise._qt.deep import LossPlot
    from napari_celldenoise.jobs import Epoch

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.add(Epoch(1, 1.0, 0.98))
    assert plot.view.wait()  # drawn in a worker thread
    x0, x1 = plot.axes.get_xlim()
    y0, y1 = plot.axes.get_ylim()
    assert x0 <= 0.6 and x1 >= 1.4  # the marker is not cut at the left or right edge
    assert y0 <= 0.98 - 0.2 and y1 >= 1.0 + 0.2  # nor at the top or bottom
    assert _visible_ticks(plot.axes.xaxis, x0, x1) == [1.0]  # one epoch, one tick
    yticks = _visible_ticks(plot.axes.yaxis, y0, y1)
    assert 2 <= len(yticks) <= 6
    assert all(abs(t * 100 - round(t * 100)) < 1e-6 for t in yticks)  # 0.8, 1.0, ... not 0.945
    for epoch, loss in [(2, 0.5), (3, 0.25)]:
        plot.add(Epoch(epoch, loss, loss))
    y0, y1 = plot.axes.get_ylim()
    assert y0 < 0.25 and y1 > 1.0 and plot.axes.get_xlim() == (0.5, 3.5)


def test_cyclegan_brings_its_patch_and_a_clean_target_choice(dock):
    viewer, w = dock
    viewer.add_image(np.ones((64, 64), np.float32), name="simulation")
    w.set_method("n2v")
    w.patch.setValue(32)
    w.set_method("structn2v")  # the same defaults: the user's patch stays
    assert w.patch.value() == 32 and not w.target_box.isVisibleTo(w)
    w.set_method("cyclegan")
    assert (w.patch.value(), w.batch.value()) == (256, 1) and w.target_box.isVisibleTo(w)
    assert w.config().target == "auto" and w._target()[1] == {}
    w.target_combo.setCurrentText("simulation")
    target, extra = w._target()
    assert w.config().target == target == "reference" and extra["reference"].shape == (64, 64)
    w.set_method("n2v")
    assert (w.patch.value(), w.batch.value()) == (64, 16) and "target" not in w.values()


def test_the_cyclegan_settings_group_shows_for_cyclegan_only_folded(dock):
    from napari_celldenoise.deep.registry import METHODS

    _, w = dock
    for name, method in METHODS.items():
        w.set_method(name)
        assert w.gan_box.isVisibleTo(w) == ("gan" in method.dock) == (name == "cyclegan")
        if name != "cyclegan":
            assert w.gan_values() == {} and "cycle_weight" not in w.values()
    w.set_method("cyclegan")
    assert not w.gan_box.isExpanded()  # folded: the paper's values are a sound start
    for key in ("cycle_weight", "identity_weight", "lowpass_weight", "lowpass_sigma",
                "fft_discriminator", "pool_size", "learning_rate"):  # fmt: skip
        assert key in w.gan_box.widgets, key


def test_the_cyclegan_settings_default_to_the_configs_fields(dock):
    from napari_celldenoise.deep.registry import get_method

    _, w = dock
    w.set_method("cyclegan")
    fields = get_method("cyclegan").config.model_fields
    values = w.gan_values()
    assert values == {name: fields[name].default for name in values}
    assert w.config().model_dump(include=set(values)) == values
    cycle = w.gan_box.widgets["cycle_weight"]  # the field's bounds and description
    assert (cycle.minimum(), cycle.maximum()) == (0.0, 100.0)
    assert fields["cycle_weight"].description in cycle.toolTip()
    assert w.gan_box.widgets["lowpass_sigma"].text() == "auto (lattice spacing)"  # None


def test_a_changed_cyclegan_setting_reaches_the_config_and_the_train_spec(
    make_napari_viewer, tmp_path
):
    import tifffile

    from napari_celldenoise._qt.deep import DeepDenoiseWidget
    from napari_celldenoise.em.simulate import simulate_lattice

    img, _ = simulate_lattice((96, 96), kind="honeycomb", spacing=12, dose=20, seed=3)
    path = tmp_path / "lattice.tif"
    tifffile.imwrite(path, img.astype(np.float32))
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-celldenoise")
    w = DeepDenoiseWidget(viewer)
    w.set_method("cyclegan")
    widgets = w.gan_box.widgets
    widgets["cycle_weight"].setValue(3.5)
    widgets["lowpass_sigma"].setValue(6.0)
    widgets["fft_discriminator"].setChecked(True)
    widgets["pool_size"].setValue(10)
    config = w.config()
    assert (config.cycle_weight, config.lowpass_sigma) == (3.5, 6.0)
    assert config.fft_discriminator and config.pool_size == 10
    folder = str(tmp_path / "model")
    spec = w.train_spec_for(layer, w.axes(layer), folder, config)
    assert spec.input.path == str(path) and spec.output == folder and not spec.resume
    assert spec.config.cycle_weight == 3.5 and spec.config.fft_discriminator
    # the dock records Train then Continue, and a denoised layer carries both
    w._record_training(folder, spec)
    more = spec.model_copy(update={"resume": True})
    w._record_training(folder, more)
    w.folder.setText(folder)
    w._predict_spec = None
    record = w._result_metadata()["celldenoise"]
    assert [s["resume"] for s in record["training"]] == [False, True]
    assert record["training"][0]["config"]["cycle_weight"] == 3.5
    w._record_training(folder, None)  # a training of a layer without a file: no record
    assert "training" not in w._result_metadata()["celldenoise"]
    w.gan_box.reset()
    assert w.config().cycle_weight == 10.0 and w.config().lowpass_sigma is None


def test_a_stopped_partial_epoch_is_replaced_by_the_continued_one(qtbot):
    """Stop inside epoch 3 sends a partial Epoch 3; Continue trains epoch 3 again: the plot
    keeps one point per epoch, the whole epoch's."""
    from napari_celldenoise._qt.deep import LossPlot
    from napari_celldenoise.jobs import Epoch

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.set_losses(("loss", "val_loss", "cycle"))
    for epoch in (1, 2):
        plot.add(Epoch(epoch, 1.0 / epoch, 0.9, metrics={"cycle": 0.5}, steps=4, total_steps=4))
    stopped = Epoch(3, 9.0, 0.9, metrics={"cycle": 7.0}, steps=1, total_steps=4)
    assert stopped.partial
    plot.add(stopped)
    plot.add(Epoch(3, 0.3, 0.8, metrics={"cycle": 0.25}, steps=4, total_steps=4))
    assert plot.epochs == [1, 2, 3] and plot.loss == [1.0, 0.5, 0.3]
    assert plot.val == [0.9, 0.9, 0.8] and plot.extra["cycle"] == [0.5, 0.5, 0.25]
    assert list(plot.loss_line.get_xdata()) == [1, 2, 3]


def test_continue_after_stop_reuses_the_preview_layer_of_a_dock_from_the_plugins_menu(
    make_napari_viewer,
):
    """The Plugins menu gives the dock a proxied viewer: each ``layers[name]`` is a new proxy
    of the layer. Continue must still find the preview layer of the stopped training (it made
    a second one, which napari named "... [1]")."""
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((96, 96), np.float32), name="lattice")
    _, w = viewer.window.add_plugin_dock_widget("napari-celldenoise", "Deep denoise")
    w.set_method("cyclegan")
    origin = {"Y": 0, "X": 32}

    def train_once(epoch):
        src = w.selected_layer()  # what start_training does, a fresh proxy each time
        w._source_layer = src
        w.preview.prepare(src, "YX", "cyclegan", (32, 32))
        w.preview.show(_preview(np.ones((32, 32)), origin), src, "YX")
        w.preview.finish()  # Stop

    train_once(1)
    train_once(2)  # Continue
    names = [layer.name for layer in viewer.layers]
    assert names == ["lattice", "n2v preview (patch at y 0, x 32)"], names


def test_a_gan_loss_plot_spanning_decades_is_logarithmic_with_its_legend_aside(qtbot):
    from napari_celldenoise._qt.deep import LossPlot
    from napari_celldenoise.jobs import Epoch

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.set_losses(("loss", "val_loss", "discriminator", "supervised"))
    for epoch in (1, 2):
        plot.add(Epoch(epoch, 7.5, 5.0, metrics={"discriminator": 0.01, "supervised": 0.0}))
    assert plot.view.wait() and plot.axes.get_yscale() == "log"
    y0, y1 = plot.axes.get_ylim()
    assert 0 < y0 < 0.01 and y1 > 7.5  # every positive curve inside
    assert plot.axes.get_legend().get_bbox_to_anchor().x0 > plot.axes.bbox.x1  # beside
    plot.set_losses(("loss", "val_loss", "discriminator"))
    plot.add(Epoch(1, 1.0, 0.9, metrics={"discriminator": 0.5}))
    assert plot.view.wait() and plot.axes.get_yscale() == "linear"
