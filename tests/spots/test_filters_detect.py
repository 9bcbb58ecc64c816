import numpy as np
import pytest

from napari_celldenoise.spots.detect import detect_frame, local_maxima
from napari_celldenoise.spots.filters import apply_filter, bspline, bspline_kernel, wavelet_filter
from napari_celldenoise.spots.simulate import integrated_gaussian


def test_bspline_kernel_is_thunderstorms_default():
    k = bspline_kernel(3, 2.0)
    raw = np.array([1 / 6, 23 / 48, 2 / 3, 23 / 48, 1 / 6])
    np.testing.assert_allclose(k, raw / raw.sum())
    assert bspline(3, np.array([0.0]))[0] == pytest.approx(2 / 3)


def test_wavelet_planes_reconstruct_the_image():
    rng = np.random.default_rng(0)
    img = rng.normal(100, 5, (40, 50))
    f = wavelet_filter(img, level=2)
    np.testing.assert_allclose(f.images["Wave.F1"] + f.images["Wave.F2"] + f.images["Wave.V2"], img)
    assert f.F is f.images["Wave.F2"]
    assert img.dtype == np.float64 and f.F.shape == img.shape


@pytest.mark.parametrize("method", ["wavelet", "dog", "log"])
def test_filters_peak_on_a_spot(method):
    img = integrated_gaussian((31, 31), 15.3, 12.0, 1.3, 2000.0) + 10
    f = apply_filter(img, method)
    assert np.unravel_index(np.argmax(f.F), f.F.shape) == (15, 12)
    assert abs(np.median(f.F)) < 0.05 * f.F.max()  # flat background is filtered away


def test_unknown_filter_and_3d_refused():
    with pytest.raises(ValueError, match="unknown filter"):
        apply_filter(np.zeros((9, 9)), "median")
    with pytest.raises(ValueError, match="2D"):
        apply_filter(np.zeros((2, 9, 9)))


def test_local_maxima_threshold_border_distance_and_plateau():
    img = np.zeros((20, 20))
    img[5, 5] = 10
    img[5, 8] = 8
    img[1, 10] = 9  # too close to the edge
    img[12, 12] = img[12, 13] = 7  # plateau: one maximum
    img[17, 4] = 1  # below threshold
    found = local_maxima(img, 2.0, border=2)
    assert found.tolist() == [[5, 5], [5, 8], [12, 12]]
    assert local_maxima(img, 2.0, border=2, min_distance=4).tolist() == [[5, 5], [12, 12]]
    empty = local_maxima(np.zeros((2, 2)), 0.0)
    assert empty.shape == (0, 2) and empty.dtype == np.intp


def test_detect_frame_finds_spots_with_default_threshold(movie):
    frames, truth = movie
    coords, filtered = detect_frame(frames[0], threshold="0.5*noise(Wave.F1)", border=3)
    sel = truth[truth["frame"] == 0]
    d = np.hypot(
        *(coords[:, None, :] - np.column_stack([sel["y"], sel["x"]])[None]).transpose(2, 0, 1)
    )
    assert (d.min(0) < 1.0).all()  # every true spot has a candidate within 1 px
    assert filtered.shape == frames[0].shape


def test_detect_on_another_image():
    img = integrated_gaussian((32, 32), 10, 10, 1.3, 3000.0) + 100
    other = integrated_gaussian((32, 32), 20, 22, 1.3, 3000.0) + 100
    coords, _ = detect_frame(img, threshold=20.0, detect_on=other)
    assert coords.tolist() == [[20, 22]]


@pytest.mark.parametrize("shape", [(37, 50), (6, 9), (1, 7), (2, 3)])
@pytest.mark.parametrize("step", [1, 2, 4])
def test_a_trous_smoothing_is_the_dilated_kernels_mirror_correlation(shape, step):
    from scipy import ndimage as ndi

    from napari_celldenoise.spots.filters import _smooth, bspline_kernel

    image = np.random.default_rng(step).normal(100, 10, shape)
    base = bspline_kernel(3, 2.0)
    dilated = np.zeros((len(base) - 1) * step + 1)
    dilated[::step] = base
    want = ndi.correlate1d(image, dilated, axis=-1, mode="mirror")
    want = ndi.correlate1d(want, dilated, axis=-2, mode="mirror")
    np.testing.assert_allclose(_smooth(image, base, step), want, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("border", [0, 1, 3])
def test_maxima_candidates_are_the_pixels_not_below_their_3x3_maximum(border):
    """Before plateaus and close pairs are thinned (:func:`local_maxima`)."""
    from scipy import ndimage as ndi

    from napari_celldenoise.spots.detect import _maxima_above

    rng = np.random.default_rng(border)
    image = np.round(rng.normal(0, 1, (31, 40)), 1)  # rounded: plateaus of equal maxima
    for threshold in (0.5, rng.normal(0.5, 0.3, image.shape)):
        peaks = (image >= ndi.maximum_filter(image, size=3, mode="nearest")) & (image > threshold)
        if border:
            peaks[:border] = peaks[-border:] = False
            peaks[:, :border] = peaks[:, -border:] = False
        thr = np.broadcast_to(np.asarray(threshold, float), image.shape).copy()
        np.testing.assert_array_equal(_maxima_above(image, thr, border), np.argwhere(peaks))


def test_rendered_spots_are_the_fit_model_and_clipped_at_the_edges():
    from napari_celldenoise.spots.psf import model_boxes, render_spots

    image = np.zeros((40, 30))
    yx = np.array([[20.3, 14.6], [1.2, 28.5], [-3.0, 10.0]])  # inside, at an edge, off it
    render_spots(image, yx, np.array([1000.0, 500.0, 800.0]), np.array([1.3, 1.0, 2.0]), 1.3)
    own = np.zeros_like(image)
    render_spots(own, yx[:1], np.array([1000.0]), np.array([1.3]), np.array([1.3]))
    box = model_boxes(np.array([[14.6 - 10, 20.3 - 15, 1000.0, 0.0, 1.3, 1.3]]), 11)[0]
    np.testing.assert_allclose(own[15:26, 10:21], box, rtol=1e-12)
    assert 0 < image[:3, 25:].sum() < 500 and image[0, :14].sum() > 0
    assert image.sum() < 1000 + 500 + 800
