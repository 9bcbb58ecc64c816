"""The Spots dock's Qt-free state: what the canvas, the table, the CSV and the summary show."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_celldenoise.spots.dock_state import SourceSnapshot, SpotsDockState, range_text


def _state(axes="ZYX", shape=(10, 32, 32), n=6):
    t = pd.DataFrame(
        {
            "frame": np.zeros(n, int),
            "z": np.arange(n) % shape[0],
            "y": np.linspace(5, 25, n),
            "x": np.linspace(6, 26, n),
            "photons": np.arange(1, n + 1) * 100.0,
            "class": ["good"] * (n - 1) + ["bad"],
        }
    )
    s = SpotsDockState()
    s.set_result(SourceSnapshot(np.zeros(shape), axes, "vol", (1, 1, 1), ("", "", ""), 65.0), t)
    return s


def test_a_volume_counts_its_slices_and_says_spots_are_per_slice():
    s = _state()
    text = s.summary()
    assert text.startswith("6 2D spots in 10 slices, per slice")
    assert "counted in each" in text and text.endswith("5 good, 1 bad")
    s.table.attrs["merged_in_z"] = 9
    assert s.summary() == "6 spots in 10 slices (merged in Z from 9 2D fits): 5 good, 1 bad"


def test_time_series_and_single_frames():
    assert _state("TYX", (3, 32, 32)).summary() == "6 spots in 3 frames: 5 good, 1 bad"
    assert _state("YX", (32, 32), n=1).summary() == "1 spot: 0 good, 1 bad"
    assert _state("TZYX", (2, 4, 32, 32)).summary().startswith("6 2D spots in 2 frames x 4 slices")
    assert SpotsDockState().summary() == "no spots yet"


def test_filter_drives_shown_rows_export_and_coordinates():
    s = _state()
    s.ranges = {"photons": (250.0, 450.0)}
    assert list(s.shown_rows()) == [2, 3]
    assert list(s.shown_table()["photons"]) == [300.0, 400.0]
    out = s.export_table()
    assert len(out) == 2 and "user" not in out
    np.testing.assert_allclose(s.coords(s.shown_table())[:, 0], [2, 3])  # z first for ZYX
    assert range_text(s.table, s.ranges) == "showing 2 of 6: 250 <= photons <= 450"
    s.ranges = {}
    assert len(s.export_table()) == 6


def test_user_marks_survive_a_reclassification():
    s = _state()
    s.set_classes(np.array(["bad"], object), rows=np.array([0]), user=True)
    classes = s.keep_user_marks(np.full(6, "good", object))
    assert classes[0] == "bad" and (classes[1:] == "good").all()


def test_spots_kept_on_a_plane():
    s = _state()
    assert s.kept_on_plane((2,)) == 1 and s.kept_on_plane((9,)) == 0
    s.table["z_first"], s.table["z_last"] = 0, 9  # merged spots span their slices
    assert s.kept_on_plane((7,)) == 6
    assert s.kept_on_plane(()) is None


def test_no_spots_no_export():
    with pytest.raises(ValueError, match="no spots"):
        SpotsDockState().export_table()


def test_the_points_layer_holds_an_evenly_spaced_subsample_of_a_long_movie():
    s = _state("TYX", (3, 32, 32), n=1000)
    assert len(s.layer_rows(max_points=1000)) == 1000 and s.layer_note(max_points=1000) == ""
    rows = s.layer_rows(max_points=300)
    np.testing.assert_array_equal(rows, np.arange(0, 1000, 4))  # 1 in 4: at most 300
    assert s.layer_table(max_points=300)["photons"].tolist() == ((rows + 1) * 100.0).tolist()
    note = s.layer_note(max_points=300)
    assert note.startswith("The points layer shows 1 in 4 spots (250 of 1,000)")
    s.ranges = {"photons": (0.0, 50_000.0)}  # the filter first, then the subsample
    np.testing.assert_array_equal(s.layer_rows(max_points=300), np.arange(0, 500, 2))


def test_a_result_is_held_without_a_copy_and_marks_leave_the_callers_table_as_it_was():
    s = _state("TYX", (3, 32, 32))
    t = pd.DataFrame({"x": np.arange(4.0), "class": ["good"] * 4})
    s.set_result(s.source, t)
    # a million spots are held once: the columns are the caller's own
    assert np.shares_memory(s.table["x"].to_numpy(), t["x"].to_numpy())
    s.set_classes(np.array(["bad", "bad"]), rows=np.array([1, 2]), user=True)
    assert list(s.table["class"]) == ["good", "bad", "bad", "good"]
    assert list(s.table["user"]) == [False, True, True, False]
    assert list(t["class"]) == ["good"] * 4 and "user" not in t
