"""Merging of blinks: known answers on hand-made tables and counts on simulated blinking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_celldenoise.spots.merge import link_blinks, merge_blinks
from napari_celldenoise.spots.smlm_simulate import (
    Blinking,
    localizations,
    simulate_smlm,
    true_molecule_count,
)


def _table(rows, pixel_size=100.0):
    table = pd.DataFrame(rows, columns=["frame", "x", "y", "photons", "uncertainty"])
    table["class"] = "good"
    table.attrs["pixel_size"] = pixel_size
    return table


def test_one_molecule_over_a_gap_is_photon_weighted():
    # frames 3, 4 and 6 (one missing frame) within 30 nm; a far one in frame 4
    table = _table(
        [
            (3, 10.0, 10.0, 1000.0, 0.1),
            (4, 10.2, 10.0, 3000.0, 0.05),
            (4, 30.0, 30.0, 500.0, 0.2),
            (6, 10.1, 10.1, 1000.0, 0.1),
        ]
    )
    merged = merge_blinks(table, radius_nm=30.0, max_gap=1)
    assert len(merged) == 2
    first = merged.iloc[0]
    assert first["frame"] == 3 and first["last_frame"] == 6 and first["n_blinks"] == 3
    assert first["photons"] == 5000.0
    assert first["x"] == pytest.approx((10.0 * 1000 + 10.2 * 3000 + 10.1 * 1000) / 5000)
    assert first["y"] == pytest.approx((10.0 * 4000 + 10.1 * 1000) / 5000)
    expected_u = np.sqrt((1000 * 0.1) ** 2 + (3000 * 0.05) ** 2 + (1000 * 0.1) ** 2) / 5000
    assert first["uncertainty"] == pytest.approx(expected_u)
    assert merged.iloc[1]["n_blinks"] == 1 and merged.iloc[1]["x"] == 30.0
    assert merged.attrs["pixel_size"] == 100.0 and merged.attrs["merged_from"] == 4
    # without the gap the third blink is a molecule of its own
    assert len(merge_blinks(table, radius_nm=30.0, max_gap=0)) == 3
    # a radius smaller than the step: nothing merges
    assert len(merge_blinks(table, radius_nm=5.0, max_gap=1)) == 4


def test_the_radius_is_in_nm():
    table = _table([(0, 5.0, 5.0, 100.0, 0.1), (1, 5.3, 5.0, 100.0, 0.1)], pixel_size=100.0)
    assert len(merge_blinks(table, radius_nm=29.0, max_gap=0)) == 2
    assert len(merge_blinks(table, radius_nm=31.0, max_gap=0)) == 1
    table.attrs["pixel_size"] = 50.0  # the same 0.3 px are 15 nm
    assert len(merge_blinks(table, radius_nm=16.0, max_gap=0)) == 1


def test_same_frame_never_merges_and_closest_wins():
    # two in frame 0 close together; in frame 1 one localization near both
    frame = np.array([0, 0, 1])
    x = np.array([0.0, 0.4, 0.3])
    y = np.zeros(3)
    molecule = link_blinks(frame, x, y, radius=0.5, max_gap=0)
    assert molecule[0] != molecule[1]
    assert molecule[2] == molecule[1]  # 0.1 px from the second, 0.3 from the first


def test_each_molecule_takes_one_localization_per_frame():
    frame = np.array([0, 1, 1])
    x = np.array([0.0, 0.1, -0.2])
    molecule = link_blinks(frame, x, np.zeros(3), radius=0.5, max_gap=0)
    assert molecule[1] == molecule[0] and molecule[2] != molecule[0]


def test_z_planes_stay_apart():
    table = _table([(0, 5.0, 5.0, 100.0, 0.1), (1, 5.0, 5.0, 100.0, 0.1)])
    table["z"] = [0, 1]
    assert len(merge_blinks(table, radius_nm=50.0, max_gap=0)) == 2


def test_bad_arguments():
    table = _table([(0, 5.0, 5.0, 100.0, 0.1)])
    with pytest.raises(ValueError, match="radius"):
        merge_blinks(table, radius_nm=-1.0, max_gap=0)
    with pytest.raises(ValueError, match="gap"):
        merge_blinks(table, radius_nm=10.0, max_gap=-1)
    with pytest.raises(ValueError, match="'x'"):
        merge_blinks(table.drop(columns="x"), radius_nm=10.0, max_gap=0)


def test_empty_table_stays_empty():
    merged = merge_blinks(_table([]), radius_nm=20.0, max_gap=1)
    assert len(merged) == 0 and "n_blinks" in merged


@pytest.mark.parametrize("gap", [0, 2])
def test_merged_count_within_5_percent_of_the_truth(gap):
    sim = simulate_smlm(
        3000,
        (64, 64),
        structure_kind="rings",
        blinking=Blinking(p_on=0.002, p_off=0.4, p_bleach=0.1),
        drift_nm=0.0,
        seed=9,
    )
    table = localizations(sim, seed=4)
    merged = merge_blinks(table, radius_nm=50.0, max_gap=gap)
    truth = true_molecule_count(sim.truth, gap)
    assert len(merged) == pytest.approx(truth, rel=0.05)
    assert merged["n_blinks"].sum() == len(table)
    # a molecule's localizations come from one emitter (rings' emitters are 46 nm apart)
    molecule = link_blinks(
        table["frame"].to_numpy(),
        table["x"].to_numpy(),
        table["y"].to_numpy(),
        radius=0.5,
        max_gap=gap,
    )
    emitters = pd.DataFrame({"m": molecule, "e": table["emitter"]}).groupby("m")["e"].nunique()
    assert (emitters == 1).mean() > 0.97
