import numpy as np
import pytest

from napari_celldenoise.spots.fit import (
    crlb_symmetric,
    extract_boxes,
    fit_boxes,
    read_variance,
    to_photoelectrons,
)
from napari_celldenoise.spots.simulate import Camera, integrated_gaussian, simulate_boxes

CAM = Camera()


def _boxes(n, photons=2000.0, background=10.0, seed=0, sigma=1.3):
    adu, truth = simulate_boxes(
        n, 7, photons=photons, background=background, sigma=sigma, camera=CAM, seed=seed
    )
    return to_photoelectrons(adu, CAM), truth


@pytest.mark.parametrize("method", ["mle", "lsq"])
def test_noise_free_spot_is_recovered_exactly(method):
    box = integrated_gaussian((7, 7), 3.2, 2.7, 1.4, 1500.0)[None] + 12.0
    res = fit_boxes(box, method=method, sigma=1.2)
    np.testing.assert_allclose(
        res.params[0, :5], [2.7, 3.2, 1500.0, 12.0, 1.4], rtol=1e-4, atol=1e-4
    )
    assert res.converged[0] and res.iterations[0] < 30


def test_mle_reaches_the_cramer_rao_bound():
    e, truth = _boxes(3000, photons=1000.0, background=20.0, seed=1)
    res = fit_boxes(e, method="mle", read_var=read_variance(CAM))
    assert res.converged.mean() > 0.99
    err = res.params[:, 0] - truth[:, 0]
    bound = crlb_symmetric(1000.0, 20.0, 1.3, read_var=read_variance(CAM))[0]
    assert abs(err.mean()) < 0.01
    assert 0.9 < err.std() / bound < 1.1
    # the reported bound (at the estimate) agrees with the true one
    assert np.median(res.crlb[:, 0]) == pytest.approx(bound, rel=0.1)


def test_elliptical_and_fixed_sigma():
    box = integrated_gaussian((9, 9), 4.0, 4.0, 1.0, 3000.0)[None] + 5.0
    # an elliptical spot: build from separable profiles
    from scipy.special import erf

    g = np.arange(9)
    ex = 0.5 * (erf((g - 4 + 0.5) / (np.sqrt(2) * 1.8)) - erf((g - 4 - 0.5) / (np.sqrt(2) * 1.8)))
    ey = 0.5 * (erf((g - 4 + 0.5) / (np.sqrt(2) * 1.0)) - erf((g - 4 - 0.5) / (np.sqrt(2) * 1.0)))
    ell = (3000 * np.outer(ey, ex) + 5.0)[None]
    res = fit_boxes(ell, elliptical=True)
    np.testing.assert_allclose(res.params[0, 4:], [1.8, 1.0], rtol=1e-3)
    fixed = fit_boxes(box, sigma=1.5, fixed_sigma=True)
    assert fixed.params[0, 4] == 1.5 and fixed.crlb[0, 4] == 0.0
    assert fixed.params[0, 0] == pytest.approx(4.0, abs=1e-3)


def test_empty_and_bad_input():
    res = fit_boxes(np.empty((0, 7, 7)))
    assert len(res) == 0 and res.params.shape == (0, 6)
    with pytest.raises(ValueError, match="mle"):
        fit_boxes(np.zeros((1, 7, 7)), method="gauss")
    with pytest.raises(ValueError, match="boxes"):
        fit_boxes(np.zeros((1, 7, 5)))


def test_extract_boxes_and_camera_conversion():
    frame = np.arange(100.0).reshape(10, 10)
    b = extract_boxes(frame, np.array([[5, 4]]), 3)
    np.testing.assert_array_equal(b[0], frame[4:7, 3:6])
    cam = Camera(offset=100, sensitivity=2.0, em_gain=10.0, read_noise=20.0)
    assert to_photoelectrons(np.array([150.0]), cam)[0] == pytest.approx(10.0)
    assert read_variance(cam) == pytest.approx(4.0)


def test_threads_give_the_same_fits_as_one_thread():
    from napari_celldenoise.spots.fit import BLOCK

    e, _ = _boxes(2 * BLOCK + 37, photons=800.0, background=15.0, seed=4)
    one = fit_boxes(e, method="mle", read_var=read_variance(CAM), threads=1)
    two = fit_boxes(e, method="mle", read_var=read_variance(CAM), threads=2)
    np.testing.assert_array_equal(one.params, two.params)
    np.testing.assert_array_equal(one.crlb, two.crlb)
    np.testing.assert_array_equal(one.iterations, two.iterations)


