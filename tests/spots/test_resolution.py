"""FRC and NeNA on simulated localizations whose precision is known."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.jobs import Done, Progress
from napari_celldenoise.spots.resolution import (
    FRC_THRESHOLD,
    ResolutionError,
    frc_table,
    frc_table_job,
    nena,
    nena_table,
    precision_summary,
    ring_correlation,
    split_halves,
    summary_text,
)
from napari_celldenoise.spots.simulate_locs import expected_frc_resolution, simulate_localizations


@pytest.fixture(scope="module", params=[10.0, 20.0])
def table(request):
    return simulate_localizations(sigma_nm=request.param, field_nm=6000.0, seed=3)


def test_frc_resolution_matches_the_expected_value_for_the_precision(table):
    sigma = table.attrs["sigma_nm"]
    result = frc_table(table, repeats=2)
    expected = expected_frc_resolution(table["emitter"], sigma, result.pixel_nm)
    assert result.pixel_nm == pytest.approx(sigma / 2)  # the default: half the uncertainty
    assert result.resolution_nm == pytest.approx(expected, rel=0.10)
    assert 2.5 * sigma < result.resolution_nm < 4.5 * sigma
    # the curve: starts near 1 at low frequency, and the threshold is met at 1 / resolution
    q = 1.0 / result.resolution_nm
    assert result.smoothed[1] > 0.5
    assert np.interp(q, result.frequency, result.smoothed) == pytest.approx(FRC_THRESHOLD, abs=1e-3)
    assert result.n_localizations == len(table)
    assert result.frequency[-1] == pytest.approx(0.5 / result.pixel_nm, rel=0.01)  # Nyquist


def test_frc_of_a_worse_precision_is_a_worse_resolution():
    fine = simulate_localizations(sigma_nm=8.0, field_nm=5000.0, seed=1)
    coarse = simulate_localizations(sigma_nm=24.0, field_nm=5000.0, seed=1)
    ratio = frc_table(coarse, repeats=1).resolution_nm / frc_table(fine, repeats=1).resolution_nm
    assert ratio == pytest.approx(3.0, rel=0.15)


def test_time_blocks_remove_the_correlation_of_repeated_localizations(table):
    """Emitters at unrelated places: with whole bursts in one half, little high-frequency
    correlation is left, so the resolution read is far coarser than with random halves."""
    random = frc_table(table, repeats=1)
    blocks = frc_table(table, repeats=1, split="blocks", block_frames=100)
    assert blocks.split == "blocks"
    assert not np.isfinite(blocks.resolution_nm) or blocks.resolution_nm > 4 * random.resolution_nm


def test_split_by_blocks_keeps_each_block_whole():
    frames = np.repeat(np.arange(100), 5)
    first = split_halves(frames.size, frames=frames, split="blocks", block_frames=10)
    for b in range(10):
        assert len(set(first[frames // 10 == b])) == 1
    assert first.sum() == frames.size // 2
    with pytest.raises(ResolutionError, match="one block"):
        split_halves(frames.size, frames=frames, split="blocks", block_frames=1000)
    with pytest.raises(ResolutionError, match="split must be"):
        split_halves(10, split="odd")


def test_ring_correlation_of_identical_and_of_independent_images():
    rng = np.random.default_rng(0)
    a = rng.random((64, 64))
    ring, same = ring_correlation(a, a)
    assert ring[-1] == 32 and np.allclose(same, 1.0)
    _, other = ring_correlation(rng.random((64, 64)) - 0.5, rng.random((64, 64)) - 0.5)
    assert np.abs(other[5:]).mean() < 0.15
    with pytest.raises(ResolutionError, match="square"):
        ring_correlation(a[:, :32], a[:, :32])


def test_frc_job_reports_progress_and_stops(table):
    events = list(frc_table_job(table, repeats=2))
    assert [e.done for e in events if isinstance(e, Progress)] == [1, 2]
    assert isinstance(events[-1], Done) and events[-1].result is not None
    stopped = list(frc_table_job(table, repeats=5, should_stop=lambda: True))
    assert len(stopped) == 1 and stopped[0].stopped and stopped[0].result is None


def test_frc_refuses_too_few_localizations(table):
    with pytest.raises(ResolutionError, match="at least 100"):
        frc_table(table.iloc[:50])


def test_nena_matches_the_simulated_precision(table):
    sigma = table.attrs["sigma_nm"]
    result = nena_table(table)
    assert result.sigma_nm == pytest.approx(sigma, rel=0.10)
    assert result.n_pairs > 1000
    assert result.max_distance_nm == pytest.approx(10 * result.sigma_nm, rel=0.01)
    # the fitted density follows the histogram
    assert np.abs(result.fit - result.density).max() < 0.25 * result.density.max()


def test_nena_ignores_other_molecules_nearby():
    """A dense field: many next-frame neighbours are other emitters; the fit's second term
    takes them."""
    dense = simulate_localizations(sigma_nm=15.0, field_nm=4000.0, spacing_nm=60.0, seed=2)
    result = nena_table(dense)
    assert result.sigma_nm == pytest.approx(15.0, rel=0.10)
    assert result.fraction < 0.99


def test_nena_needs_localizations_in_consecutive_frames():
    x = np.arange(200.0) * 1000
    with pytest.raises(ResolutionError, match="next frame"):
        nena(x, x, np.arange(200) * 2)  # no two in consecutive frames


def test_precision_summary(table):
    summary = precision_summary(table)
    assert summary.n == len(table)
    assert summary.median_uncertainty_nm == pytest.approx(table.attrs["sigma_nm"])
    assert summary.nena is not None
    text = summary_text(summary)
    assert "median uncertainty" in text and "NeNA" in text
    lonely = precision_summary(table.iloc[::50].assign(frame=lambda t: np.arange(len(t)) * 3))
    assert lonely.nena is None and "next frame" in lonely.nena_message
