"""Every method in 2D and 3D, whole stacks plane by plane or as 3D blocks, and dtypes."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.classical import filters
from napari_celldenoise.classical.apply import (
    cast_output,
    denoise,
    denoise_job,
    noise_info,
    output_dtype,
    plan_blocks,
)
from napari_celldenoise.classical.registry import METHODS, get_method
from napari_celldenoise.jobs import Done, Progress


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


# the Bragg filter needs a crystal lattice, not cells: tested on lattices in tests/em
DENOISERS = [name for name, m in METHODS.items() if not m.impulse and name != "bragg"]
FAST = {"bm3d": {}, "nlm": {"patch_distance": 3}}


@pytest.mark.parametrize("name", DENOISERS)
def test_each_denoiser_reduces_the_error_in_2d_and_keeps_units(cells, name):
    noisy, clean = cells
    crop = (slice(64, 192), slice(64, 192))
    x, ref = noisy[crop], clean[crop]
    m = get_method(name)
    info = noise_info(x, "YX")
    params = m.resolve(FAST.get(name, {}), sigma=info.sigma)
    out = m(x, params, noise_sigma=info.sigma)
    assert out.shape == x.shape and out.dtype == np.float32
    assert abs(float(out.mean()) - float(x.mean())) < 2.0  # camera units, not 0-1
    assert rmse(out, ref) < 0.85 * rmse(x, ref), name
    np.testing.assert_array_equal(x, noisy[crop])  # input not mutated


@pytest.mark.parametrize("name", DENOISERS)
def test_each_denoiser_runs_as_true_3d(volume, name):
    noisy, clean = volume
    x, ref = noisy[:, :48, :48], clean[:, :48, :48]
    m = get_method(name)
    info = noise_info(x, "ZYX")
    params = m.resolve(FAST.get(name, {}), sigma=info.sigma)
    out = m(x, params, spacing=(0.5, 0.2, 0.2), noise_sigma=info.sigma)
    assert out.shape == x.shape
    assert rmse(out, ref) < rmse(x, ref), name


def test_gaussian_matches_scipy_and_3d_respects_spacing():
    from scipy import ndimage as ndi

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 50)).astype(np.float32)
    np.testing.assert_allclose(filters.gaussian(x, sigma=1.5), ndi.gaussian_filter(x, 1.5),
                               atol=2e-3)  # fmt: skip
    v = rng.normal(size=(12, 30, 30)).astype(np.float32)
    iso = filters.gaussian(v, sigma=1.0, spacing=(1, 1, 1))
    np.testing.assert_allclose(iso, ndi.gaussian_filter(v, 1.0), atol=2e-3)
    coarse_z = filters.gaussian(v, sigma=1.0, spacing=(4, 1, 1))  # z steps 4x larger
    np.testing.assert_allclose(coarse_z, ndi.gaussian_filter(v, (0.25, 1, 1)), atol=2e-3)


def test_median_is_exact_for_every_dtype_path():
    from scipy import ndimage as ndi

    rng = np.random.default_rng(1)
    for dtype in (np.uint8, np.uint16, np.float32):
        x = rng.integers(0, 200, (30, 33)).astype(dtype)
        for size in (3, 5, 7):
            ref = ndi.median_filter(x.astype(np.float32), size, mode="nearest")
            np.testing.assert_array_equal(filters.median(x, size=size), ref)


def test_anisotropic_diffusion_preserves_a_strong_edge_and_flattens_noise():
    rng = np.random.default_rng(2)
    step = np.zeros((64, 64), np.float32)
    step[:, 32:] = 100
    x = step + rng.normal(0, 2, step.shape).astype(np.float32)
    for conduction in ("exponential", "quadratic"):
        out = filters.anisotropic(x, iterations=30, kappa=10, step=0.2, conduction=conduction)
        assert np.std(out[:, :28]) < 0.5 * np.std(x[:, :28])
        assert out[:, 36:].mean() - out[:, :28].mean() > 95  # the edge survives


def test_plan_blocks_for_2d_3d_and_time_stacks():
    p = plan_blocks((3, 4, 10, 12), "TZYX")
    assert p.block_axes == "YX" and p.loop_axes == "TZ" and len(p.blocks) == 12
    p3 = plan_blocks((3, 4, 10, 12), "TZYX", three_d=True)
    assert p3.block_axes == "ZYX" and len(p3.blocks) == 3
    pt = plan_blocks((5, 10, 12), "TYX", three_d=True)
    assert pt.block_axes == "TYX" and pt.blocks == [()]
    pc = plan_blocks((2, 10, 12), "CYX", three_d=True)
    assert pc.block_axes == "YX" and len(pc.blocks) == 2


def test_denoise_stack_per_plane_equals_filtering_each_plane(volume):
    noisy, _ = volume
    stack = noisy[:4, :32, :32]
    out = denoise(stack, "TYX", "median", {"size": 3})
    for i in range(4):
        np.testing.assert_array_equal(out[i], filters.median(stack[i], size=3))
    out3 = denoise(stack, "TYX", "gaussian", {"sigma": 1.0}, three_d=True)
    np.testing.assert_allclose(out3, filters.gaussian(stack, sigma=1.0, spacing=(1, 1, 1)))


def test_denoise_job_reports_progress_and_stops_when_asked(volume):
    noisy, _ = volume
    events = list(denoise_job(noisy, "ZYX", "gaussian", {"sigma": 1.0}))
    progress = [e for e in events if isinstance(e, Progress)]
    assert [p.done for p in progress] == list(range(1, noisy.shape[0] + 1))
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    events = list(denoise_job(noisy, "ZYX", "gaussian", {"sigma": 1.0}, should_stop=stop))
    done = events[-1]
    assert isinstance(done, Done) and done.stopped
    assert len([e for e in events if isinstance(e, Progress)]) == 3


def test_vst_path_returns_intensity_units(cells):
    noisy, clean = cells
    out = denoise(noisy, "YX", "gaussian", {"sigma": 1.5}, vst=True)
    assert abs(float(out.mean()) - float(noisy.mean())) < 0.5
    assert rmse(out, clean) < 0.7 * rmse(noisy, clean)


def test_output_dtype_rules():
    assert output_dtype(np.uint16) == np.float32
    assert output_dtype(np.uint16, keep_dtype=True) == np.uint16
    assert output_dtype(np.float64) == np.float64
    assert output_dtype(np.float16) == np.float32
    assert cast_output(np.array([-3.2, 7.6, 70000.0]), np.dtype(np.uint16)).tolist() == [
        0, 8, 65535,
    ]  # fmt: skip
