"""The deep benchmark's estimate of how far avg50 lies from frame 0's clean image."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from deep import curve_mark_passed, drift_floor, plan_epochs, psnr_to_clean


def _stack(drift: float, sigma: float = 5.0, n: int = 50) -> tuple[np.ndarray, float]:
    rng = np.random.default_rng(0)
    clean = rng.uniform(20, 200, (128, 128))
    slope = drift * rng.normal(size=clean.shape)  # grey levels per frame, varying per pixel
    t = np.arange(n)[:, None, None]
    frames = clean + (t - (n - 1) / 2) * slope + rng.normal(0, sigma, (n, *clean.shape))
    expected = float(np.mean((((n - 1) / 2) * slope) ** 2))  # frame 0 against the mean
    return frames, expected


def test_a_steady_drift_is_recovered_from_the_frames_alone():
    frames, expected = _stack(drift=0.08)
    assert expected == pytest.approx(3.84, rel=0.05)
    assert drift_floor(frames) == pytest.approx(expected, rel=0.1)


def test_no_drift_gives_a_floor_near_zero():
    frames, _ = _stack(drift=0.0)
    assert drift_floor(frames) < 0.1  # noise variance 25: its part is taken out


def test_psnr_to_clean_takes_the_floor_out_of_the_squared_error():
    mse = 5.0
    psnr = 10 * np.log10(255.0**2 / mse)
    assert psnr_to_clean(psnr, 0.0) == pytest.approx(psnr)
    assert psnr_to_clean(psnr, 3.0) == pytest.approx(10 * np.log10(255.0**2 / 2.0))


def test_plan_epochs_fills_the_slice_for_a_cosine_schedule():
    # 4.8 epochs of 40 steps fit: 5 epochs of 38 steps (190 <= 192), not 4 of 40 (160)
    assert plan_epochs(4.8, 40) == (5, 38)
    assert plan_epochs(4.0, 40) == (4, 40)
    assert plan_epochs(0.3, 40) == (1, 12)
    for fit in (0.5, 1.7, 4.83, 11.2):
        epochs, steps = plan_epochs(fit, 40)
        assert fit * 40 - epochs <= epochs * steps <= fit * 40


def test_curve_marks_take_one_copy_per_third_of_the_budget():
    # a 1200 s budget in 3 points: copies at the first epoch ends past 400 s and 800 s
    ends = [90.0 * k for k in range(1, 14)]  # epochs of 90 machine-s
    taken: list[float] = []
    for t in ends:
        if curve_mark_passed(t, 1200.0, 3, len(taken)):
            taken.append(t)
    assert taken == [450.0, 810.0]
    assert not curve_mark_passed(1199.0, 1200.0, 3, 2)  # the run's end is the last point
    assert not curve_mark_passed(399.0, 1200.0, 3, 0)
    assert not curve_mark_passed(5000.0, 1200.0, 1, 0)  # one point: no copies
