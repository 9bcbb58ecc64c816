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
    model = widget.save_classifier(str(tmp_path / "c.joblib"))
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
