"""The Spots dock on a long lazy movie: it streams through the worker processes and shows a
subsample of the spots as points, saying so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_celldenoise.spots.simulate import simulate_spots

pytestmark = pytest.mark.qt


@pytest.mark.slow
def test_a_long_movie_streams_and_the_layer_shows_a_subsample(
    make_napari_viewer, qtbot, monkeypatch
):
    import dask.array as da

    from napari_celldenoise._qt import spots as dock_module
    from napari_celldenoise._qt.spots import SpotsWidget
    from napari_celldenoise.spots import dock_state
    from napari_celldenoise.spots.pipeline import locate
    from napari_celldenoise.spots.stream import find_spots_streamed

    monkeypatch.setattr(dock_state, "MAX_POINTS", 300)
    streamed = []

    def two_workers(*args, **kwargs):
        streamed.append(True)
        return find_spots_streamed(*args, workers=2, **kwargs)

    monkeypatch.setattr(dock_module, "find_spots_streamed", two_workers)
    frames = simulate_spots(8, (48, 48), n_spots=6, background=(5.0, 30.0), seed=2)[0]
    movie = da.from_array(np.concatenate([frames] * 30), chunks=(1, 48, 48))  # 240, lazy
    viewer = make_napari_viewer()
    viewer.add_image(movie, name="movie", scale=(1.0, 0.1, 0.1), units=("s", "µm", "µm"))
    widget = SpotsWidget(viewer)
    qtbot.addWidget(widget)
    widget.preview_check.setChecked(False)
    with qtbot.waitSignal(widget.jobs.finished, timeout=300000):
        assert widget.run() is not None
    assert streamed and widget.jobs.failed is None
    expected = locate(np.asarray(movie), widget.config())
    pd.testing.assert_frame_equal(widget.table.drop(columns="user"), expected)
    points = viewer.layers["movie spots"]
    n = len(expected)
    step = -(-n // 300)
    assert n > 1000 and len(points.data) == len(range(0, n, step)) <= 300
    np.testing.assert_allclose(points.data[1], expected[["frame", "y", "x"]].to_numpy()[step])
    assert f"1 in {step} spots" in widget.summary.text()
    assert widget.histograms.counts["good"] + widget.histograms.counts["bad"] == n
    assert widget.table_view.rowCount() == len(points.data)
    # marking a point marks the spot it stands for
    points.selected_data = {1}
    widget.mark_selected("bad")
    assert widget.table["class"].iat[step] == "bad" and widget.table["user"].iat[step]
