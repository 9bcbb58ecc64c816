import numpy as np
import pytest

from napari_celldenoise.jobs import Done, Progress
from napari_celldenoise.spots.config import SpotsConfig
from napari_celldenoise.spots.match import match_points
from napari_celldenoise.spots.pipeline import COLUMNS, empty_table, find_spots, locate
from napari_celldenoise.spots.simulate import simulate_spots, simulate_zstack

from .conftest import truth_yx


def _f1(table, truth, tol=1.0):
    return match_points(
        table[["y", "x"]].to_numpy(),
        truth_yx(truth),
        tolerance=tol,
        found_frame=table["frame"].to_numpy(),
        true_frame=truth["frame"],
    )


@pytest.mark.parametrize("fit", ["mle", "lsq"])
def test_finds_every_simulated_spot(movie, fit):
    frames, truth = movie
    table = locate(frames, SpotsConfig(fit=fit))
    assert list(table.columns) == COLUMNS
    good = table[table["class"] == "good"]
    m = _f1(good, truth)
    assert m.recall >= 0.97 and m.precision >= 0.97, m.summary()
    assert m.rmse < 0.2
    assert table.attrs["pixel_size"] == 100.0
    # photons and widths are those simulated
    matched = good.iloc[m.found_index]
    ratio = matched["photons"].to_numpy() / truth["photons"][m.true_index]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.05)
    assert matched["sigma"].median() == pytest.approx(1.3, abs=0.05)


def test_events_progress_per_frame_and_cancel(movie):
    frames, _ = movie
    events = list(find_spots(frames[:3]))
    assert [e.done for e in events if isinstance(e, Progress)] == [1, 2, 3]
    assert isinstance(events[-1], Done) and not events[-1].stopped
    calls = iter([False, True])
    events = list(find_spots(frames, should_stop=lambda: next(calls, True)))
    done = events[-1]
    assert done.stopped and set(done.result["frame"]) <= {0}


def test_zstack_and_tzyx_axes():
    stack, truth = simulate_zstack(5, (48, 48), n_spots=4, seed=3)
    table = locate(stack, SpotsConfig(), axes="ZYX")
    assert set(table["z"]) <= set(range(5)) and table["frame"].eq(0).all()
    # every emitter is found in the plane nearest its focus
    for z, y, x in zip(truth["z"], truth["y"], truth["x"]):
        plane = table[table["z"] == round(z)]
        assert np.hypot(plane["y"] - y, plane["x"] - x).min() < 0.5
    t = locate(np.stack([stack, stack]), SpotsConfig())
    assert set(t["frame"]) == {0, 1} and t.attrs["axes"] == "TZYX"


def test_empty_frame_gives_a_typed_empty_table():
    table = locate(np.full((32, 32), 100, np.uint16))
    assert len(table) == 0 and list(table.columns) == COLUMNS
    assert table["x"].dtype == np.float64
    assert list(empty_table().columns) == COLUMNS


def test_bad_shapes():
    with pytest.raises(ValueError, match="smaller than"):
        locate(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="axes"):
        locate(np.zeros((2, 16, 16)), axes="XYZ")


def test_dense_spots_are_separated():
    frames, truth = simulate_spots(
        4, (64, 64), n_spots=28, min_distance=4.0, background=10.0, photons=(500, 3000), seed=4
    )
    scores = {}
    for subtract in (True, False):
        table = locate(frames, SpotsConfig(subtract_neighbours=subtract))
        scores[subtract] = _f1(table[table["class"] == "good"], truth).f1
    assert scores[True] > 0.97, scores
    assert scores[True] > scores[False] + 0.01, scores


def test_detection_on_a_denoised_copy(movie):
    frames, truth = movie
    smooth = frames.astype(float)
    table = locate(frames[:2], detect_on=smooth[:2])
    assert _f1(table, truth[truth["frame"] < 2]).recall > 0.95


def test_config_validation():
    with pytest.raises(ValueError, match="odd"):
        SpotsConfig(box=6)
    with pytest.raises(ValueError, match="parse"):
        SpotsConfig(threshold="2*std(")
    with pytest.raises(ValueError, match="filter"):
        SpotsConfig(filter="dog", threshold="std(Wave.F1)")
    cfg = SpotsConfig(em_gain=100, read_noise=50)
    assert cfg.camera.em_gain == 100 and cfg.border_px == 3


def test_pairs_4_px_apart_are_split():
    from napari_celldenoise.spots.simulate import Camera, expose, integrated_gaussian

    found = {True: 0, False: 0}
    for seed in range(6):
        rng = np.random.default_rng(seed)
        angle = rng.uniform(0, np.pi)
        ys = np.array([20.0, 20 + 4 * np.sin(angle), 40.0, 12.0, 44.0])
        xs = np.array([20.0, 20 + 4 * np.cos(angle), 40.0, 44.0, 12.0])
        expected = integrated_gaussian((56, 56), ys, xs, 1.3, np.full(5, 3000.0)) + 10
        frame = expose(expected, Camera(), rng)
        for subtract in (True, False):
            table = locate(frame, SpotsConfig(subtract_neighbours=subtract))
            good = table[table["class"] == "good"]
            m = match_points(good[["y", "x"]].to_numpy(), np.column_stack([ys, xs]), tolerance=0.5)
            found[subtract] += m.tp
    assert found[True] >= 27, found  # of 30
    assert found[False] < found[True], found
