"""Synthetic targets: the noisy image's lattice and motif, dents and vacancies, seed masks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_celldenoise.cli.main import main
from napari_celldenoise.em.lattice import fold, measure_lattice, measure_motif
from napari_celldenoise.em.simulate import simulate_lattice
from napari_celldenoise.em.targets import (
    _circular_match,
    equivalent_bases,
    measure_lattice_acf,
    seed_dent_masks,
    target_stream,
)


@pytest.fixture(scope="module")
def noisy():
    img, _ = simulate_lattice(
        (192, 192), kind="honeycomb", spacing=12, angle=10, dose=30, dents=2, seed=1
    )
    return img, measure_lattice(img)


def _reference(mirror: bool = False):
    ref, _ = simulate_lattice(
        (280, 320), kind="honeycomb", spacing=66, angle=-23, dose=np.inf, vacancy_rate=0, seed=2
    )
    return np.fliplr(ref) if mirror else ref


def _check_like(target, noisy_img, lat):
    got = measure_lattice(target.image)
    assert got.lengths_px == pytest.approx(lat.lengths_px, rel=0.005)
    assert abs(got.orientation - lat.orientation) < 0.5
    motif = measure_motif(target.image, got)
    assert len(motif.columns) == 2 and motif.relative[1] == pytest.approx(0.4, abs=0.08)
    score, _ = _circular_match(
        fold(noisy_img, lat.basis, bins=24), fold(target.image, lat.basis, bins=24)
    )
    assert score > 0.9  # the same unit cell, sublattices the same way round
    assert target.image.mean() == pytest.approx(noisy_img.mean(), rel=0.15)


@pytest.mark.parametrize("mirror", [False, True])
def test_targets_from_a_reference_at_another_zoom_and_rotation(noisy, mirror):
    img, lat = noisy
    model, stream = target_stream(img, reference=_reference(mirror), lattice=lat, seed=3)
    assert model.source == "reference" and model.info["zoom"] == pytest.approx(5.5, rel=0.01)
    targets = [next(stream) for _ in range(4)]
    for t in targets[:1]:
        _check_like(t, img, lat)
    sites = img.size / abs(np.linalg.det(lat.basis)) * 2
    vac = np.mean([len(t.vacancies) for t in targets])
    assert 0.002 * sites < vac < 0.03 * sites  # about 1 %
    assert [t.dents for t in targets] == ["procedural"] * 3 + ["seed:mask"]
    assert targets[0].thickness.min() < 0.96  # procedural dents are there
    assert not np.allclose(targets[0].image, targets[1].image)


def test_targets_from_the_measured_motif(noisy):
    img, lat = noisy
    model, stream = target_stream(img, lattice=lat, seed=0, seed_masks=False)
    assert model.source == "motif"
    _check_like(next(stream), img, lat)


def test_autocorrelation_measures_a_reference_with_three_cells():
    ref, _ = simulate_lattice(
        (200, 230), kind="hexagonal", spacing=70, angle=5, dose=np.inf, vacancy_rate=0, seed=4
    )
    lat = measure_lattice_acf(ref)
    # the columns cut by the frame pull the peaks by up to ~1 px: enough to sample one cell
    assert lat.lengths_px == pytest.approx((70, 70), rel=0.02)
    assert lat.angle == pytest.approx(120, abs=1.5)


def test_equivalent_bases_follow_the_symmetry():
    hexa = np.array([[0.0, 10.0], [8.660254, -5.0]])
    square = np.array([[0.0, 10.0], [10.0, 0.0]])
    assert len(equivalent_bases(hexa)) == 12 and len(equivalent_bases(square)) == 8
    for b in equivalent_bases(hexa):  # every one spans the same lattice
        m = np.linalg.solve(hexa.T, b.T)
        np.testing.assert_allclose(m, np.round(m), atol=1e-9)
        assert abs(np.linalg.det(np.round(m))) == pytest.approx(1)


def test_seed_dent_masks_follow_the_recipe():
    yy, xx = np.mgrid[0:128, 0:128]
    img = 10 + 5 * np.exp(-((yy - 64) ** 2 + (xx - 40) ** 2) / (2 * 12**2))
    masks = seed_dent_masks(img, window=5, blur=2.0)
    assert set(masks) == {"mask", "min", "mean"}
    m = masks["mask"]
    assert 0 <= m.min() and m.max() <= 255 and m[64, 40] > 200
    assert m[64, 120] == 0 and m[5, 5] == 0  # below 128 before the blur: zero
    assert masks["min"].sum() < m.sum()  # the minimum erodes the mask


def test_cli_em_targets_writes_targets_with_the_pixel_size(tmp_path, noisy, capsys):
    from napari_celldenoise.io import read_image

    img, _ = noisy
    src = tmp_path / "noisy.ome.tif"
    tifffile.imwrite(
        src,
        img,
        ome=True,
        metadata={
            "axes": "YX",
            "PhysicalSizeX": 0.0127,
            "PhysicalSizeXUnit": "nm",
            "PhysicalSizeY": 0.0127,
            "PhysicalSizeYUnit": "nm",
        },
    )
    out = tmp_path / "targets"
    assert main(["em-targets", str(src), "-o", str(out), "--count", "2", "--size", "96"]) == 0
    files = sorted(out.glob("target_*.ome.tif"))
    assert len(files) == 2
    t = read_image(files[0])
    assert t.shape == (96, 96) and t.scale["X"] == pytest.approx(0.0127)
    manifest = json.loads((out / "targets.json").read_text())
    assert manifest["source"] == "motif" and len(manifest["targets"]) == 2
    assert main(["em-targets", str(src), "-o", str(out), "--count", "2"]) == 2
    assert "already holds targets" in capsys.readouterr().err
    noise = tmp_path / "noise.tif"
    tifffile.imwrite(noise, np.random.default_rng(0).normal(size=(96, 96)).astype(np.float32))
    assert main(["em-targets", str(noise), "-o", str(tmp_path / "n")]) == 2
    assert "no lattice found" in capsys.readouterr().err
    assert not (tmp_path / "n").exists()
