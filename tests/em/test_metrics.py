"""Lattice metrics with known answers on simulated images."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_celldenoise.em.metrics import calibrate, lattice_metrics
from napari_celldenoise.em.simulate import render_columns, simulate_lattice


@pytest.fixture(scope="module")
def lattice():
    return simulate_lattice(
        (192, 192),
        kind="hexagonal",
        spacing=12,
        dose=50,
        dents=2,
        vacancy_rate=0.03,
        pixel_size=0.0127,
        seed=11,
    )


def _columns(truth, positions, with_dents=True):
    idx = tuple(np.round(positions).astype(int).T)
    amp = (truth.dent_map[idx] if with_dents else np.ones(len(positions))) * truth.dose
    return render_columns(truth.clean.shape, positions, amp, truth.sigma)


def test_the_truth_scores_perfectly_even_after_an_affine_change(lattice):
    _, truth = lattice
    r = lattice_metrics(3.0 * truth.clean + 10.0, truth, same_units=False)
    assert r["psnr"] > 60 and r["ssim"] > 0.999
    assert r["precision"] == 1 and r["recall"] == 1 and r["f1"] == 1
    assert r["rmse_pm"] < 1.0  # the parabola's sub-pixel bias only
    assert r["vacancies_filled"] == 0 and len(truth.vacancies) > 0
    assert r["dent_contrast_error"] == pytest.approx(0, abs=1e-9)
    assert r["dent_kept"] == pytest.approx(1)


def test_a_known_shift_gives_its_rmse_and_bias_in_pm(lattice):
    _, truth = lattice
    shifted = ndi.shift(truth.clean.astype(np.float64), (0.0, 0.4), order=3, mode="nearest")
    r = lattice_metrics(shifted, truth)
    assert r["bias_x_pm"] == pytest.approx(0.4 * 12.7, abs=1.0)
    assert abs(r["bias_y_pm"]) < 1.0
    assert r["rmse_pm"] == pytest.approx(0.4 * 12.7, abs=1.0)
    assert r["recall"] > 0.98


def test_filled_vacancies_missing_columns_and_erased_dents(lattice):
    _, truth = lattice
    filled = truth.clean + _columns(truth, truth.vacancies)
    assert lattice_metrics(filled, truth)["vacancies_filled"] == 1.0
    keep = np.random.default_rng(0).random(len(truth.positions)) > 0.1
    fewer = _columns(truth, truth.positions[keep])
    r = lattice_metrics(fewer, truth)
    assert r["recall"] == pytest.approx(keep.mean(), abs=0.02) and r["precision"] > 0.99
    flat = _columns(truth, truth.positions, with_dents=False)
    r = lattice_metrics(flat, truth)
    assert r["dent_kept"] == pytest.approx(0, abs=0.1)
    inside = truth.clean[truth.dent_mask].mean() / truth.clean[~truth.dent_mask].mean()
    assert r["dent_contrast_error"] == pytest.approx((1 - inside) / inside, rel=0.2)


def test_noise_costs_psnr_and_position_accuracy(lattice):
    noisy, truth = lattice
    clean = lattice_metrics(truth.clean, truth)
    r = lattice_metrics(noisy, truth)
    assert r["psnr"] < 25 and r["rmse_pm"] > 3 * clean["rmse_pm"]
    assert r["dent_contrast_error"] < 0.05  # shot noise is zero-mean: region means survive


def test_calibrate_inverts_an_affine_map_without_shrinking():
    rng = np.random.default_rng(1)
    ref = rng.random((64, 64))
    noisy = 2.0 * ref + 5.0 + rng.normal(0, 0.5, ref.shape)
    back = calibrate(noisy, ref)
    assert np.std(back) > np.std(ref)  # noise kept, scale not shrunk
    assert np.mean(back) == pytest.approx(np.mean(ref), abs=1e-9)


@pytest.mark.parametrize("seed", [101, 102])
def test_truth_from_a_clean_reference_finds_the_columns_vacancies_and_dents(seed):
    from napari_celldenoise.em.metrics import truth_from_reference
    from napari_celldenoise.spots.match import match_points

    img, truth = simulate_lattice(
        (256, 256), kind="honeycomb", spacing=12, dose=20, dents=3, jitter=0.3,
        read_noise=0.5, vacancy_rate=0.01, seed=seed,
    )  # fmt: skip
    found = truth_from_reference(truth.clean, pixel_size=0.0127)
    cols = match_points(found.positions, truth.positions, tolerance=1.0)
    assert cols.recall > 0.97 and cols.precision > 0.99 and cols.rmse < 0.1
    vac = match_points(found.vacancies, truth.vacancies, tolerance=2.0)
    assert vac.recall == 1.0 and vac.precision == 1.0
    overlap = (found.dent_mask & truth.dent_mask).sum() / (found.dent_mask | truth.dent_mask).sum()
    assert overlap > 0.3
    # the metrics of the noisy image scored against the reference's truth are the true ones
    true, measured = lattice_metrics(img, truth), lattice_metrics(img, found)
    assert measured["psnr"] == pytest.approx(true["psnr"], abs=1e-6)
    assert measured["f1"] == pytest.approx(true["f1"], abs=0.02)
    assert measured["rmse_pm"] == pytest.approx(true["rmse_pm"], rel=0.05)
    assert measured["vacancies_filled"] == true["vacancies_filled"]


def test_truth_from_a_reference_without_lattice_says_so():
    from napari_celldenoise.em.errors import LatticeNotFound
    from napari_celldenoise.em.metrics import truth_from_reference

    with pytest.raises(LatticeNotFound, match="no lattice found"):
        truth_from_reference(np.random.default_rng(0).normal(size=(128, 128)))
