"""The self-supervised output calibration (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_celldenoise.deep.calibration import calibrate, fit_affine, hide_points


def test_hidden_pixels_take_a_neighbours_value_and_the_mask_is_randomised():
    rng = np.random.default_rng(0)
    x = np.arange(2 * 32 * 32, dtype=np.float32).reshape(2, 32, 32)  # every value unique
    out, (s, y, xx) = hide_points(x, rng, spacing=8, radius=2)
    assert len(s) == 2 * 4 * 4  # one pixel per 8x8 cell
    src = np.array([np.argwhere(x == v)[0] for v in out[s, y, xx]])
    assert (src[:, 0] == s).all()
    dist = np.abs(src[:, 1:] - np.stack([y, xx], 1))
    assert dist.max() <= 2 and dist.max(axis=1).min() >= 1  # a neighbour, never itself
    changed = out != x
    assert changed.sum() == len(s)

    mask = np.array([[1, 1, 1]])
    out, (s, y, xx) = hide_points(x, rng, spacing=8, radius=2, mask=mask)
    inside = (xx > 0) & (xx < 31)
    left = out[s[inside], y[inside], xx[inside] - 1]
    assert ((left >= -2) & (left < 2)).all()  # the correlated neighbours are hidden too


def test_calibration_recovers_the_line_of_a_blind_predictor():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:64, :64]
    clean = np.stack([10 + 5 * np.sin(xx / 6 + k) * np.cos(yy / 9) for k in range(6)])
    noisy = (clean + rng.normal(0, 1.0, clean.shape)).astype(np.float32)
    ring = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.float32) / 4

    def blind(samples):  # a J-invariant estimate with the wrong gain and offset
        return np.stack([0.5 * ndimage.convolve(s, ring, mode="reflect") - 3 for s in samples])

    alpha, beta = calibrate(blind, noisy, rounds=6, seed=2)
    # the line a supervised fit against the clean image would give (about 1.95 x + 6.1)
    oracle = fit_affine(clean, blind(noisy))
    assert alpha == pytest.approx(oracle[0], abs=0.05)
    assert beta == pytest.approx(oracle[1], abs=0.5)
    fixed = alpha * blind(noisy) + beta
    assert np.mean((fixed - clean) ** 2) < 0.2 * np.mean((blind(noisy) - clean) ** 2)


def test_degenerate_fits_keep_the_identity():
    assert fit_affine(np.arange(50.0), np.full(50, 3.0)) == (1.0, 0.0)
    assert fit_affine(np.arange(50.0), -np.arange(50.0)) == (1.0, 0.0)  # negative slope
    assert fit_affine(np.arange(5.0), np.arange(5.0)) == (1.0, 0.0)  # too few pixels


def test_every_validation_patch_has_hidden_pixels_in_2d_and_small_3d():
    from napari_celldenoise.deep.config import TrainConfig
    from napari_celldenoise.deep.n2v import _validation_targets

    rng = np.random.default_rng(0)
    for shape, config in (
        ((3, 64, 64), TrainConfig(patch=64)),
        ((3, 8, 16, 16), TrainConfig(patch=16, dims=3)),  # n2v's own hiding leaves these empty
        ((3, 64, 64), TrainConfig(method="structn2v", patch=64, mask=[[1, 1, 1]])),
    ):
        clean = rng.normal(size=shape).astype(np.float32)
        x, y = _validation_targets(clean, config, rng)
        assert x.shape == (*shape, 1) and y.shape == (*shape, 2)
        flags = y[..., 1].reshape(shape[0], -1)
        assert (flags.sum(axis=1) >= 1).all()
        hidden = y[..., 1] == 1
        np.testing.assert_array_equal(y[..., 0][hidden], clean[hidden])  # targets: true values
        assert (x[..., 0][hidden] != clean[hidden]).all()  # inputs: hidden


def test_the_log_says_when_no_line_was_fitted():
    from napari_celldenoise.deep.calibration import describe

    assert describe((0.974, -0.007)) == "0.974 x -0.007"
    assert "no reliable line" in describe((1.0, 0.0), "mu")


def test_hidings_are_spaced_per_axis_and_fit_small_3d_patches():
    from napari_celldenoise.deep.n2v import hiding_spacing

    # a 9-wide X mask on 8 x 16 x 16 patches: the calibration asked for 10 on every axis and
    # raised after training had finished
    mask = np.ones((1, 1, 9), np.uint8)
    assert hiding_spacing(mask, (8, 16, 16)) == (8, 8, 10)
    assert hiding_spacing(None, (64, 64)) == (8, 8)
    x = np.random.default_rng(0).normal(size=(2, 8, 16, 16)).astype(np.float32)
    hidden, where = hide_points(x, np.random.default_rng(1), spacing=(8, 8, 10), mask=mask)
    assert len(where[0]) == 2 * 1 * 2 * 1  # one per cell: 1 x 2 x 1 cells per sample
    assert (hidden[where] != x[where]).all()
