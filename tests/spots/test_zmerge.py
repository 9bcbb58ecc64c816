"""One spot per emitter in a volume: fits of consecutive slices merged in Z."""

from __future__ import annotations

import numpy as np
import pandas as pd

from napari_celldenoise.jobs import Done, Progress, run
from napari_celldenoise.spots.zmerge import merge_z, merged_in_z


def _table(rows):
    t = pd.DataFrame(rows, columns=["frame", "z", "y", "x", "photons"])
    t.attrs["axes"] = "TZYX"
    return t


def test_a_spot_in_three_consecutive_slices_is_one_spot_at_its_brightest():
    t = _table(
        [
            (0, 2, 10.0, 10.0, 100.0),
            (0, 3, 10.3, 10.1, 900.0),  # in focus
            (0, 4, 10.1, 9.8, 200.0),
            (0, 3, 30.0, 30.0, 500.0),  # another spot, one slice only
        ]
    )
    out = merge_z(t)
    assert len(out) == 2 and out.attrs["merged_in_z"] == 4 and out.attrs["axes"] == "TZYX"
    first = out.iloc[0]
    assert (first["z"], first["photons"], first["z_first"], first["z_last"], first["n_slices"]) == (
        3,
        900.0,
        2,
        4,
        3,
    )
    assert out.iloc[1]["n_slices"] == 1
    assert len(t) == 4  # the input is not changed


def test_far_apart_gapped_or_other_frame_fits_stay_apart():
    t = _table(
        [
            (0, 0, 10.0, 10.0, 1.0),
            (0, 1, 12.0, 10.0, 1.0),  # 2 px away
            (0, 3, 10.0, 10.0, 1.0),  # slice 2 missing: a gap
            (1, 1, 10.0, 10.0, 1.0),  # another time point
        ]
    )
    assert len(merge_z(t)) == 4
    assert len(merge_z(t, distance=2.5)) == 3


def test_each_fit_joins_one_chain_only():
    # two spots 0.8 px apart in slice 0, one fit in slice 1 between them: it joins the nearer
    t = _table([(0, 0, 10.0, 10.0, 1.0), (0, 0, 10.8, 10.0, 1.0), (0, 1, 10.7, 10.0, 5.0)])
    out = merge_z(t)
    assert len(out) == 2
    assert sorted(out["n_slices"]) == [1, 2]


def test_empty_table_and_event_stream():
    empty = merge_z(_table([]))
    assert len(empty) == 0 and "n_slices" in empty

    def job():
        yield Progress(1, 1, "plane")
        yield Done(_table([(0, 0, 5.0, 5.0, 1.0), (0, 1, 5.0, 5.0, 2.0)]))

    events = list(merged_in_z(job()))
    assert isinstance(events[0], Progress)
    assert len(run(merged_in_z(job()))) == 1
    flat = _table([(0, 0, 5.0, 5.0, 1.0), (0, 0, 9.0, 9.0, 1.0)])
    flat.attrs["axes"] = "TYX"

    def job2d():
        yield Done(flat)

    assert run(merged_in_z(job2d())) is flat  # no Z: passes unchanged
    assert np.all(empty.columns[:5] == ["frame", "z", "y", "x", "photons"])
