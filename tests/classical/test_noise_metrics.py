"""Noise estimation (one image, a stack), adding noise, and PSNR/SSIM/affine PSNR."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.classical import metrics
from napari_celldenoise.classical.noise import (
    add_gaussian,
    add_poisson_gaussian,
    add_salt_pepper,
    estimate_noise,
    estimate_noise_stack,
    estimate_sigma,
)


@pytest.fixture(scope="module")
def clean(cells):
    _, c = cells
    return ((c - c.min()) / np.ptp(c) * 400 + 20).astype(np.float32)


@pytest.mark.parametrize(("a", "b"), [(1.0, 4.0), (4.0, 100.0)])
def test_poisson_gaussian_from_one_image(clean, a, b):
    big = np.tile(clean, (2, 2))
    noisy = add_poisson_gaussian(big, a, b, rng=0)
    fit = estimate_noise(noisy)
    assert fit.model == "poisson-gaussian"
    assert fit.a == pytest.approx(a, rel=0.15)
    assert np.sqrt(max(fit.b, 0)) == pytest.approx(np.sqrt(b), abs=0.35 * np.sqrt(b) + 1)
    assert fit.r2 > 0.9 and fit.n_bins >= 10


def test_poisson_gaussian_from_a_stack(clean):
    frames = np.stack([add_poisson_gaussian(clean, 2.0, 9.0, rng=i) for i in range(12)])
    fit = estimate_noise_stack(frames)
    assert fit.source == "stack" and fit.model == "poisson-gaussian"
    assert fit.a == pytest.approx(2.0, rel=0.05) and fit.b == pytest.approx(9.0, abs=2.0)


def test_gaussian_noise_is_recognised(clean):
    noisy = add_gaussian(np.tile(clean, (2, 2)), 5.0, rng=1)
    fit = estimate_noise(noisy)
    assert fit.model == "gaussian" and fit.sigma == pytest.approx(5.0, rel=0.1)
    assert estimate_sigma(noisy) == pytest.approx(5.0, rel=0.1)
    d = fit.to_dict()
    assert {"model", "a", "b", "sigma", "fit"} <= set(d) and "r2" in d["fit"]


def test_estimate_ignores_excluded_impulses(clean):
    noisy = add_poisson_gaussian(np.tile(clean, (2, 2)), 2.0, 9.0, rng=2)
    sp = add_salt_pepper(noisy, 0.05, low=0.0, high=2000.0, rng=3)
    fit = estimate_noise(sp, exclude=(sp == 0) | (sp == 2000))
    assert fit.a == pytest.approx(2.0, rel=0.2)


def test_add_noise_statistics_and_dtypes():
    x = np.full((300, 300), 100.0, np.float32)
    assert np.std(add_gaussian(x, 3.0, rng=0)) == pytest.approx(3.0, rel=0.05)
    pg = add_poisson_gaussian(x, 2.0, 16.0, rng=0)
    assert pg.mean() == pytest.approx(100, abs=0.5) and pg.var() == pytest.approx(216, rel=0.06)
    u8 = np.full((200, 200), 100, np.uint8)
    sp = add_salt_pepper(u8, 0.1, rng=0)
    assert sp.dtype == np.uint8 and set(np.unique(sp)) == {0, 100, 255}
    assert np.mean(sp != 100) == pytest.approx(0.1, abs=0.01)
    with pytest.raises(ValueError):
        add_poisson_gaussian(x, 0.0, 1.0)


def test_psnr_uses_the_reference_dtype_range_or_the_given_one():
    ref = np.zeros((64, 64), np.uint8)
    img = np.full((64, 64), 1.0)
    assert metrics.psnr(img, ref) == pytest.approx(20 * np.log10(255))
    assert metrics.psnr(img, ref, data_range=1.0) == pytest.approx(0.0)
    ref_f = np.linspace(0, 2, 64 * 64).reshape(64, 64)
    assert metrics.data_range_of(ref_f) == pytest.approx(2.0)
    assert metrics.psnr(ref_f, ref_f) == float("inf")


def test_affine_psnr_forgives_gain_and_offset_but_plain_psnr_does_not(cells):
    noisy, clean = cells
    scaled = 0.01 * noisy - 3.0
    plain = metrics.psnr(scaled, clean)
    affine = metrics.psnr_affine(scaled, clean)
    assert affine == pytest.approx(metrics.psnr_affine(noisy, clean), abs=1e-6)
    assert affine > plain + 10


def test_ssim_and_shape_mismatch(cells):
    noisy, clean = cells
    assert metrics.ssim(clean, clean) == pytest.approx(1.0)
    assert 0 < metrics.ssim(noisy, clean) < 1
    stack = np.stack([clean, clean])
    assert metrics.ssim(stack, stack) == pytest.approx(1.0)
    with pytest.raises(metrics.ShapeMismatch):
        metrics.compare(noisy[:10], clean)
