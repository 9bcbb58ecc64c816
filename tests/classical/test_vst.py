"""Generalized Anscombe transform: stabilisation and the exact unbiased inverse."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.classical.vst import GAT, exact_unbiased_inverse


@pytest.mark.parametrize(("a", "b"), [(1.0, 0.0), (2.0, 9.0), (4.0, -12.0)])
def test_forward_makes_the_noise_unit_variance(a, b):
    rng = np.random.default_rng(0)
    gat = GAT(a, b)
    for y in (20.0, 80.0):
        mu, sigma = gat.mu_sigma
        z = a * rng.poisson(y, 200_000) + mu + rng.normal(0, sigma, 200_000)
        assert np.std(gat.forward(z)) == pytest.approx(1.0, abs=0.04)


@pytest.mark.parametrize("y", [0.5, 2.0, 5.0, 30.0, 600.0])
def test_exact_inverse_is_unbiased_where_the_algebraic_one_is_not(y):
    rng = np.random.default_rng(1)
    gat = GAT(2.0, 4.0)  # sigma 2 read noise, gain 2
    z = 2.0 * rng.poisson(y, 1_000_000) + rng.normal(0, 2.0, 1_000_000)
    d = np.array([gat.forward(z).astype(np.float64).mean()])
    exact = float(gat.inverse(d)[0])
    assert exact == pytest.approx(2 * y, rel=0.02, abs=0.05)
    if y <= 5:
        algebraic = float(gat.inverse(d, exact=False)[0])
        assert abs(algebraic - 2 * y) > abs(exact - 2 * y)


def test_inverse_is_monotone_continuous_and_clipped_at_zero():
    d = np.linspace(0, 60, 2000)
    y = exact_unbiased_inverse(d, 0.7)
    assert np.all(np.diff(y) >= 0) and y[0] == 0.0
    assert np.max(np.abs(np.diff(y[d > 3], 2))) < 5e-3  # smooth: no jump at the table end
    high = d > 45
    np.testing.assert_allclose(y[high], d[high] ** 2 / 4 - 0.125 - 0.49, atol=2e-3)


def test_gaussian_case_is_a_scaling():
    gat = GAT(0.0, 25.0)
    x = np.array([0.0, 5.0, 100.0], np.float32)
    np.testing.assert_allclose(gat.forward(x), x / 5)
    np.testing.assert_allclose(gat.inverse(gat.forward(x)), x, rtol=1e-6)
