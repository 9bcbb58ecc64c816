from itertools import pairwise

import numpy as np
import pytest

from napari_celldenoise.spots.expr import (
    ExpressionError,
    evaluate,
    referenced_names,
    threshold_value,
)

IMAGES = {"Wave.F1": np.array([1.0, 2.0, 3.0, 4.0]), "I": np.array([10.0, 10.0, 12.0, 14.0])}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2*std(Wave.F1)", 2 * np.std([1, 2, 3, 4])),
        ("std(Wave.F1)", np.std([1, 2, 3, 4])),
        ("mean(I) + 3 * mad(I)", 11.5 + 3 * 1.0),
        ("-1.5 + 2**3", 6.5),
        ("max(I, 20)", 20.0),
        ("percentile(I, 50)", 11.0),
        ("noise(I)", 1.4826),
        ("7", 7.0),
    ],
)
def test_evaluates_whitelisted_expressions(text, expected):
    assert evaluate(text, IMAGES) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "I.__class__",
        "Wave.F1.__class__.__mro__",
        "(lambda: 1)()",
        "[1, 2]",
        "'a'",
        "open('x')",
        "std(I, ddof=1)",
        "I if 1 else 2",
        "2 < 3",
        "",
        "2*std(",
        "x" * 300,
    ],
)
def test_refuses_anything_else(text):
    with pytest.raises(ExpressionError):
        evaluate(text, IMAGES)


def test_unknown_image_and_non_finite():
    with pytest.raises(ExpressionError, match="unknown image 'Wave.F9'"):
        evaluate("std(Wave.F9)", IMAGES)
    with pytest.raises(ExpressionError, match="finite"):
        evaluate("1/0", IMAGES)
    with pytest.raises(ExpressionError, match="exponent"):
        evaluate("10**1000", IMAGES)


def test_per_pixel_threshold_and_numbers():
    out = evaluate("I - 1", IMAGES)
    np.testing.assert_allclose(out, IMAGES["I"] - 1)
    assert threshold_value(3, IMAGES) == 3.0
    assert referenced_names("2*std(Wave.F1) + mean(I)") == {"Wave.F1", "I"}


def test_localnoise_follows_the_local_noise_and_ignores_spots():
    from napari_celldenoise.spots.expr import evaluate

    rng = np.random.default_rng(0)
    image = rng.normal(0, 1.0, (128, 128))
    image[:, 64:] *= 3.0
    image[::9, ::9] += 50  # sparse spots
    noise = evaluate("localnoise(I)", {"I": image})
    assert noise.shape == image.shape
    assert np.median(noise[:, :40]) == pytest.approx(1.0, rel=0.1)
    assert np.median(noise[:, 88:]) == pytest.approx(3.0, rel=0.1)
    # a flat image's map is its global robust noise
    flat = rng.normal(0, 2.0, (64, 64))
    assert np.allclose(evaluate("localnoise(I)", {"I": flat}), 2.0, rtol=0.15)


@pytest.mark.parametrize("shape", [(64, 64), (40, 23), (8, 70)])
def test_localnoise_map_is_the_bilinear_interpolation_of_the_block_noise(shape):
    """The block noise grid brought to the pixels as scipy's linear map_coordinates does."""
    from scipy import ndimage as ndi

    from napari_celldenoise.spots.expr import _local_noise

    rng = np.random.default_rng(shape[1])
    image = rng.normal(0, 1, shape) * np.linspace(1, 3, shape[1])
    got = _local_noise(image, 8)
    ny, nx = max(shape[0] // 8, 1), max(shape[1] // 8, 1)
    ry = np.linspace(0, shape[0], ny + 1).astype(int)
    rx = np.linspace(0, shape[1], nx + 1).astype(int)
    grid = np.array(
        [[1.4826 * _mad(image[a:b, c:d]) for c, d in pairwise(rx)] for a, b in pairwise(ry)]
    )
    if min(ny, nx) >= 3:
        grid = ndi.median_filter(grid, size=3, mode="nearest")
    yy = np.interp(np.arange(shape[0]), (ry[:-1] + ry[1:] - 1) / 2, np.arange(ny))
    xx = np.interp(np.arange(shape[1]), (rx[:-1] + rx[1:] - 1) / 2, np.arange(nx))
    want = ndi.map_coordinates(grid, np.meshgrid(yy, xx, indexing="ij"), order=1, mode="nearest")
    np.testing.assert_allclose(got, want, rtol=1e-12)


def _mad(a):
    return np.median(np.abs(a - np.median(a)))
