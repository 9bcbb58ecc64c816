import numpy as np
import pytest
from scipy.optimize import minimize

from napari_celldenoise.spots.multifit import fit_emitters
from napari_celldenoise.spots.simulate import integrated_gaussian

RVAR = 0.64  # read noise 0.8 e-, squared


def _loglik(q, data, k, s, v):
    mu = np.full(data.shape, q[-1] + v)
    for e in range(k):
        mu += integrated_gaussian(data.shape, q[3 * e], q[3 * e + 1], s, q[3 * e + 2])
    d = np.maximum(data + v, 0)
    return float(np.sum(d * np.log(np.maximum(mu, 1e-9)) - mu))


def test_noise_free_pair_is_recovered_exactly():
    data = integrated_gaussian((11, 11), [4.3, 6.9], [4.6, 5.8], 1.3, [1500.0, 900.0]) + 8.0
    q, _ = fit_emitters(data, np.array([4.0, 4.0, 1000, 7.0, 6.0, 1000, 5.0]), 2, 1.3, RVAR)
    np.testing.assert_allclose(q, [4.3, 4.6, 1500, 6.9, 5.8, 900, 8.0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k", [1, 2])
def test_noisy_fit_is_the_likelihood_maximum(k):
    """Same optimum (to rounding) as a generic optimiser on the same log-likelihood."""
    rng = np.random.default_rng(3)
    mu = integrated_gaussian((11, 11), [4.4, 6.6], [5.2, 5.0], 1.3, [800.0, 600.0]) + 10.0
    data = rng.poisson(mu).astype(float) + rng.normal(0, np.sqrt(RVAR), mu.shape)
    q0 = np.array([5.5, 5.0, 1200.0, 8.0] if k == 1 else [4.8, 5.0, 600, 6.2, 5.0, 600, 8.0])
    q, ll = fit_emitters(data, q0, k, 1.3, RVAR)
    assert ll == pytest.approx(_loglik(q, data, k, 1.3, RVAR), abs=1e-6)
    ref = minimize(
        lambda p: -_loglik(p, data, k, 1.3, RVAR),
        q0,
        method="Nelder-Mead",
        options={"maxiter": 20000, "xatol": 1e-7, "fatol": 1e-9},
    )
    assert ll >= -ref.fun - 1e-3


def test_likelihood_ratio_tells_one_spot_from_two():
    rng = np.random.default_rng(5)
    gains = {}
    for label, ys in (("one", [5.0]), ("two", [3.9, 6.4])):
        out = []
        for _ in range(20):
            n = np.full(len(ys), 2000.0 / len(ys))
            mu = integrated_gaussian((11, 11), ys, [5.0] * len(ys), 1.3, n) + 10.0
            data = rng.poisson(mu).astype(float)
            _, l1 = fit_emitters(data, np.array([5.0, 5.0, 2000.0, 10.0]), 1, 1.3, 0.0)
            q0 = np.array([4.2, 5.0, 1000.0, 5.8, 5.0, 1000.0, 10.0])
            _, l2 = fit_emitters(data, q0, 2, 1.3, 0.0)
            out.append(2 * (l2 - l1))
        gains[label] = np.array(out)
    assert np.all(gains["one"] < 25) and np.all(gains["two"] > 25), gains
