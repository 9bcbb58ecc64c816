"""The lattice simulator: its truth matches the image it makes."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.em.simulate import lattice_basis, noisify, simulate_lattice


def test_columns_sit_where_the_truth_says_and_vacancies_are_dark():
    img, truth = simulate_lattice(
        (128, 128), kind="square", spacing=10, dose=np.inf, seed=2, vacancy_rate=0.05
    )
    assert len(truth.vacancies) > 0
    inner = lambda p: p[(p.min(axis=1) > 5) & (p.max(axis=1) < 122)]  # noqa: E731
    at = lambda p: img[tuple(np.round(inner(p)).astype(int).T)]  # noqa: E731
    peak = 1 / (2 * np.pi * truth.sigma**2)
    assert np.all(at(truth.positions) > 0.8 * peak)
    assert np.all(at(truth.vacancies) < 0.1 * peak)
    # nearest-neighbour distance of the columns is the spacing
    d = np.linalg.norm(truth.positions[:, None] - truth.positions[None], axis=-1)
    d[d == 0] = np.inf
    assert np.median(d.min(axis=1)) == pytest.approx(10, abs=1e-6)


def test_dose_sets_the_counts_per_column_and_poisson_noise():
    img, truth = simulate_lattice(
        (128, 128), kind="hexagonal", spacing=12, dose=50, seed=1, vacancy_rate=0.0
    )
    assert np.all(img == np.round(img))  # counts
    total = img.sum() / (len(truth.positions) + 0.0)
    assert total == pytest.approx(50, rel=0.15)  # border columns spill light in
    assert img.sum() == pytest.approx(truth.clean.sum(), rel=0.02)


def test_dents_thin_the_columns_under_them():
    img, truth = simulate_lattice(
        (192, 192), spacing=10, dose=np.inf, dents=2, seed=4, vacancy_rate=0.0
    )
    assert truth.dent_mask.any() and 0.5 <= truth.dent_map.min() <= 0.95
    idx = tuple(np.round(truth.positions).astype(int).T)
    inside = truth.dent_mask[idx]
    assert img[idx][inside].mean() < img[idx][~inside].mean()


def test_jitter_shifts_rows_but_not_the_clean_image():
    a, ta = simulate_lattice((64, 64), dose=np.inf, jitter=0.0, seed=5)
    b, tb = simulate_lattice((64, 64), dose=np.inf, jitter=1.0, seed=5)
    np.testing.assert_allclose(ta.clean, tb.clean)
    assert np.abs(a - b).max() > 0.01 and np.std(tb.jitter) > 0.5


def test_bases_have_the_right_angles():
    for kind, gamma in (("square", 90), ("hexagonal", 120)):
        a1, a2 = lattice_basis(kind, 7.0, angle=13)
        cos = a1 @ a2 / (np.linalg.norm(a1) * np.linalg.norm(a2))
        assert np.degrees(np.arccos(cos)) == pytest.approx(gamma)
    with pytest.raises(ValueError, match="kind"):
        lattice_basis("cubic", 5.0)


@pytest.mark.parametrize(("gain", "offset_variance"), [(2.0, 9.0), (1.5, -30.0)])
def test_noisify_records_the_measured_poisson_gaussian_noise(gain, offset_variance):
    # a flat field at three levels: the recorded variance is gain * mean + offset_variance
    rng = np.random.default_rng(0)
    for level in (40.0, 200.0, 1000.0):
        out = noisify(np.full((200, 200), level), rng, gain=gain, offset_variance=offset_variance)
        assert out.mean() == pytest.approx(level, rel=0.01)
        assert out.var() == pytest.approx(gain * level + offset_variance, rel=0.05)
    with pytest.raises(ValueError, match="gain must be positive"):
        noisify(np.ones((4, 4)), rng, gain=0.0, offset_variance=1.0)


def test_noisify_jitters_the_scan_lines_of_a_lattice():
    _, truth = simulate_lattice((64, 64), dose=np.inf, seed=2, vacancy_rate=0.0)
    rng = np.random.default_rng(1)
    still = noisify(truth.clean * 1e6, rng, gain=1.0, offset_variance=0.0)
    moved = noisify(truth.clean * 1e6, rng, gain=1.0, offset_variance=0.0, jitter=1.0)
    # at a million counts the shot noise is 0.1 %: the jitter moves far more than that
    assert np.abs(still / 1e6 - truth.clean).max() < 0.05 * truth.clean.max()
    assert np.abs(moved / 1e6 - truth.clean).max() > 0.2 * truth.clean.max()
