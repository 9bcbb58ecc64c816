"""The noise estimates of a stack take a bounded multiple of the planes they sample, and give
the values of the float64 computation they replace."""

import tracemalloc

import numpy as np
import pytest

from napari_celldenoise.classical.apply import noise_info
from napari_celldenoise.classical.noise import _MAD, diagonal_detail, estimate_noise, estimate_sigma


def _stack(planes=10, size=256, seed=7):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    clean = 50 + 400 * np.exp(-((yy - size / 2) ** 2 + (xx - size / 2.5) ** 2) / (2 * 60.0**2))
    photons = rng.poisson(np.broadcast_to(clean, (planes, size, size)) / 2.0) * 2
    return (photons + rng.normal(0, 3, photons.shape)).round().astype(np.uint16)


def _sigma_float64(data):
    """The estimate as it was computed before: 8 planes' details pooled in float64."""
    flat = data.reshape(-1, *data.shape[-2:])
    idx = np.unique(np.linspace(0, len(flat) - 1, min(8, len(flat))).round().astype(int))
    d = np.concatenate([diagonal_detail(flat[i]).ravel() for i in idx]).astype(np.float64)
    dev = np.abs(d - np.median(d))
    mad = float(np.median(dev))
    if mad >= 8 or not np.all(np.mod(d[:1000] * 2, 1) == 0):
        return _MAD * mad
    return float(np.sqrt(np.pi / 2) * np.mean(dev[dev <= 6 * _MAD * mad + 2.0]))


def test_estimates_equal_the_float64_ones():
    ints = _stack()
    floats = ints.astype(np.float32) * 0.37 + 0.1
    assert estimate_sigma(ints) == _sigma_float64(ints)  # details in halves: exact
    assert estimate_sigma(floats) == pytest.approx(_sigma_float64(floats), rel=1e-6)
    # estimate_noise against the values of its float64 version (before the memory cut)
    fit = estimate_noise(ints)
    assert (fit.a, fit.b) == pytest.approx((2.001786201893635, 7.422805347284355), rel=1e-6)
    fit = estimate_noise(floats)
    assert (fit.a, fit.b) == pytest.approx((0.7425578575965204, 0.8930955397447415), rel=1e-6)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_noise_info_memory_is_a_small_multiple_of_the_sampled_planes(dtype):
    stack = _stack(planes=16, size=512).astype(dtype)
    sampled = 8 * 512 * 512 * 4  # the 8 float32 planes it estimates on
    peaks = {}
    for vst in (False, True):
        tracemalloc.start()
        info = noise_info(stack, "ZYX", vst=vst)
        peaks[vst] = tracemalloc.get_traced_memory()[1] / sampled
        tracemalloc.stop()
        assert info.sigma > 0
    # before: 9.0x and 13.0x here (310 and 445 MB for 8 planes of 1024 x 1024); now 2.2x and 8.4x
    assert peaks[False] < 3.0, peaks
    assert peaks[True] < 10.0, peaks
