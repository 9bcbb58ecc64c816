"""The unit-cell mean (thickness map) and keeping the input's thickness in an output."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.em.lattice import measure_lattice
from napari_celldenoise.em.metrics import dent_contrast
from napari_celldenoise.em.simulate import simulate_lattice
from napari_celldenoise.em.thickness import cell_kernel, cell_mean, keep_thickness

PERFECT = dict(dents=0, vacancy_rate=0.0, jitter=0.0, read_noise=0.0)


@pytest.mark.parametrize(
    ("kind", "spacing", "angle"), [("honeycomb", 12, 0.0), ("square", 9.5, 17.0)]
)
def test_the_cell_mean_of_a_perfect_crystal_is_flat(kind, spacing, angle):
    _, truth = simulate_lattice(
        (200, 200), kind=kind, spacing=spacing, angle=angle, dose=50, seed=1, **PERFECT
    )
    lattice = measure_lattice(truth.clean)
    flat = cell_mean(truth.clean, lattice.basis)[20:-20, 20:-20]  # the mirrored frame aside
    # every Bragg frequency is a zero of the cell's transform: the lattice is gone
    assert flat.std() < 0.002 * truth.clean.std(), (flat.std(), truth.clean.std())
    assert flat.mean() == pytest.approx(truth.clean.mean(), rel=0.02)


def test_keep_thickness_puts_the_inputs_dents_into_a_flat_output():
    noisy, truth = simulate_lattice(
        (256, 256), kind="honeycomb", spacing=12, dose=100, dents=3, seed=4, jitter=0.0
    )
    _, perfect = simulate_lattice(
        (256, 256), kind="honeycomb", spacing=12, dose=100, seed=4, **PERFECT
    )
    basis = measure_lattice(noisy).basis
    mask = truth.dent_mask
    c_true = dent_contrast(truth.clean, mask)
    flat = dent_contrast(perfect.clean, mask)  # no dent (the lattice's sampling aside)
    assert abs(flat / c_true - 1) > 0.15
    fixed = keep_thickness(perfect.clean, noisy, basis)
    assert fixed.dtype == np.float32 and fixed.shape == noisy.shape
    assert abs(dent_contrast(fixed, mask) / c_true - 1) < 0.05
    # the columns are the output's: away from the dents it is the perfect crystal
    outside = ~np.isclose(truth.dent_map, 1.0, atol=1e-3)
    calm = (~outside)[30:-30, 30:-30]
    diff = (fixed - perfect.clean)[30:-30, 30:-30][calm]
    assert np.abs(diff).mean() < 0.1 * perfect.clean.std()


def test_a_degenerate_cell_is_refused():
    with pytest.raises(ValueError, match="non-collinear"):
        cell_kernel(np.array([[3.0, 0.0], [6.0, 0.0]]))
    with pytest.raises(ValueError, match="larger than the image"):
        cell_mean(np.zeros((10, 10)), np.array([[30.0, 0.0], [0.0, 30.0]]))


def test_the_kernel_weighs_one_cell():
    basis = np.array([[0.0, 10.0], [8.66, -5.0]])
    kernel = cell_kernel(basis)
    assert kernel.sum() == pytest.approx(1.0)
    # the share of pixels it touches is about the cell's area
    area = abs(np.linalg.det(basis))
    assert (kernel > 0).sum() == pytest.approx(area, rel=0.35)
    assert kernel.max() * area == pytest.approx(1.0, rel=0.02)
