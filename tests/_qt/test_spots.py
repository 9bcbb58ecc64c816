"""The Spots dock as a user sees it: preview, run, points with features, class colours."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.spots.match import match_points
from napari_celldenoise.spots.simulate import simulate_spots

pytestmark = pytest.mark.qt

GREEN = np.array([0x33, 0xDD, 0x55]) / 255
RED = np.array([0xFF, 0x40, 0x40]) / 255


@pytest.fixture
def dock(make_napari_viewer, qtbot):
    from napari_celldenoise._qt.spots import SpotsWidget

    viewer = make_napari_viewer()
    frames, truth = simulate_spots(3, (64, 64), n_spots=10, background=(5.0, 30.0), seed=5)
    viewer.add_image(frames, name="movie", scale=(1.0, 0.1, 0.1), units=("s", "µm", "µm"))
    widget = SpotsWidget(viewer)
    qtbot.addWidget(widget)
    return viewer, widget, truth


def _run(widget, qtbot):
    with qtbot.waitSignal(widget.jobs.finished, timeout=60000):
        assert widget.run() is not None


def test_config_from_the_widgets(dock):
    _, widget, _ = dock
    assert widget.layer_combo.currentText() == "movie"
    assert widget.pixel_spin.value() == pytest.approx(100.0)  # from the layer's 0.1 µm scale
    widget.fit_combo.setCurrentText("lsq")
    widget.preset_combo.setCurrentText("EMCCD (Andor iXon, gain 100)")
    cfg = widget.config()
    assert cfg.fit == "lsq" and cfg.em_gain == 100.0 and cfg.pixel_size == pytest.approx(100.0)
    widget.filter_combo.setCurrentText("dog")
    assert widget.config().threshold == "3*noise(F)"


def test_live_preview_follows_threshold_and_frame(dock, qtbot):
    viewer, widget, _ = dock
    widget.update_preview()
    preview = viewer.layers["spots preview"]
    n_default = len(preview.data)
    current = viewer.dims.current_step[0]
    assert n_default >= 10 and (preview.data[:, 0] == current).all()
    widget.threshold_edit.setText("1e9")
    widget.update_preview()
    assert len(preview.data) == 0 and "0 raw candidates" in widget.preview_label.text()
    widget.threshold_edit.setText("2*std(")
    widget.update_preview()
    assert "⚠" in widget.preview_label.text()
    widget.threshold_edit.setText("0.5*noise(Wave.F1)")
    viewer.dims.set_current_step(0, 2)
    widget.update_preview()
    assert (preview.data[:, 0] == 2).all() and len(preview.data) >= 10


def test_run_shows_points_with_features_and_class_colours(dock, qtbot):
    viewer, widget, truth = dock
    _run(widget, qtbot)
    points = viewer.layers["movie spots"]
    assert points.ndim == 3 and tuple(points.scale) == (1.0, 0.1, 0.1)
    for col in ("photons", "uncertainty", "sigma", "crlb_x", "significance", "class"):
        assert col in points.features
    good = points.features["class"].to_numpy() == "good"
    m = match_points(
        points.data[good][:, 1:],
        np.column_stack([truth["y"], truth["x"]]),
        found_frame=points.data[good][:, 0],
        true_frame=truth["frame"],
    )
    assert m.f1 > 0.95, m.summary()
    np.testing.assert_allclose(
        points.border_color[good][:, :3], np.tile(GREEN, (good.sum(), 1)), atol=0.01
    )
    assert points.size[good].mean() == pytest.approx(2.5 * 1.3, rel=0.1)  # sized by sigma
    assert "spots preview" not in viewer.layers
    assert widget.table_view.rowCount() == len(points.data)
    assert widget.histograms.counts["good"] == good.sum()
    # the user marks a spot bad: it turns red, the counts follow
    points.selected_data = {0}
    widget.mark_selected("bad")
    assert points.features["class"][0] == "bad"
    np.testing.assert_allclose(points.border_color[0, :3], RED, atol=0.01)
    assert widget.table_view.cell_text(0, "class") == "bad"
    assert "bad" in widget.summary.text()
    # rules re-applied keep the user's mark
    widget.apply_rules()
    assert points.features["class"][0] == "bad"


def test_feature_slider_hides_spots(dock, qtbot):
    viewer, widget, _ = dock
    _run(widget, qtbot)
    points = viewer.layers["movie spots"]
    photons = points.features["photons"].to_numpy()
    cut = float(np.median(photons))
    widget.filter.set_range("photons", cut, float(photons.max()))
    assert points.shown.sum() == (photons >= cut - 1e-9).sum() < len(photons)
    widget.filter.reset()
    assert points.shown.all()


def test_retrain_save_load_and_csv(dock, qtbot, tmp_path):
    viewer, widget, _ = dock
    _run(widget, qtbot)
    points = viewer.layers["movie spots"]
    n = len(points.data)
    # a user who calls the dimmest half bad
    photons = points.features["photons"].to_numpy()
    dim = np.flatnonzero(photons < np.median(photons))
    widget.set_classes(np.full(len(dim), "bad", object), rows=dim, user=True)
    widget.set_classes(np.where(photons < np.median(photons), "bad", "good").astype(object))
    with qtbot.waitSignal(widget.jobs.finished, timeout=60000):
        widget.retrain()
    assert widget.classifier is not None
    assert "trained" in widget.classifier_label.text()
    model = widget.save_classifier(str(tmp_path / "c.skops"))
    widget.load_classifier(str(model))
    assert set(points.features["class"]) <= {"good", "bad"}
    path = widget.save_csv(str(tmp_path / "s.csv"))
    from napari_celldenoise.io.spots_csv import read_spots_csv

    back = read_spots_csv(path)
    assert len(back) == n and back.attrs["pixel_size"] == pytest.approx(100.0)
    assert "user" not in back


def test_reader_opens_a_table_as_points(make_napari_viewer, tmp_path):
    import pandas as pd

    from napari_celldenoise.io.spots_csv import write_spots_csv

    viewer = make_napari_viewer()
    t = pd.DataFrame(
        {
            "frame": [0, 1],
            "y": [5.0, 6.0],
            "x": [7.0, 8.0],
            "sigma": [1.3, 1.3],
            "class": ["good", "bad"],
        }
    )
    t.attrs["pixel_size"] = 65.0
    path = write_spots_csv(tmp_path / "t.csv", t)
    (layer,) = viewer.open(str(path), plugin="napari-celldenoise")
    assert layer.__class__.__name__ == "Points" and layer.ndim == 3
    assert layer.scale[-1] == pytest.approx(0.065)
    assert list(layer.features["class"]) == ["good", "bad"]


def test_train_a_centroid_model_on_the_fits_and_localise_with_it(dock, qtbot):
    viewer, widget, truth = dock
    _run(widget, qtbot)
    widget.centroid_kind.setCurrentText("ridge")
    widget.centroid_source.setCurrentIndex(0)  # the good fitted spots
    with qtbot.waitSignal(widget.jobs.finished, timeout=60000):
        assert widget.train_centroid() is not None
    text = widget.centroid_label.text()
    assert text.startswith("centroid ridge: std") and "predictions/s" in text
    assert float(text.split("std ")[1].split(" / ")[0]) < 0.15
    with qtbot.waitSignal(widget.jobs.finished, timeout=60000):
        assert widget.apply_centroid() is not None
    points = viewer.layers["movie ridge centroids"]
    fitted = viewer.layers["movie spots"]  # kept beside the model's layer
    assert not np.isnan(fitted.features["sigma"]).any()
    assert widget.points is points
    assert np.isnan(points.features["sigma"]).all()  # placed by the model, not fitted
    # a background maximum is not a spot even without a fit: the box's likelihood-ratio test
    assert set(points.features["class"]) <= {"good", "bad"}
    sig = points.features["significance"].to_numpy()
    cut = widget.config().min_significance
    assert np.array_equal(points.features["class"] == "good", sig >= cut)
    m = match_points(
        points.data[:, 1:],
        np.column_stack([truth["y"], truth["x"]]),
        found_frame=points.data[:, 0],
        true_frame=truth["frame"],
    )
    assert m.f1 > 0.9 and m.rmse < 0.3, m.summary()


def test_spots_layer_name_does_not_repeat_spots():
    from napari_celldenoise._qt.spots import points_name

    assert points_name("movie") == "movie spots"
    assert points_name("spots") == "spots (found)"
    assert points_name("Telomere spots") == "Telomere spots (found)"


# --------------------------------------------------------------------- issue 24 fixes
def _spot_pixels(viewer) -> int:
    """Pixels of the canvas drawn in a class colour (the image layers are hidden)."""
    for layer in viewer.layers:
        if layer.__class__.__name__ == "Image":
            layer.visible = False
    rgb = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return int((((g - r) > 60) & ((g - b) > 60) | ((r - g) > 60) & ((r - b) > 60)).sum())


def _volume(n_slices=5, seed=4):
    """A ZYX volume whose spots span three consecutive slices (1-3), and its spot count."""
    frames, truth = simulate_spots(1, (64, 64), n_spots=8, background=10.0, seed=seed)
    rng = np.random.default_rng(seed)
    empty = lambda: (100 + 2 * rng.poisson(10.0, (64, 64))).astype(np.uint16)  # noqa: E731
    planes = [empty(), frames[0], frames[0], frames[0]] + [empty() for _ in range(n_slices - 4)]
    return np.stack(planes), len(truth)


@pytest.fixture
def flat(make_napari_viewer, qtbot):
    from napari_celldenoise._qt.spots import SpotsWidget

    viewer = make_napari_viewer(show=True)  # a hidden canvas renders nothing
    frames, _ = simulate_spots(1, (64, 64), n_spots=20, background=10.0, seed=7)
    viewer.add_image(frames[0], name="cells", scale=(0.065, 0.065), units=("µm", "µm"))
    widget = SpotsWidget(viewer)
    qtbot.addWidget(widget)
    return viewer, widget


@pytest.mark.parametrize("ndisplay", [2, 3])
def test_range_filter_hides_spots_on_the_canvas_table_and_csv(flat, qtbot, tmp_path, ndisplay):
    from napari_celldenoise.io.spots_csv import read_spots_csv

    viewer, widget = flat
    _run(widget, qtbot)
    viewer.dims.ndisplay = ndisplay
    viewer.reset_view()
    n = len(widget.table)
    assert n >= 15 and widget.table_view.rowCount() == n
    before = _spot_pixels(viewer)
    photons = widget.table["photons"].to_numpy()
    cut = float(np.sort(photons)[-3])  # the three brightest
    widget.filter.set_range("photons", cut, float(photons.max()))
    assert widget.filter.summary.text().startswith(f"showing 3 of {n}")
    after = _spot_pixels(viewer)
    assert 0 < after < before / 3  # every 2D point was drawn before the fix
    assert len(viewer.layers["cells spots"].data) == 3
    assert widget.table_view.rowCount() == 3
    assert all(float(widget.table_view.cell_text(i, "photons")) >= cut * 0.999 for i in range(3))
    back = read_spots_csv(widget.save_csv(str(tmp_path / "shown.csv")))
    assert len(back) == 3 and (back["photons"] >= cut * 0.999).all()
    widget.filter.reset()
    assert len(viewer.layers["cells spots"].data) == n and _spot_pixels(viewer) > 2 * after


def test_marking_a_filtered_spot_marks_that_spot(flat, qtbot):
    viewer, widget = flat
    _run(widget, qtbot)
    photons = widget.table["photons"].to_numpy()
    brightest = int(np.argmax(photons))
    widget.filter.set_range("photons", float(photons.max()), float(photons.max()))
    points = viewer.layers["cells spots"]
    points.selected_data = {0}
    widget.mark_selected("bad")
    assert widget.table["class"].iat[brightest] == "bad" and widget.table["user"].iat[brightest]
    assert (widget.table["class"] == "bad").sum() >= 1
    np.testing.assert_allclose(points.border_color[0, :3], RED, atol=0.01)


def test_table_frames_are_one_based_as_in_the_csv_and_filter_starts_on_a_quality(
    dock, qtbot, tmp_path
):
    from napari_celldenoise.io.spots_csv import to_csv_frame

    _, widget, _ = dock
    _run(widget, qtbot)
    csv = to_csv_frame(widget.table)
    for i in (0, widget.table_view.rowCount() - 1):
        assert widget.table_view.cell_text(i, "frame") == str(csv["frame"].iat[i])
    assert widget.table_view.cell_text(0, "frame") == "1"
    assert widget.filter.feature.currentText() == "significance"


def test_volume_counts_slices_and_merges_a_spot_across_slices(make_napari_viewer, qtbot):
    from napari_celldenoise._qt.spots import SpotsWidget

    viewer = make_napari_viewer()
    volume, n_true = _volume()
    viewer.add_image(volume, name="vol", axis_labels=("z", "y", "x"))
    widget = SpotsWidget(viewer)
    qtbot.addWidget(widget)
    widget.merge_z_check.setChecked(False)
    _run(widget, qtbot)
    per_slice = len(widget.table)
    assert per_slice >= 2.5 * n_true
    text = widget.summary.text()
    assert f"{per_slice} 2D spots in 5 slices, per slice" in text and "frame" not in text
    assert widget.table_view.columns[:2] == ["frame", "z"]
    widget.merge_z_check.setChecked(True)
    _run(widget, qtbot)
    assert n_true - 1 <= len(widget.table) <= n_true + 1
    assert f"spots in 5 slices (merged in Z from {per_slice} 2D fits)" in widget.summary.text()
    assert set(widget.table["n_slices"]) <= {1, 2, 3} and widget.table["n_slices"].max() == 3


def test_preview_layers_are_not_offered_as_input(dock):
    viewer, widget, _ = dock
    viewer.add_image(np.zeros((32, 32)), name="preview")  # the Classical dock's
    viewer.add_image(np.zeros((32, 32)), name="n2v preview")
    viewer.add_image(np.zeros((32, 32)), name="other")
    names = widget.detect.layer_names()
    assert "preview" not in names and "n2v preview" not in names and "other" in names
    detect = [widget.detect_combo.itemText(i) for i in range(widget.detect_combo.count())]
    assert "preview" not in detect


def test_pixel_size_follows_the_layer_and_marks_an_uncalibrated_one(dock, qtbot, tmp_path):
    viewer, widget, _ = dock
    viewer.add_image(np.zeros((32, 32)), name="calibrated", scale=(0.065, 0.065), units="µm")
    viewer.add_image(np.zeros((32, 32)), name="plain")
    widget.layer_combo.setCurrentText("calibrated")
    assert widget.pixel_spin.value() == pytest.approx(65.0)
    assert widget.camera.pixel_label.isHidden()
    widget.layer_combo.setCurrentText("plain")
    assert widget.pixel_spin.value() == pytest.approx(100.0)
    assert not widget.camera.pixel_label.isHidden()
    assert "not calibrated" in widget.camera.pixel_label.text()
    widget.layer_combo.setCurrentText("calibrated")
    assert widget.pixel_spin.value() == pytest.approx(65.0) and widget.camera.pixel_label.isHidden()
    # a CSV keeps the pixel size of the run, whatever layer is picked after it
    widget.layer_combo.setCurrentText("movie")
    _run(widget, qtbot)
    widget.layer_combo.setCurrentText("plain")
    from napari_celldenoise.io.spots_csv import read_spots_csv

    back = read_spots_csv(widget.save_csv(str(tmp_path / "m.csv")))
    assert back.attrs["pixel_size"] == pytest.approx(100.0)
    widget.layer_combo.setCurrentText("calibrated")
    back = read_spots_csv(widget.save_csv(str(tmp_path / "m2.csv")))
    assert back.attrs["pixel_size"] == pytest.approx(100.0)


def test_offset_far_below_the_image_is_flagged_and_the_estimate_applied(make_napari_viewer, qtbot):
    from napari_celldenoise._qt.spots import SpotsWidget
    from napari_celldenoise.spots.simulate import Camera

    viewer = make_napari_viewer()
    frames, _ = simulate_spots(
        1, (96, 96), n_spots=20, background=20.0, camera=Camera(offset=1000.0), seed=2
    )
    viewer.add_image(frames[0], name="bright base")
    widget = SpotsWidget(viewer)
    qtbot.addWidget(widget)
    widget.update_live()
    camera = widget.camera
    assert widget.offset_spin.value() == 100.0
    assert not camera.offset_label.isHidden() and "far below" in camera.offset_label.text()
    assert camera.offset_button.text().startswith("Use ")
    # the whole warning is readable in the dock, not clipped to the row of its button
    widget.resize(420, 900)
    widget.show()
    qtbot.waitExposed(widget)
    label = camera.offset_label
    assert label.height() >= label.heightForWidth(label.width()) > 0
    proposed = float(camera.offset_button.text().split()[1])
    assert 1000.0 <= proposed <= 1040.0
    camera.offset_button.click()
    assert widget.offset_spin.value() == pytest.approx(proposed)
    widget.update_live()
    assert camera.offset_label.isHidden() and camera.offset_button.isHidden()
    widget.offset_spin.setValue(5000.0)
    widget.update_live()
    assert "above the image's darkest 1 %" in camera.offset_label.text()


def test_preview_says_it_counts_raw_candidates_and_what_the_run_kept(dock, qtbot):
    viewer, widget, _ = dock
    widget.update_preview()
    assert "raw candidates on this frame, before the fit" in widget.preview_label.text()
    _run(widget, qtbot)
    widget.preview_check.setChecked(True)
    widget.update_preview()
    frame = viewer.dims.current_step[0]
    kept = int((widget.table["frame"] == frame).sum())
    assert widget.preview_label.text().endswith(f"the last run kept {kept} here")


def test_smfish_offset_flagged_on_real_data(make_napari_viewer, qtbot, shared_data):
    import tifffile

    from napari_celldenoise._qt.spots import SpotsWidget

    path = shared_data("spots", "airlocalize_smfish", "2DsmFISH_humCells.tif")
    viewer = make_napari_viewer()
    image = tifffile.imread(path)
    viewer.add_image(image, name="smfish")
    widget = SpotsWidget(viewer)
    qtbot.addWidget(widget)
    widget.update_live()
    assert "far below" in widget.camera.offset_label.text()
    widget.camera.offset_button.click()
    assert image.min() <= widget.offset_spin.value() <= np.percentile(image, 1)


@pytest.mark.slow
def test_an_unlabelled_3d_layer_can_be_read_as_time_frames(make_napari_viewer, qtbot):
    """Unlabelled 3D is a volume (merged in Z) unless "first axis is time" is ticked: then
    each plane is a frame and a spot in consecutive frames stays one spot per frame."""
    from napari_celldenoise._qt.spots import SpotsWidget

    viewer = make_napari_viewer()
    volume, n_true = _volume()
    viewer.add_image(volume, name="stack")  # nothing names its axes
    widget = SpotsWidget(viewer)
    qtbot.addWidget(widget)
    widget.show()
    choice = widget.axes_choice
    assert choice.time.isVisible() and not choice.time.isChecked()
    assert choice.label.text() == "axes: ZYX (not named)"
    _run(widget, qtbot)
    assert "in 5 slices (merged in Z" in widget.summary.text()
    assert n_true - 1 <= len(widget.table) <= n_true + 1
    choice.time.setChecked(True)
    assert choice.label.text() == "axes: TYX (not named)"
    _run(widget, qtbot)
    assert widget.state.source.axes == "TYX"
    assert widget.summary.text().startswith(f"{len(widget.table)} spots in 5 frames:")
    assert len(widget.table) >= 2.5 * n_true  # found in each of the three frames
    assert widget.table_view.columns[0] == "frame" and "z" not in widget.table_view.columns