@pytest.mark.parametrize("centre", [-30.0, -1.0, 0.2, 3.4, 6.9, 9.0, 40.0])
@pytest.mark.parametrize("sigma", [0.3, 1.3, 4.0])
def test_model_axis_matches_the_direct_formula(centre, sigma):
    """The border-sharing, exp-recurrence axis against erf/exp taken per pixel edge."""
    from scipy.special import erf

    from napari_celldenoise.spots.fit import _axis

    n = 7
    e, dc, ds = np.empty(n), np.empty(n), np.empty(n)
    _axis(n, centre, sigma, e, dc, ds)
    k = np.arange(n)
    hi, lo = k - centre + 0.5, k - centre - 0.5
    g_hi, g_lo = np.exp(-(hi**2) / (2 * sigma**2)), np.exp(-(lo**2) / (2 * sigma**2))
    c = 1 / (np.sqrt(2 * np.pi) * sigma)
    np.testing.assert_allclose(
        e, 0.5 * (erf(hi / (np.sqrt(2) * sigma)) - erf(lo / (np.sqrt(2) * sigma))), atol=1e-15
    )
    np.testing.assert_allclose(dc, c * (g_lo - g_hi), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(ds, c / sigma * (lo * g_lo - hi * g_hi), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("centre", [-30.0, -1.0, 0.2, 3.4, 9.0])
@pytest.mark.parametrize("sigma", [0.3, 1.3, 4.0])
def test_fast_axis_is_within_the_erf_approximation_bound(centre, sigma):
    """The fitter's axis (A&S 7.1.26 erf) against the libm one: the integrated Gaussian
    within the approximation's 1.5e-7, the derivatives (exact Gaussians) to rounding."""
    from napari_celldenoise.spots.fit import _axis, _axis_fast

    ref = [np.empty(7) for _ in range(3)]
    fast = [np.empty(7) for _ in range(3)]
    _axis(7, centre, sigma, *ref)
    _axis_fast(7, centre, sigma, *fast)
    np.testing.assert_allclose(fast[0], ref[0], rtol=0, atol=1.5e-7)
    np.testing.assert_allclose(fast[1], ref[1], rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(fast[2], ref[2], rtol=1e-12, atol=1e-300)


def test_vectorised_log_matches_numpy():
    from numba import njit

    from napari_celldenoise.spots.fit import _log_rows, _workspace

    @njit
    def logs(x):
        ws = _workspace(7)
        flat, bits = ws[5], ws[6]
        out = np.empty_like(x)
        for k in range(0, len(x), 49):
            m = min(49, len(x) - k)
            flat[1, :m] = x[k : k + m]
            _log_rows(flat, bits, 1, 2, m)
            out[k : k + m] = flat[2, :m]
        return out

    x = np.concatenate([np.geomspace(1e-9, 1e8, 5000), np.linspace(0.6, 1.5, 999)])
    np.testing.assert_allclose(logs(x), np.log(x), rtol=1e-15, atol=4e-15)


def test_unrolled_5x5_solve_and_bounds_match_numpy():
    """The symmetric fit's unrolled Cholesky: the damped Levenberg-Marquardt step and the
    bounds (sqrt of the inverse's diagonal) against numpy, and False where not SPD."""
    from napari_celldenoise.spots.fit import _inverse_diagonal5, _solve5_damped

    rng = np.random.default_rng(3)
    for _ in range(20):
        a = rng.normal(size=(5, 8))
        h = a @ a.T * rng.uniform(0.1, 1e4)
        mats = np.zeros((2, 6, 6))
        mats[1, :5, :5] = h
        vecs = np.zeros((2, 6))
        vecs[1, :5] = rng.normal(size=5)
        lam = 10.0 ** rng.uniform(-7, 2)
        step = np.zeros(6)
        assert _solve5_damped(mats, 1, lam, vecs, 1, step)
        damped = h + np.diag(np.diag(h) * lam + 1e-12)
        np.testing.assert_allclose(step[:5], np.linalg.solve(damped, vecs[1, :5]), rtol=1e-9)
        out = np.zeros(6)
        assert _inverse_diagonal5(mats, 1, 2.0, out)
        np.testing.assert_allclose(out[:5], np.sqrt(2.0 * np.diag(np.linalg.inv(h))), rtol=1e-9)
    mats[1, 2, 2] = -1.0
    assert not _inverse_diagonal5(mats, 1, 1.0, out)
    assert not _solve5_damped(mats, 1, 1e-3, vecs, 1, step)


def test_least_squares_bounds_are_those_at_its_estimate():
    """Least squares takes its bounds from its last evaluation (one step below tol before the
    estimate): within 0.5 % of the bounds evaluated at the estimate itself."""
    e, _ = _boxes(200, photons=1500.0, background=12.0, seed=6)
    rv = read_variance(CAM)
    res = fit_boxes(e, method="lsq", read_var=rv)
    assert res.converged.all()
    at = np.array(
        [crlb_symmetric(p[2], p[3], p[4], read_var=rv, x=p[0], y=p[1]) for p in res.params]
    )
    np.testing.assert_allclose(res.crlb[:, :5], at[:, :5], rtol=5e-3)
