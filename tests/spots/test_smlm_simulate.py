"""The SMLM simulator: structures, blinking statistics, drift and the truth it reports."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.spots.smlm_simulate import (
    Blinking,
    blink,
    burst_ids,
    drift_trajectory,
    localizations,
    mle_precision,
    render_movie,
    simulate_smlm,
    structure,
    true_molecule_count,
)


def test_grid_has_the_spacing_asked_for():
    yx = structure("grid", (64, 64), pixel_size=100.0, spacing_nm=500.0)
    # nodes 5 px apart from 4 px to 59 px: 12 x 12
    assert len(yx) == 144
    assert np.allclose(np.diff(np.unique(yx[:, 1])), 5.0)
    assert np.allclose(np.diff(np.unique(yx[:, 0])), 5.0)


def test_rings_have_eight_emitters_at_the_radius():
    yx = structure("rings", (40, 40), pixel_size=100.0, spacing_nm=1000.0, seed=2)
    assert len(yx) % 8 == 0 and len(yx) >= 8 * 9
    centres = yx.reshape(-1, 8, 2).mean(axis=1)
    radii = np.hypot(*(yx.reshape(-1, 8, 2) - centres[:, None, :]).transpose(2, 0, 1))
    assert np.allclose(radii, 0.6)


def test_lines_are_labelled_at_the_spacing():
    yx = structure("lines", (64, 64), pixel_size=100.0, spacing_nm=10.0, seed=1)
    steps = np.hypot(*np.diff(yx, axis=0).T)
    assert np.median(steps) == pytest.approx(0.1)


def test_bad_structure_is_refused():
    with pytest.raises(ValueError, match="structure must be one of"):
        structure("spiral", (32, 32))


def test_blinking_statistics_match_the_rates():
    rng = np.random.default_rng(0)
    b = Blinking(p_on=0.02, p_off=0.25, start_on=0.0)
    frame, emitter = blink(2000, 2000, b, rng)
    # duty cycle p_on / (p_on + p_off)
    assert frame.size / (2000 * 2000) == pytest.approx(0.02 / 0.27, rel=0.05)
    # mean on-time 1 / p_off frames
    bursts = burst_ids(frame, emitter, max_gap=0)
    assert frame.size / np.unique(bursts).size == pytest.approx(4.0, rel=0.05)


def test_bleaching_ends_every_emitter():
    rng = np.random.default_rng(1)
    _, emitter = blink(500, 400, Blinking(p_on=0.05, p_off=0.0, p_bleach=1.0), rng)
    # on for one frame then gone: each emitter seen once at most
    assert np.bincount(emitter).max() == 1


def test_burst_ids_join_gaps_up_to_max_gap():
    frame = np.array([0, 1, 3, 7, 0, 5])
    emitter = np.array([0, 0, 0, 0, 1, 1])
    assert np.unique(burst_ids(frame, emitter, max_gap=0)).size == 5  # 0-1 | 3 | 7 | 0 | 5
    assert np.unique(burst_ids(frame, emitter, max_gap=1)).size == 4  # 0-1-3 | 7 | 0 | 5
    assert np.unique(burst_ids(frame, emitter, max_gap=4)).size == 2


def test_drift_trajectory_reaches_the_amplitude_from_zero():
    d = drift_trajectory(5000, 200.0, seed=4)
    assert d.x_nm[0] == 0 and d.y_nm[0] == 0
    assert np.hypot(d.x_nm, d.y_nm).max() == pytest.approx(200.0)
    assert np.abs(np.diff(d.x_nm)).max() < 2.0  # smooth: under 2 nm per frame
    assert list(d.frames) == list(range(5000))


def test_truth_positions_are_sample_plus_drift():
    sim = simulate_smlm(300, (32, 32), blinking=Blinking(p_on=0.05), pixel_size=160.0, seed=5)
    t = sim.truth
    f = t["frame"].to_numpy()
    assert np.allclose(t["x"] - t["x_sample"], sim.drift.x_nm[f] / 160.0)
    assert np.allclose(t["y"] - t["y_sample"], sim.drift.y_nm[f] / 160.0)
    assert t["photons"].mean() == pytest.approx(1500.0, rel=0.05)
    assert t.attrs["pixel_size"] == 160.0


def test_localizations_scatter_by_their_precision():
    sim = simulate_smlm(400, (48, 48), blinking=Blinking(p_on=0.05), seed=6)
    table = localizations(sim, seed=1)
    err = (table["x"] - sim.truth["x"]) / table["uncertainty"]
    assert err.std() == pytest.approx(1.0, rel=0.05)
    assert (table["class"] == "good").all()
    # Mortensen's MLE precision: sigma / sqrt(N) without background, more with it
    assert mle_precision(1e4, 0.0, 1.3)[()] == pytest.approx(np.sqrt((1.69 + 1 / 12) / 1e4))
    assert mle_precision(1e3, 20.0, 1.3) > mle_precision(1e3, 0.0, 1.3)


def test_fiducials_are_seen_in_most_frames():
    sim = simulate_smlm(200, (32, 32), blinking=Blinking(p_on=0.0), fiducials=2, seed=7)
    t = sim.truth
    assert t["fiducial"].all() and len(t) == pytest.approx(0.95 * 400, abs=25)
    assert true_molecule_count(t, max_gap=3) == 2


def test_movie_shows_the_emitters_where_the_truth_says():
    sim = simulate_smlm(5, (24, 24), blinking=Blinking(p_on=0.0), fiducials=1, drift_nm=0.0, seed=8)
    movie = render_movie(sim, seed=0)
    assert movie.shape == (5, 24, 24) and movie.dtype == np.uint16
    row = sim.truth.iloc[0]
    frame = movie[int(row["frame"])].astype(float)
    peak = np.unravel_index(np.argmax(frame), frame.shape)
    assert abs(peak[0] - row["y"]) <= 1 and abs(peak[1] - row["x"]) <= 1
