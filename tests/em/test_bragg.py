"""The Bragg (Fourier) filter: registry entry, effect on a simulated lattice, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_celldenoise.classical.bragg import bragg, periodic_smooth
from napari_celldenoise.classical.metrics import psnr_affine
from napari_celldenoise.classical.registry import get_method, method_names
from napari_celldenoise.cli.main import main
from napari_celldenoise.em.lattice import LatticeNotFound
from napari_celldenoise.em.simulate import simulate_lattice


def test_periodic_smooth_splits_exactly_into_periodic_and_smooth():
    yy, xx = np.mgrid[0:64, 0:80]
    periodic = np.cos(2 * np.pi * 3 * yy / 64) + np.sin(2 * np.pi * 5 * xx / 80)
    ramp = periodic + 0.05 * xx
    p, s = periodic_smooth(ramp)
    np.testing.assert_allclose(p + s, ramp, atol=1e-9)
    # the periodic part has no jump between opposite edges (unlike the ramp)
    assert np.abs(p[:, 0] - p[:, -1]).mean() < 0.2 * np.abs(ramp[:, 0] - ramp[:, -1]).mean()
    assert np.abs(np.diff(s, 2, axis=1)).max() < 0.01  # smooth


def test_bragg_denoises_a_lattice_and_fills_its_vacancies():
    img, truth = simulate_lattice(
        (192, 192), kind="hexagonal", spacing=12, dose=20, seed=3, vacancy_rate=0.03
    )
    method = get_method("bragg")
    assert "bragg" in method_names() and method.main == "radius"
    out = method(img, method.resolve({}))
    assert out.dtype == np.float32 and out.shape == img.shape
    assert psnr_affine(out, truth.clean) > psnr_affine(img, truth.clean) + 4
    cols = out[tuple(np.round(truth.positions).astype(int).T)].mean()
    vac = out[tuple(np.round(truth.vacancies).astype(int).T)].mean()
    assert len(truth.vacancies) > 0 and vac > 0.8 * cols  # the periodic average fills them
    wider = method(img, method.resolve({"radius": 0.3}))
    vac_wide = wider[tuple(np.round(truth.vacancies).astype(int).T)].mean()
    assert vac_wide < vac  # a wider mask keeps more of the defects


def test_bragg_filters_each_plane_of_a_stack_and_refuses_noise():
    a, _ = simulate_lattice((96, 96), spacing=10, dose=30, seed=1)
    b, _ = simulate_lattice((96, 96), spacing=10, dose=30, seed=2)
    out = bragg(np.stack([a, b]), radius=0.1)
    np.testing.assert_allclose(out[1], bragg(b, radius=0.1), atol=1e-4)
    with pytest.raises(LatticeNotFound):
        bragg(np.random.default_rng(0).normal(size=(96, 96)))


def test_cli_filter_bragg(tmp_path, capsys):
    img, _ = simulate_lattice((128, 128), spacing=10, dose=30, seed=4)
    src = tmp_path / "lattice.tif"
    tifffile.imwrite(src, img)
    out = tmp_path / "out.tif"
    args = ["filter", str(src), "--method", "bragg", "--param", "lowpass=0.3", "-o", str(out)]
    assert main([*args, "-q"]) == 0
    assert tifffile.imread(out).shape == (128, 128)
    noise = tmp_path / "noise.tif"
    tifffile.imwrite(noise, np.random.default_rng(1).normal(size=(128, 128)).astype(np.float32))
    bad = tmp_path / "bad.tif"
    assert main(["filter", str(noise), "--method", "bragg", "-o", str(bad), "-q"]) == 2
    assert "no lattice found" in capsys.readouterr().err and not bad.exists()


def test_the_lattice_is_measured_again_on_the_filtered_image():
    # a filtered image is nearly noise-free: the basis must come from the strong peaks, not
    # from the window's sidelobes or the smooth background
    img, _ = simulate_lattice(
        (256, 256), kind="honeycomb", spacing=13, angle=20, dose=20, dents=2, seed=6
    )
    from napari_celldenoise.em.lattice import measure_lattice

    for lowpass in (0.0, 0.5):
        lat = measure_lattice(bragg(img, lowpass=lowpass))
        assert lat.lengths_px == pytest.approx((13, 13), rel=0.005)
        assert lat.angle == pytest.approx(120, abs=0.5)
