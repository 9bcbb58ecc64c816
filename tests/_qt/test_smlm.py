"""The Super-resolution dock as a user sees it: render in nm, live with the Spots filter, drift,
merging, FRC, open and save."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from napari_celldenoise.spots.simulate_locs import expected_frc_resolution, simulate_localizations

pytestmark = pytest.mark.qt


def _has(module: str) -> bool:
    return importlib.util.find_spec(f"napari_celldenoise.spots.{module}") is not None


needs_drift = pytest.mark.skipif(
    not _has("drift"), reason="spots/drift.py (drift correction) is not in this tree yet"
)
needs_merge = pytest.mark.skipif(
    not _has("merge"), reason="spots/merge.py (merging of blinks) is not in this tree yet"
)


@pytest.fixture
def table():
    t = simulate_localizations(sigma_nm=12.0, field_nm=4000.0, n_frames=600, seed=7)
    t.loc[t.index[::10], "class"] = "bad"  # every tenth is left out of a "good only" render
    return t


@pytest.fixture
def dock(make_napari_viewer, qtbot, table):
    from napari_celldenoise._qt.smlm import SuperResolutionWidget
    from napari_celldenoise.plugin.spots_reader import table_to_points

    viewer = make_napari_viewer()
    data, meta, _ = table_to_points(table, name="locs")
    viewer.add_points(data, **meta)
    widget = SuperResolutionWidget(viewer)
    qtbot.addWidget(widget)
    return viewer, widget


def _wait(widget, qtbot, start, timeout=60000):
    with qtbot.waitSignal(widget.jobs.finished, timeout=timeout):
        assert start() is not None
    assert widget.jobs.failed is None, widget.jobs.failed


def test_render_is_an_image_layer_in_nm_on_the_camera_frame(dock, qtbot, table):
    viewer, widget = dock
    assert widget.source_combo.currentText() == "locs"
    assert widget.pixel_spin.value() == pytest.approx(100.0)  # from the layer's 0.1 µm scale
    good = int((table["class"] == "good").sum())
    assert f"{good:,} localizations" in widget.source_label.text()
    widget.magnification_spin.setValue(8)
    widget.method_combo.setCurrentText("histogram")
    _wait(widget, qtbot, widget.render)
    layer = viewer.layers["locs super-resolution"]
    assert tuple(layer.scale) == pytest.approx((12.5, 12.5))
    assert [str(u) for u in layer.units] == ["nanometer", "nanometer"]
    assert layer.data.sum() == pytest.approx(good)
    # the brightest render pixel lies on the brightest emitter's camera position
    iy, ix = np.unravel_index(np.argmax(layer.data), layer.data.shape)
    world = np.asarray(layer.data_to_world((iy, ix)))  # nm, camera pixel i at i * 100 nm
    kept = table[table["class"] == "good"]
    px = np.column_stack([kept["y"], kept["x"]]) * 100.0
    assert np.min(np.hypot(*(px - world).T)) < 2 * 12.5


def test_render_follows_the_spots_filter_live(make_napari_viewer, qtbot):
    """The Spots dock's range filter changes its points layer; the render follows."""
    from napari_celldenoise._qt.smlm import SuperResolutionWidget
    from napari_celldenoise._qt.spots import SpotsWidget
    from napari_celldenoise.spots.simulate import simulate_spots

    viewer = make_napari_viewer()
    frames, _ = simulate_spots(4, (64, 64), n_spots=12, background=(5.0, 30.0), seed=5)
    viewer.add_image(frames, name="movie", scale=(1.0, 0.1, 0.1), units=("s", "µm", "µm"))
    spots = SpotsWidget(viewer)
    sr = SuperResolutionWidget(viewer)
    qtbot.addWidget(spots)
    qtbot.addWidget(sr)
    _wait(spots, qtbot, spots.run)
    sr.set_source("movie spots")
    sr.good_check.setChecked(False)
    sr.method_combo.setCurrentText("histogram")
    _wait(sr, qtbot, sr.render)
    layer = viewer.layers["movie spots super-resolution"]
    n_all = len(spots.table)
    assert layer.data.sum() == pytest.approx(n_all)
    photons = spots.table["photons"].to_numpy()
    cut = float(np.median(photons))
    with qtbot.waitSignal(sr.jobs.finished, timeout=30000):
        spots.filter.set_range("photons", cut, float(photons.max()))
    shown = int((photons >= cut - 1e-9).sum())
    assert 0 < shown < n_all
    assert layer.data.sum() == pytest.approx(shown)
    viewer.add_points(np.zeros((1, 2)), name="other points")  # another layer comes and goes
    _wait(spots, qtbot, spots.run)  # a rerun replaces the spots layer: the dock stays on it
    assert sr.source_combo.currentText() == "movie spots"


def test_frc_curve_and_resolution(dock, qtbot, table):
    _, widget = dock
    widget.good_check.setChecked(False)
    _wait(widget, qtbot, widget.measure_resolution)
    frc = widget.frc
    expected = expected_frc_resolution(table["emitter"], 12.0, frc.pixel_nm)
    assert frc.resolution_nm == pytest.approx(expected, rel=0.10)
    text = widget.frc_label.text()
    assert f"FRC resolution {frc.resolution_nm:.1f} nm" in text and "NeNA" in text
    assert len(widget.frc_ax.lines) >= 3  # the curve, its smoothed line, the 1/7 threshold


