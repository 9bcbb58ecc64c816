"""The camera offset check: a dark-level estimate from the image, and when to warn."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.spots.camera import check_offset, estimate_offset
from napari_celldenoise.spots.config import SpotsConfig
from napari_celldenoise.spots.simulate import Camera, simulate_spots


def _frame(offset: float, background: float = 20.0, seed: int = 3) -> np.ndarray:
    camera = Camera(offset=offset)
    frames, _ = simulate_spots(
        1, (128, 128), n_spots=25, background=background, camera=camera, seed=seed
    )
    return frames[0]


@pytest.mark.parametrize("offset", [100.0, 1000.0])
def test_estimate_sits_just_below_the_dark_background(offset):
    frame = _frame(offset)
    # 20 photons per pixel at 2 ADU/e-: the background's dark level is offset + 40 ADU
    estimate = estimate_offset(frame)
    assert offset <= estimate <= offset + 40
    assert estimate <= np.percentile(frame, 1)  # never turns the darkest pixels negative


def test_spots_do_not_move_the_estimate():
    quiet = estimate_offset(_frame(500.0, seed=1))
    frames, _ = simulate_spots(
        1,
        (128, 128),
        n_spots=60,
        background=20.0,
        camera=Camera(offset=500.0),
        photons=(5000.0, 20000.0),
        seed=1,
    )
    assert abs(estimate_offset(frames[0]) - quiet) <= 10


def test_check_says_far_below_above_or_ok():
    frame = _frame(1000.0)
    far = check_offset(frame, 100.0)
    assert far.verdict == "far_below" and "far below" in far.message
    assert str(int(far.estimate)) in far.message
    above = check_offset(frame, 1200.0)
    assert above.verdict == "above" and "above the image's darkest 1 %" in above.message
    ok = check_offset(frame, far.estimate)
    assert ok.verdict == "ok" and ok.message == ""
    assert check_offset(_frame(100.0), SpotsConfig().offset).verdict == "ok"


def test_a_stack_is_refused():
    with pytest.raises(ValueError, match="2D frame"):
        estimate_offset(np.zeros((2, 8, 8)))


def test_real_smfish_image_gets_an_offset_near_its_dark_level(shared_data):
    import tifffile

    image = tifffile.imread(shared_data("spots", "airlocalize_smfish", "2DsmFISH_humCells.tif"))
    check = check_offset(image, SpotsConfig().offset)
    assert check.verdict == "far_below"
    assert image.min() <= check.estimate <= np.percentile(image, 1)
    assert check_offset(image, check.estimate).verdict == "ok"
