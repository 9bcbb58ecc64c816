"""The Batch dock driven as a user would: a recipe from the Spots dock's output layer, a real
batch of small TIFFs on a LocalCluster, a corrupt file among them, Cancel and Resume, a row
opened in the viewer. The dock never waits on the cluster (the run is a thread worker)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_celldenoise.spots.simulate import simulate_spots

pytestmark = pytest.mark.qt
PLUGIN = "napari-celldenoise"
SHOTS = os.environ.get("CELLDENOISE_SCREENSHOTS")  # a folder: the dock's screenshot goes there


def _movie(path: Path, seed: int, frames: int = 2) -> str:
    data, _ = simulate_spots(frames, (64, 64), n_spots=10, background=(5.0, 30.0), seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"axes": "TYX", "PhysicalSizeX": 0.1, "PhysicalSizeY": 0.1}
    tifffile.imwrite(path, data, ome=True, metadata=meta)
    return str(path)


def _spots_layer(viewer, qtbot, path: str):
    """Find spots on ``path`` in the Spots dock, as a user tunes a recipe on one image."""
    from napari_celldenoise._qt.spots import SpotsWidget

    viewer.open(path, plugin=PLUGIN)
    spots = SpotsWidget(viewer)
    qtbot.addWidget(spots)
    with qtbot.waitSignal(spots.jobs.finished, timeout=60_000):
        assert spots.run() is not None
    return spots


def _ready(widget) -> bool:
    return not widget.jobs.running and widget.run_button.isEnabled()


def _run(qtbot, widget, *, resume=False, timeout=180_000):
    with qtbot.waitSignal(widget.jobs.finished, timeout=timeout):
        assert widget.start(resume=resume) is not None
        assert not widget.run_button.isEnabled()  # the GUI is free while the cluster works
    assert _ready(widget)


def test_cluster_options_from_the_dock_fields():
    from napari_celldenoise._qt.batch import ADDRESS, LOCAL, cluster_options, split_inputs

    o = cluster_options(LOCAL, 3, 2, " 2GB ", "ignored")
    assert (o.scheduler, o.workers, o.threads_per_worker, o.memory_limit) == (None, 3, 2, "2GB")
    assert cluster_options(LOCAL, 1, 1, "", "").memory_limit is None
    assert cluster_options(ADDRESS, 1, 1, "", "10.0.0.2:8786").scheduler == "tcp://10.0.0.2:8786"
    with pytest.raises(ValueError, match="scheduler's address"):
        cluster_options(ADDRESS, 1, 1, "", "  ")
    assert split_inputs(" raw/ ; more/*.tif;; gs://b/p ") == ["raw/", "more/*.tif", "gs://b/p"]


@pytest.mark.slow
def test_a_batch_from_the_spots_layer_with_a_corrupt_file(
    make_napari_viewer, qtbot, tmp_path, errors
):
    from napari_celldenoise.batch import load_recipe
    from napari_celldenoise.io.spots_csv import read_spots_csv
    from napari_celldenoise.jobs import run
    from napari_celldenoise.jobs.run_spec import run_spec

    viewer = make_napari_viewer(show=bool(SHOTS))
    spots = _spots_layer(viewer, qtbot, _movie(tmp_path / "example.ome.tif", seed=1))
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Batch")
    # the newest output layer is offered and chosen; its steps are listed before anything runs
    assert widget.recipe_from.currentText() == "layer: example spots"
    steps = widget.steps.toPlainText()
    assert steps.startswith("1. spots: threshold") and widget.recipe.hash in steps
    saved = widget.save_recipe(tmp_path / "recipe.yaml")
    assert load_recipe(saved).steps == (spots.spec,)

    src = tmp_path / "raw"
    movies = [_movie(src / f"cell_{i}.ome.tif", seed=10 + i) for i in range(3)]
    (src / "broken.tif").write_bytes(b"II*\x00" + b"\x00" * 10)
    out = tmp_path / "out"
    widget.inputs.setText(str(src))
    widget.outdir.setText(str(out))
    widget.workers.setValue(1)
    _run(qtbot, widget)

    result = widget.result
    assert (result.total, result.done, result.failed) == (4, 3, 1)
    assert widget.jobs.progress.value() == widget.jobs.progress.maximum() == 1
    assert widget.table.rowCount() == 4
    rows = {widget.table.item(r, 0).text(): r for r in range(4)}
    bad = rows["broken.tif"]
    assert widget.table.item(bad, 1).text() == "failed"
    reader = "not a readable TIFF (no image found: broken header or truncated)"
    assert widget.table.item(bad, 6).text() == reader  # the reader's line (the row names it)
    widget.table.selectRow(bad)
    assert widget.details.text().splitlines() == [
        str(src / "broken.tif"),
        widget.details.text().splitlines()[1],
        f"{src / 'broken.tif'}: {reader}",
    ]
    assert widget.details.text().splitlines()[1].startswith("failed in ")
    assert errors == []  # a bad file is a row of the table, not a failed batch
    for i, movie in enumerate(movies):  # each file as the Spots dock's spec gives it alone
        row = rows[f"cell_{i}.ome.tif"]
        assert widget.table.item(row, 1).text() == "done"
        spec = load_recipe(saved).plan(movie, str(tmp_path / "ref" / f"cell_{i}"))[0]
        (tmp_path / "ref").mkdir(exist_ok=True)
        run(run_spec(spec))
        ours = read_spots_csv(out / f"cell_{i}.spots.csv")
        pd.testing.assert_frame_equal(ours, read_spots_csv(spec.output))
        assert widget.table.item(row, 3).text() == str(len(ours))
    summary = widget.summary.text()
    assert "3 done, 1 failed, 0 skipped" in summary
    total = sum(len(read_spots_csv(out / f"cell_{i}.spots.csv")) for i in range(3))
    assert f"{total} spots in 3 files" in summary
    assert widget.axes.get_title() == "spots per file" and len(widget.axes.patches) == 3

    # a row opens that file and its spots in the viewer
    before = len(viewer.layers)
    added = widget.open_row(rows["cell_1.ome.tif"])
    assert [ly.__class__.__name__ for ly in added] == ["Image", "Points"]
    # the spots share the image's units, frame axis included (napari warns about a mix)
    assert [str(u) for u in added[1].units] == [str(u) for u in added[0].units]
    assert len(viewer.layers) == before + 2
    assert np.array_equal(np.asarray(added[0].data), tifffile.imread(movies[1]))
    assert len(added[1].data) == len(read_spots_csv(out / "cell_1.spots.csv"))
    if SHOTS:
        widget.table.selectRow(rows["broken.tif"])
        qtbot.wait(300)
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        viewer.window._qt_window.resize(1600, 1000)
        qtbot.wait(300)
        viewer.screenshot(str(Path(SHOTS) / "batch_dock.png"), canvas_only=False, flash=False)

    # Resume: the done files are skipped, only the broken one runs (and fails) again
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("*.spots.csv")}
    _run(qtbot, widget, resume=True)
    assert (widget.result.skipped, widget.result.failed) == (3, 1)
    assert widget.table.rowCount() == 1 and widget.table.item(0, 0).text() == "broken.tif"
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.spots.csv")} == mtimes


@pytest.mark.slow
def test_cancel_stops_the_batch_and_resume_finishes_it(make_napari_viewer, qtbot, tmp_path):
    from napari_celldenoise.batch.recipe import recipe_from_specs
    from napari_celldenoise.jobs.specs import classical_spec

    viewer = make_napari_viewer()
    recipe = recipe_from_specs([classical_spec("x.tif", "y.ome.tif", "gaussian", {"sigma": 1.0})])
    recipe_file = recipe.save(tmp_path / "gauss.yaml")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Batch")
    assert widget.use_recipe_file(recipe_file) == recipe
    assert widget.steps.toPlainText().startswith("1. filter: gaussian (sigma=1.0)")
    src = tmp_path / "raw"
    for i in range(12):
        _movie(src / f"m{i:02d}.ome.tif", seed=i, frames=3)
    out = tmp_path / "out"
    widget.inputs.setText(str(src / "*.ome.tif"))
    widget.outdir.setText(str(out))
    widget.workers.setValue(1)

    def cancel_at_first_file(event):
        if widget.table.rowCount() >= 1:
            widget.jobs.cancel()

    widget.table.model().rowsInserted.connect(cancel_at_first_file)
    _run(qtbot, widget)
    widget.table.model().rowsInserted.disconnect(cancel_at_first_file)
    result = widget.result
    assert widget.jobs.status.text() == "stopped"
    assert result.cancelled > 0 and result.done + result.cancelled == 12
    statuses = [widget.table.item(r, 1).text() for r in range(widget.table.rowCount())]
    assert statuses.count("cancelled") == result.cancelled
    assert len(list(out.glob("*.filtered.ome.tif"))) == result.done  # nothing half-written
    assert not list(out.glob(".*.part"))
    # Resume runs only the cancelled files
    _run(qtbot, widget, resume=True)
    assert (widget.result.skipped, widget.result.done) == (result.done, result.cancelled)
    assert len(list(out.glob("*.filtered.ome.tif"))) == 12
    assert "noise lowered" in widget.summary.text()
    assert widget.table.isColumnHidden(3) and not widget.table.isColumnHidden(5)  # no spots
    assert widget.axes.get_title() == "noise per file"


def test_a_batch_that_cannot_start_leaves_the_dock_ready(
    make_napari_viewer, qtbot, tmp_path, errors
):
    from napari_celldenoise._qt.batch import BatchWidget
    from napari_celldenoise.batch.recipe import recipe_from_specs
    from napari_celldenoise.jobs.specs import classical_spec

    viewer = make_napari_viewer()
    widget = BatchWidget(viewer)
    qtbot.addWidget(widget)
    assert widget.start() is None and errors[-1].startswith("batch: choose a recipe")
    recipe = recipe_from_specs([classical_spec("x.tif", "y.ome.tif", "median", {"size": 3})])
    widget.use_recipe_file(recipe.save(tmp_path / "r.yaml"))
    widget.inputs.setText(str(tmp_path / "nothing-here"))
    widget.outdir.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(widget.jobs.finished, timeout=30_000):
        assert widget.start() is not None
    assert (
        errors[-1] == f"{tmp_path / 'nothing-here'}: no image files (reads .tif, .tiff, "
        ".ome.tif, .png)"
    )
    assert _ready(widget) and widget.jobs.status.text().startswith("failed:")
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: []\n")
    assert widget.use_recipe_file(bad) is None
    assert widget.steps.toPlainText().startswith("cannot use this recipe: ")