def test_open_a_picasso_file_and_save_render_and_table(dock, qtbot, table, tmp_path):
    import tifffile

    from napari_celldenoise.io.locs import read_localizations, write_localizations

    viewer, widget = dock
    path = write_localizations(
        tmp_path / "theirs.hdf5", table.assign(x=table["x"] + 5), pixel_size=80.0
    )
    name = widget.open_table(str(path))
    assert widget.source_combo.currentText() == name == "file: theirs.hdf5"
    assert widget.pixel_spin.value() == pytest.approx(80.0)
    _wait(widget, qtbot, widget.render)
    assert "theirs.hdf5 super-resolution" in viewer.layers
    out = widget.save_image(str(tmp_path / "sr.ome.tif"))
    with tifffile.TiffFile(out) as tif:
        assert (
            'PhysicalSizeX="8.0"' in tif.ome_metadata
            and 'PhysicalSizeXUnit="nm"' in tif.ome_metadata
        )
    saved = read_localizations(widget.save_table(str(tmp_path / "out.csv")))
    assert len(saved) == int((table["class"] == "good").sum())
    assert saved.attrs["pixel_size"] == pytest.approx(80.0)


def test_a_failed_render_leaves_the_dock_usable(dock, qtbot, table):
    from napari_celldenoise.plugin.spots_reader import table_to_points

    viewer, widget = dock
    data, meta, _ = table_to_points(table.drop(columns="uncertainty"), name="no uncertainty")
    viewer.add_points(data, **meta)
    widget.set_source("no uncertainty")
    widget.method_combo.setCurrentText("gaussian")
    with qtbot.waitSignal(widget.jobs.finished, timeout=30000):
        widget.render()
    assert widget.jobs.failed and "no uncertainty column" in widget.jobs.failed
    assert not widget.jobs.running and widget.rendered is None
    widget.method_combo.setCurrentText("histogram")
    _wait(widget, qtbot, widget.render)
    assert "no uncertainty super-resolution" in viewer.layers


def _drifted(table, amplitude_nm=150.0):
    """The table moved by a known smooth drift (nm) over its frames."""
    f = table["frame"].to_numpy(float)
    span = f.max()
    dx = amplitude_nm * f / span
    dy = 0.5 * amplitude_nm * np.sin(np.pi * f / span)
    out = table.copy()
    out["x"] = table["x"] + dx / 100.0
    out["y"] = table["y"] + dy / 100.0
    return out, dx, dy


@needs_drift
def test_drift_is_estimated_plotted_and_corrected(make_napari_viewer, qtbot):
    from napari_celldenoise._qt.smlm import SuperResolutionWidget
    from napari_celldenoise.plugin.spots_reader import table_to_points

    # many blinks per molecule: the time bins of the RCC see the same molecules
    base = simulate_localizations(
        sigma_nm=10.0, field_nm=5000.0, n_frames=2000, mean_bursts=15, seed=2
    )
    moved, dx, dy = _drifted(base)
    viewer = make_napari_viewer()
    data, meta, _ = table_to_points(moved, name="drifting")
    viewer.add_points(data, **meta)
    widget = SuperResolutionWidget(viewer)
    qtbot.addWidget(widget)
    _wait(widget, qtbot, widget.estimate_drift, timeout=180000)
    drift = widget.drift
    frames = moved["frame"].to_numpy()
    ex = np.interp(frames, drift.frames, drift.x_nm)
    ey = np.interp(frames, drift.frames, drift.y_nm)
    # a drift is known up to a constant: compare after removing the mean
    err = np.hypot(ex - ex.mean() - (dx - dx.mean()), ey - ey.mean() - (dy - dy.mean()))
    assert np.sqrt(np.mean(err**2)) < 5.0
    assert len(widget.drift_ax.lines) == 2 and widget.apply_drift_check.isChecked()
    assert "frames" in widget.drift_label.text()


@needs_merge
def test_merging_reports_counts_before_and_after(dock, qtbot, table):
    _, widget = dock
    widget.good_check.setChecked(False)
    widget.merge_check.setChecked(True)
    widget.radius_spin.setValue(50)
    widget.gap_spin.setValue(1)
    _wait(widget, qtbot, widget.render)
    n_in, n_out = len(table), len(widget.last_table)
    assert f"{n_in:,} localizations → {n_out:,} molecules" in widget.merge_label.text()
    bursts = table.attrs["emitters_nm"].shape[0]
    assert bursts <= n_out < n_in  # at least one molecule per emitter, fewer rows than blinks


def test_cancel_stops_the_resolution_and_keeps_the_dock_usable(dock, qtbot):
    _, widget = dock
    with qtbot.waitSignal(widget.jobs.finished, timeout=60000):
        assert widget.measure_resolution() is not None
        widget.jobs.cancel()  # before the first split: the job stops at its next check
    assert widget.frc is None and widget.jobs.status.text() == "stopped"
    _wait(widget, qtbot, widget.measure_resolution)
    assert widget.frc is not None


def test_a_layer_renamed_or_given_its_table_is_listed_under_its_new_name(dock, table):
    """The Spots dock turns its "preview" layer into the result: a rename and new features,
    no new layer."""
    from napari_celldenoise.plugin.spots_reader import table_to_points

    viewer, widget = dock
    preview = viewer.add_points(np.zeros((3, 3)), name="spots preview")  # no table yet
    listed = lambda: [widget.source_combo.itemText(i) for i in range(widget.source_combo.count())]  # noqa: E731
    assert "spots preview" not in listed()
    data, meta, _ = table_to_points(table.head(50), name="unused")
    preview.data = data
    preview.features = meta["features"]
    preview.name = "spots (found)"
    assert "spots (found)" in listed()
    widget.set_source("spots (found)")
    good = int((table.head(50)["class"] == "good").sum())  # "good spots only" is ticked
    assert f"{good} localizations" in widget.source_label.text()
