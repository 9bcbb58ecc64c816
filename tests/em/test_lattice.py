"""Lattice measurement against the simulator's truth, the real MoS2 image and pure noise."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_celldenoise.cli.main import main
from napari_celldenoise.em.lattice import (
    LatticeNotFound,
    analyse,
    calibration,
    format_report,
    measure_gain,
    measure_lattice,
    measure_motif,
)
from napari_celldenoise.em.simulate import noisify, simulate_lattice


def _orientation_error(measured: float, true: float, symmetry: float) -> float:
    d = (measured - true) % symmetry
    return min(d, symmetry - d)


@pytest.mark.parametrize(
    ("kind", "spacing", "angle", "gamma", "sym"),
    [
        ("square", 11.3, 23.0, 90.0, 90.0),
        ("hexagonal", 13.7, 8.0, 120.0, 60.0),
        ("honeycomb", 12.1, 41.0, 120.0, 60.0),
    ],
)
def test_basis_matches_the_truth(kind, spacing, angle, gamma, sym):
    img, _truth = simulate_lattice(
        (256, 256),
        kind=kind,
        spacing=spacing,
        angle=angle,
        dose=20,
        jitter=0.3,
        read_noise=0.5,
        dents=2,
        seed=7,
    )
    lat = measure_lattice(img, scale=0.02, unit="nm")
    assert lat.lengths_px == pytest.approx((spacing, spacing), rel=0.005)
    assert lat.angle == pytest.approx(gamma, abs=0.5)
    # the simulator turns clockwise on screen, orientation is counter-clockwise
    assert _orientation_error(lat.orientation, -angle, sym) < 0.5
    assert lat.lengths == pytest.approx((spacing * 0.02, spacing * 0.02), rel=0.005)
    assert lat.kind == ("square" if kind == "square" else "hexagonal")
    assert lat.confidence > 0.9
    if kind != "square":  # first spots of a hexagonal lattice: d = a sqrt(3) / 2
        assert lat.d_spacings_px == pytest.approx((spacing * np.sqrt(3) / 2,) * 2, rel=0.005)


def test_motif_gives_column_width_and_sublattice_intensities():
    img, truth = simulate_lattice(
        (256, 256), kind="honeycomb", spacing=16, dose=100, seed=3, vacancy_rate=0.0
    )
    lat = measure_lattice(img)
    motif = measure_motif(img, lat)
    assert len(motif.columns) == 2
    assert motif.relative[1] == pytest.approx(0.4, abs=0.05)
    assert motif.sigma_px == pytest.approx(truth.sigma, rel=0.15)
    # the second column sits at (1/3, 2/3) or its mirror (2/3, 1/3) in the reduced basis
    u, v = sorted(motif.columns[1, :2])
    assert (u, v) == pytest.approx((1 / 3, 2 / 3), abs=0.03)


def _gain_3_read_noise_2() -> np.ndarray:
    img, _ = simulate_lattice(
        (256, 256),
        kind="hexagonal",
        spacing=20,
        sigma=2.5,
        dose=200,
        gain=3.0,
        read_noise=2.0,
        seed=1,
    )
    return img


def test_gain_from_the_folded_cell():
    img = _gain_3_read_noise_2()
    noise = measure_gain(img, measure_lattice(img))
    assert noise["gain"] == pytest.approx(3.0, rel=0.1)
    assert noise["offset_variance"] == pytest.approx(4.0, rel=0.3)
    assert noise["zero_level"] == pytest.approx(-4.0 / 3.0, abs=0.5)  # -read variance / gain


def test_zero_level_is_the_dark_offset():
    # a detector that adds 1000 to every count: var = 3 * (mean - 1000) + 4
    img = _gain_3_read_noise_2() + 1000.0
    noise = measure_gain(img, measure_lattice(img))
    assert noise["gain"] == pytest.approx(3.0, rel=0.1)
    assert noise["offset_variance"] < -2000  # the offset outweighs the read noise
    assert noise["zero_level"] == pytest.approx(1000.0, rel=0.03)


def _recorded(offset: float, read_variance: float) -> np.ndarray:
    """A lattice recorded at gain 3 above a dark ``offset`` (then no read noise) or with
    ``read_variance`` (then no offset): ``noisify``'s reading of the offset variance."""
    _, truth = simulate_lattice((256, 256), kind="hexagonal", spacing=20, sigma=2.5, dose=200)
    rng = np.random.default_rng(3)
    offset_variance = -3.0 * offset if offset else read_variance
    return noisify(truth.clean + offset, rng, gain=3.0, offset_variance=offset_variance)


def test_report_explains_a_negative_offset_variance_as_the_dark_offset():
    out = analyse(_recorded(offset=5000.0, read_variance=0.0))
    noise = out["noise"]
    assert noise["offset_variance"] < 0
    assert noise["dark_offset"] == pytest.approx(5000.0, rel=0.03) == noise["zero_level"]
    text = format_report(out)
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("noise gain"))
    # the gain and the dark offset lead, then the offset variance with the reason for its sign
    assert lines[first + 1].startswith("dark offset") and "zero level" in lines[first + 1]
    assert f"{noise['dark_offset']:.4g}" in lines[first + 1]
    assert lines[first + 2].startswith("offset var.") and "negative" in lines[first + 2]
    assert "outweighs the read noise" in lines[first + 2]
    assert "read-noise variance" not in text


def test_report_calls_a_positive_offset_variance_the_read_noise():
    out = analyse(_recorded(offset=0.0, read_variance=9.0))
    noise = out["noise"]
    assert noise["offset_variance"] == pytest.approx(9.0, rel=0.3)
    assert noise["dark_offset"] == 0.0
    text = format_report(out)
    assert "dark offset   none" in text
    assert "the read-noise variance" in text and "outweighs" not in text
    # the JSON keys stay as they were (added to, not renamed)
    assert {"gain", "offset_variance", "zero_level", "sigma", "r2", "model", "source"} <= set(noise)


