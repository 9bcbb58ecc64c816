"""Drift estimation (RCC and fiducials) on simulated localizations with a known drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_celldenoise.jobs.errors import Cancelled
from napari_celldenoise.spots.drift import (
    Drift,
    DriftError,
    apply_drift,
    drift_rmse,
    estimate_drift,
)
from napari_celldenoise.spots.smlm_simulate import Blinking, localizations, simulate_smlm


@pytest.fixture(scope="module")
def lines():
    sim = simulate_smlm(
        3000, (64, 64), structure_kind="lines", blinking=Blinking(p_on=0.002), seed=3
    )
    return sim, localizations(sim, seed=1)


def test_rcc_recovers_a_200_nm_drift(lines):
    sim, table = lines
    calls = []
    drift = estimate_drift(table, progress=lambda done, total: calls.append((done, total)))
    assert drift.method == "rcc" and len(drift.frames) == 3000
    assert drift.x_nm[0] == 0 and drift.y_nm[0] == 0
    assert drift_rmse(drift, sim.drift) < 5.0
    # against no correction at all, far from it
    still = Drift(drift.frames, np.zeros(3000), np.zeros(3000), "none")
    assert drift_rmse(still, sim.drift) > 40.0
    assert calls[-1][0] == calls[-1][1] and all(d <= t for d, t in calls)


def test_rcc_on_a_periodic_grid_finds_the_nearest_peak():
    sim = simulate_smlm(2000, (64, 64), structure_kind="grid", blinking=Blinking(p_on=0.01), seed=4)
    drift = estimate_drift(localizations(sim, seed=2), segments=16)
    assert drift_rmse(drift, sim.drift) < 5.0


def test_fewer_segments_follow_a_wobbling_drift_less_well(lines):
    sim, table = lines
    coarse = drift_rmse(estimate_drift(table, segments=3), sim.drift)
    fine = drift_rmse(estimate_drift(table, segments=16), sim.drift)
    assert fine < coarse


def test_fiducials_recover_the_drift():
    sim = simulate_smlm(
        2000, (64, 64), structure_kind="lines", blinking=Blinking(p_on=0.001), fiducials=2, seed=5
    )
    table = localizations(sim, seed=3)
    drift = estimate_drift(table, method="fiducials")
    assert drift.method == "fiducials"
    assert drift_rmse(drift, sim.drift) < 3.0


def test_no_fiducials_is_one_clear_error(lines):
    with pytest.raises(DriftError, match="no fiducials found"):
        estimate_drift(lines[1], method="fiducials")


def test_too_few_localizations_for_rcc():
    table = pd.DataFrame({"frame": np.arange(30), "x": np.ones(30), "y": np.ones(30)})
    table.attrs["pixel_size"] = 100.0
    with pytest.raises(DriftError, match="too few localizations"):
        estimate_drift(table, segments=3)
    with pytest.raises(DriftError, match="drift method"):
        estimate_drift(table, method="beads")


def test_should_stop_ends_the_estimate(lines):
    with pytest.raises(Cancelled):
        estimate_drift(lines[1], should_stop=lambda: True)


def test_apply_drift_corrects_and_keeps_the_raw_positions(lines):
    sim, table = lines
    corrected = apply_drift(table, sim.drift)
    assert corrected is not table and "x_raw" not in table
    assert np.array_equal(corrected["x_raw"], table["x"])
    assert np.array_equal(corrected["y_raw"], table["y"])
    assert corrected.attrs["pixel_size"] == table.attrs["pixel_size"]
    err = corrected["x"] - sim.truth["x_sample"]
    assert np.abs(err / table["uncertainty"]).max() < 6  # only the localization error is left
    # a second correction adds to the first; the raw positions stay the first ones
    again = apply_drift(corrected, sim.drift)
    assert np.array_equal(again["x_raw"], table["x"])
    assert np.allclose(again["x"] - corrected["x"], corrected["x"] - table["x"])


def test_corrected_localizations_are_sharper(lines):
    sim, table = lines
    corrected = apply_drift(table, estimate_drift(table))

    # spread of each emitter's localizations around their mean
    def spread(t):
        g = t.groupby(sim.truth["emitter"].to_numpy())
        return float(np.sqrt((g["x"].transform(lambda v: v - v.mean()) ** 2).mean()))

    assert spread(corrected) < 0.5 * spread(table)
