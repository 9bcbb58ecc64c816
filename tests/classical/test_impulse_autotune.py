"""Salt-and-pepper repair and Noise2Self auto-tuning."""

from __future__ import annotations

import time

import numpy as np
import pytest

from napari_celldenoise.classical import impulse
from napari_celldenoise.classical.autotune import (
    autotune,
    autotune_job,
    interpolate_neighbours,
    j_invariant_loss,
)
from napari_celldenoise.classical.noise import add_salt_pepper
from napari_celldenoise.classical.params import ParamError
from napari_celldenoise.jobs import Done

DETECTORS = {
    "adaptive-median": impulse.adaptive_median,
    "kde-lof": impulse.kde_lof,
    "gridlof": impulse.grid_lof,
}


def _camera_image(cells=None) -> np.ndarray:
    """A 16-bit camera image of cells (400 photons at the brightest, offset 100)."""
    from napari_celldenoise.synthetic import fluorescence_image

    noisy, _ = fluorescence_image((256, 256), photons=400.0, seed=5)
    return np.clip(np.rint(noisy), 0, 65535).astype(np.uint16)


def score(clean, noisy, out, gat, floor) -> tuple[float, float]:
    """Repaired: within 3 noise sigmas of the original; changed: clean pixels altered."""
    corrupted = noisy != clean
    c = clean.astype(np.float64)
    sigma = np.sqrt(np.maximum(gat.a * c + gat.b, floor)) if not gat.gaussian else np.sqrt(gat.b)
    repaired = float(np.mean((np.abs(out - c) <= 3 * sigma)[corrupted]))
    changed = float(np.mean((out != c)[~corrupted]))
    return repaired, changed


@pytest.mark.parametrize("name", list(DETECTORS))
def test_five_percent_salt_and_pepper_is_repaired(cells, name):
    clean = _camera_image(cells)
    noisy = add_salt_pepper(clean, 0.05, rng=4)
    det = DETECTORS[name](noisy)
    out = impulse.replace_outliers(noisy, det.mask)
    gat, floor = impulse.noise_model(clean.astype(np.float32))
    repaired, changed = score(clean, noisy, out, gat, floor)
    assert repaired >= 0.95 and changed <= 0.01, (repaired, changed)
    keep = ~det.mask
    np.testing.assert_array_equal(out[keep], noisy[keep].astype(np.float32))  # bit for bit


@pytest.mark.parametrize("name", list(DETECTORS))
def test_detectors_leave_a_clean_noisy_image_almost_alone(cells, name):
    clean = _camera_image(cells)
    det = DETECTORS[name](clean)
    assert det.mask.mean() < 0.005


REAL = {
    "FMD raw": ("denoise", "fmd_confocal_bpae_b_fov1", "raw", "HV110_P0500510000.png"),
    "FMD avg50": ("denoise", "fmd_confocal_bpae_b_fov1", "gt", "avg50.png"),
    "Hoechst": ("spots", "cellprofiler_speckles", "1-162hrhoe2.tif"),
}


@pytest.mark.parametrize("name", list(REAL))
def test_real_images_at_five_percent(shared_data, name):
    from napari_celldenoise.io import read_image

    path = shared_data(*REAL[name])
    clean = np.asarray(read_image(path).data)
    noisy = add_salt_pepper(clean, 0.05, rng=1)
    gat, floor = impulse.noise_model(clean.astype(np.float32))
    for detect in DETECTORS.values():
        out = impulse.replace_outliers(noisy, detect(noisy).mask)
        repaired, changed = score(clean, noisy, out, gat, floor)
        assert repaired >= 0.95 and changed <= 0.01, (repaired, changed)


def test_replace_outliers_uses_only_unflagged_neighbours():
    x = np.arange(25, dtype=np.float32).reshape(5, 5)
    mask = np.zeros((5, 5), bool)
    mask[2, 2] = mask[2, 3] = True
    out = impulse.replace_outliers(x, mask)
    nb = [x[1, 1], x[1, 2], x[1, 3], x[2, 1], x[3, 1], x[3, 2], x[3, 3]]
    assert out[2, 2] == pytest.approx(np.median(nb))
    assert np.array_equal(out[~mask], x[~mask])
    big = np.ones((9, 9), bool)
    big[0, 0] = False
    assert np.all(impulse.replace_outliers(x[:5, :5].repeat(2, 0).repeat(2, 1)[:9, :9], big) == 0.0)


@pytest.mark.slow
def test_lof_detectors_run_on_four_megapixels_in_seconds(cells):
    clean = np.tile(_camera_image(cells), (8, 8))  # 2048 x 2048
    noisy = add_salt_pepper(clean, 0.05, rng=5)
    for name in ("kde-lof", "gridlof"):
        t0 = time.perf_counter()
        DETECTORS[name](noisy)
        assert time.perf_counter() - t0 < 60, name  # ~5 s on an idle 2-core machine


def test_j_invariant_loss_ignores_the_masked_pixels_own_values():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 32)).astype(np.float32)
    identity = j_invariant_loss(lambda im: im, x)
    # the identity made J-invariant predicts a pixel from its neighbours: loss ~ var + var/..
    assert identity > 0.9
    donut = interpolate_neighbours(np.ones((8, 8), np.float32))
    np.testing.assert_allclose(donut, 1.0)


def test_autotune_picks_a_sensible_gaussian_sigma(cells):
    from napari_celldenoise.classical.apply import filter_block
    from napari_celldenoise.classical.registry import get_method

    noisy, clean = cells
    result = autotune(noisy, "gaussian")
    assert result.param == "sigma" and len(result.values) == len(result.losses) >= 8
    assert result.best == result.values[int(np.argmin(result.losses))]
    m = get_method("gaussian")
    errors = {
        s: float(np.mean((filter_block(noisy, m, {"sigma": s}) - clean) ** 2))
        for s in result.values
    }
    oracle = min(errors, key=errors.get)
    assert errors[result.best] <= 1.1 * errors[oracle]


def test_autotune_refuses_impulse_methods_and_stops():
    x = np.zeros((32, 32), np.float32)
    with pytest.raises(ParamError, match="not available"):
        autotune(x, "gridlof")
    events = list(autotune_job(x, "median", should_stop=lambda: True))
    assert isinstance(events[-1], Done) and events[-1].stopped


def test_random_neighbour_replacement_keeps_the_noise_level():
    from napari_celldenoise.classical.autotune import random_neighbours

    rng = np.random.default_rng(3)
    x = rng.normal(0, 2.0, (128, 128)).astype(np.float32)
    r = random_neighbours(x)
    assert np.std(r) == pytest.approx(2.0, rel=0.05)
    assert np.std(interpolate_neighbours(x)) < 0.5 * np.std(x)
    # every value comes from one of the 8 neighbours, never from the pixel itself
    pad = np.pad(x, 1, mode="reflect")
    nbrs = [
        pad[1 + dy : 129 + dy, 1 + dx : 129 + dx]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if dy or dx
    ]
    assert np.all(np.any(np.stack(nbrs) == r, axis=0))
    assert not np.any(r == x)
    result = autotune(x + 5.0, "gaussian", replacement="random", n_grid=4, refine=False)
    assert len(result.values) == 4
    with pytest.raises(ParamError, match="replacement"):
        autotune(x, "gaussian", replacement="median")