@pytest.mark.parametrize(("kind", "spacing"), [("hexagonal", 14.3), ("square", 11.7)])
def test_known_lattice_constant_calibrates_the_pixel_size(kind, spacing):
    # MoS2 (a = 0.316 nm) imaged at 0.316 / spacing nm per pixel, filed with a wrong 0.0127
    img, _ = simulate_lattice((256, 256), kind=kind, spacing=spacing, angle=17, dose=30, seed=2)
    true_pixel = 0.316 / spacing
    lat = measure_lattice(img, scale=0.0127, unit="nm")
    cal = calibration(lat, 0.316)
    assert cal["pixel_size"] == pytest.approx(true_pixel, rel=0.005)
    assert cal["pixel_size_from_area"] == pytest.approx(true_pixel, rel=0.005)
    assert cal["file_pixel_size"] == pytest.approx(0.0127)
    assert cal["relative_error"] == pytest.approx(0.0127 / true_pixel - 1, abs=0.005)
    report = format_report(analyse(img, scale=0.0127, unit="nm", known_a=0.316))
    assert f"{cal['pixel_size']:.6g} nm implied" in report
    with pytest.raises(ValueError, match="positive"):
        calibration(lat, 0.0)


@pytest.mark.parametrize("field", ["gaussian", "poisson", "amorphous"])
def test_no_lattice_in_noise_or_amorphous_fields(field):
    rng = np.random.default_rng(0)
    img = {
        "gaussian": lambda: rng.normal(100, 5, (256, 256)),
        "poisson": lambda: rng.poisson(3.0, (256, 256)).astype(float),
        "amorphous": lambda: ndi.gaussian_filter(rng.normal(0, 1, (256, 256)), 2.5),
    }[field]()
    with pytest.raises(LatticeNotFound, match="no lattice found"):
        measure_lattice(img)


@pytest.mark.slow
def test_real_mos2_lattice(shared_data):
    pytest.importorskip("rsciio", reason="the em extra (rosettasciio) is not installed")
    from napari_celldenoise.io import read_image

    image = read_image(shared_data("em", "example_Se_implanted_MoS2.dm3"))
    lat = measure_lattice(image.data, scale=(image.scale["Y"], image.scale["X"]), unit="nm")
    # MoS2: a = 0.316 nm (hexagonal); this image measures ~6 % shorter with the file's
    # 0.0127 nm pixels and ~3 degrees of scan distortion
    assert lat.kind == "hexagonal"
    assert np.mean(lat.lengths) == pytest.approx(0.316, rel=0.08)
    assert lat.angle == pytest.approx(120, abs=4)
    assert lat.confidence > 0.9
    motif = measure_motif(image.data, lat)
    assert len(motif.columns) == 2  # Mo and S2
    assert 0.25 < motif.relative[1] < 0.6


def test_cli_lattice_json_and_no_lattice_exit(tmp_path, capsys):
    import json

    import tifffile

    img, _ = simulate_lattice((128, 128), kind="square", spacing=10, dose=50, seed=0)
    good = tmp_path / "lattice.tif"
    tifffile.imwrite(good, img)
    assert main(["lattice", str(good), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["lattice"]["length_px"] == pytest.approx([10, 10], rel=0.01)
    assert out["lattice"]["kind"] == "square"
    assert "calibration" not in out
    # a = 0.5 (nm, say) over 10 px: 0.05 per pixel; the TIFF has no pixel size to compare
    assert main(["lattice", str(good), "--json", "--known-a", "0.5"]) == 0
    cal = json.loads(capsys.readouterr().out)["calibration"]
    assert cal["pixel_size"] == pytest.approx(0.05, rel=0.01)
    assert cal["relative_error"] is None and cal["file_pixel_size"] is None
    assert main(["lattice", str(good), "--known-a", "0.5"]) == 0
    assert "implied; the file has no pixel size" in capsys.readouterr().out
    assert main(["lattice", str(good), "--known-a", "-1"]) == 2
    assert "--known-a must be positive" in capsys.readouterr().err
    noise = tmp_path / "noise.tif"
    tifffile.imwrite(noise, np.random.default_rng(1).normal(0, 1, (128, 128)).astype(np.float32))
    assert main(["lattice", str(noise)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no lattice found" in err[0]


def test_periodic_scan_noise_finer_than_any_atomic_spacing_is_not_a_lattice_vector():
    # the gold nanoparticle image shows fringes of one family of planes and a 3.3 px (25 pm)
    # stripe pattern from the scan: the stripe was reported as a lattice vector of 25 pm
    yy, xx = np.mgrid[0:256, 0:256]
    fringes = 10 + np.cos(2 * np.pi * (yy * 0.8 + xx * 0.6) / 28) + np.sin(2 * np.pi * xx / 3.3)
    noisy = np.random.default_rng(0).poisson(fringes * 20) / 20.0
    assert min(measure_lattice(noisy).lengths) < 10  # in pixels the scale is unknown
    one = "only one Bragg peak.*periodic scan noise.*one family"
    with pytest.raises(LatticeNotFound, match=one):
        measure_lattice(noisy, scale=0.0075, unit="nm")
    # a real lattice under the same stripe is measured as without it
    img, _ = simulate_lattice((256, 256), kind="square", spacing=20, dose=50, seed=2)
    striped = img + 0.5 * img.std() * np.sin(2 * np.pi * xx / 3.3)
    found = measure_lattice(striped, scale=0.0075, unit="nm")
    assert sorted(found.lengths) == pytest.approx([20 * 0.0075] * 2, rel=0.03)
