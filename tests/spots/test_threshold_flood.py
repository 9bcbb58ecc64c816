"""The wavelet default threshold on a smoothed image: the run says that the threshold, not the
sample, made its thousands of candidates, and names a threshold that fits the image."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_celldenoise.jobs import Done, Log
from napari_celldenoise.spots.config import SpotsConfig
from napari_celldenoise.spots.pipeline import find_spots
from napari_celldenoise.spots.simulate import simulate_spots
from napari_celldenoise.spots.stream import PartStore, load_streamed, stream_spots


@pytest.fixture(scope="module")
def raw() -> np.ndarray:
    """Two 512 x 512 frames with 10 spots each (ADU)."""
    return simulate_spots(2, (512, 512), n_spots=10, seed=3)[0]


@pytest.fixture(scope="module")
def smoothed(raw) -> np.ndarray:
    """The frames after a Gaussian filter (sigma 1 px), as a classical filter step leaves them."""
    return np.stack([ndimage.gaussian_filter(f.astype(np.float32), 1.0) for f in raw])


def _warnings(events) -> tuple[list[str], object]:
    events = list(events)
    done = events[-1]
    assert isinstance(done, Done)
    lines = [e.message for e in events if isinstance(e, Log) and e.level == "warning"]
    return lines, done.result


def _run(way, stack, config, tmp_path) -> tuple[list[str], object]:
    """The warnings and the table of a plain or a streamed run (2 worker processes)."""
    if way == "plain":
        return _warnings(find_spots(stack, config))
    store = PartStore(tmp_path / "parts")
    lines, result = _warnings(stream_spots(stack, config, store, workers=2, chunk=1))
    return lines, load_streamed(result, config)


@pytest.mark.parametrize("way", ["plain", "streamed"])
def test_default_on_smoothed_frames_warns_and_names_a_threshold(way, smoothed, tmp_path):
    lines, table = _run(way, smoothed, SpotsConfig(fit="lsq"), tmp_path)
    assert len(lines) == 1, lines
    assert "3*noise(F)" in lines[0] and "0.7*localnoise(Wave.F1)" in lines[0]
    assert len(table) < 1000 * 2  # the fits reject most candidates: the warning is about those


@pytest.mark.parametrize("way", ["plain", "streamed"])
def test_fitting_thresholds_do_not_warn(way, raw, smoothed, tmp_path):
    cases = [
        (smoothed, SpotsConfig(fit="lsq", threshold="3*noise(F)")),
        (raw, SpotsConfig(fit="lsq")),
    ]
    for i, (stack, config) in enumerate(cases):
        (tmp_path / str(i)).mkdir()
        lines, table = _run(way, stack, config, tmp_path / str(i))
        assert lines == []
        assert 18 <= (table["class"] == "good").sum() <= 22  # 10 simulated spots a frame
