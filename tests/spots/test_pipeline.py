import numpy as np
import pytest

from napari_celldenoise.jobs import Done, Progress
from napari_celldenoise.spots.config import SpotsConfig
from napari_celldenoise.spots.match import match_points
from napari_celldenoise.spots.pipeline import find_spots, locate
from napari_celldenoise.spots.simulate import simulate_spots, simulate_zstack
from napari_celldenoise.spots.table import COLUMNS, empty_table

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


def test_lsq_keeps_the_dense_spots_the_mle_finds():
    """LSQ takes its crowd decisions on maximum-likelihood fits and fits the cleaned boxes;
    with its own (biased) photons it under-subtracted neighbours and lost dim spots."""
    frames, truth = simulate_spots(
        8, (128, 128), n_spots=100, min_distance=4.0, background=(5.0, 40.0), seed=202
    )
    m = {}
    for fit in ("mle", "lsq"):
        table = locate(frames, SpotsConfig(fit=fit))
        m[fit] = _f1(table[table["class"] == "good"], truth)
    assert m["lsq"].recall >= m["mle"].recall - 0.001, (m["lsq"].summary(), m["mle"].summary())
    assert m["lsq"].f1 >= 0.99, m["lsq"].summary()
    assert m["lsq"].rmse < 0.2, m["lsq"].summary()


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


def _textured(seed: int = 5):
    """Isolated spots on a background with bright smooth blobs (Poisson noise rising with it),
    like the tubulins1 frame: a global noise threshold floods the blobs with noise maxima."""
    frames, truth = simulate_spots(
        2, (96, 96), n_spots=25, photons=(400.0, 3000.0), background=5.0, seed=seed
    )
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:96, :96]
    blobs = 150 * np.exp(-((yy - 30) ** 2 + (xx - 60) ** 2) / (2 * 18**2))
    blobs = blobs + 100 * np.exp(-((yy - 75) ** 2 + (xx - 20) ** 2) / (2 * 12**2))
    extra = 2.0 * rng.poisson(np.broadcast_to(blobs, frames.shape))  # 0.5 e-/ADU
    return (frames + extra).astype(frames.dtype), truth


@pytest.mark.parametrize("fit", ["mle", "lsq"])
def test_textured_background_more_candidates_lose_no_spot(fit):
    frames, truth = _textured()
    found = {}
    for thr in ("0.7*localnoise(Wave.F1)", "0.3*localnoise(Wave.F1)"):
        table = locate(frames, SpotsConfig(fit=fit, threshold=thr))
        found[thr] = _f1(table[table["class"] == "good"], truth)
    default = found["0.7*localnoise(Wave.F1)"]
    # the four missed are 400-photon spots on the 150-photon blob; a few noise maxima in the
    # blobs pass the rules with significance 5-7 (docs/spots.md says so)
    assert default.recall >= 0.9 and default.precision >= 0.85, default.summary()
    # hundreds of noise candidates in the blobs must not take real spots' places (they did
    # when the frame's PSF width was the median over every fit, noise fits included). Known
    # weakness, both fits: at 0.3 a noise candidate beside the 2200-photon spot on the blob
    # splits it into two fits 2.6 px apart, neither within 1 px (one of 50 spots)
    assert found["0.3*localnoise(Wave.F1)"].recall >= default.recall - 0.04


def test_lsq_significance_is_the_likelihood_maximised_over_photons_and_background():
    from napari_celldenoise.spots.fit import fit_boxes, read_variance, to_photoelectrons
    from napari_celldenoise.spots.significance import profile_loglik
    from napari_celldenoise.spots.simulate import Camera, simulate_boxes

    cam = Camera()
    boxes, _ = simulate_boxes(200, 7, photons=400.0, background=30.0, camera=cam, seed=2)
    e = to_photoelectrons(boxes, cam)
    rv = read_variance(cam)
    mle = fit_boxes(e, method="mle", read_var=rv)
    lsq = fit_boxes(e, method="lsq", read_var=rv)
    # at the MLE the profile changes nothing; at the LSQ estimate it climbs to just below it
    assert np.allclose(profile_loglik(e, mle.params, rv), mle.loglik, atol=1e-3)
    prof = profile_loglik(e, lsq.params, rv)
    assert np.all(prof >= lsq.loglik - 1e-6) and np.all(prof <= mle.loglik + 1e-3)
    assert np.mean(prof - lsq.loglik) > 0.1


@pytest.mark.parametrize("fit", ["mle", "lsq"])
def test_tubulins1_goal_with_the_default_threshold(shared_data, fit):
    """Issue 5's real-frame goal: F1 at 1 px >= 0.93 with the default threshold."""
    import tifffile

    from napari_celldenoise.io.spots_csv import read_spots_csv

    folder = shared_data("spots", "thunderstorm_tubulins1")
    frame = tifffile.imread(folder / "tubulins1_00020.tif")
    truth = read_spots_csv(folder / "tubulins1_00020.csv", pixel_size=150)
    camera = {"offset": 100.0, "sensitivity": 0.6, "read_noise": 3.5, "pixel_size": 150.0}
    table = locate(frame, SpotsConfig(fit=fit, **camera))
    good = table[table["class"] == "good"]
    m = match_points(good[["y", "x"]].to_numpy(), truth[["y", "x"]].to_numpy(), tolerance=1.0)
    assert m.f1 >= 0.93, m.summary()
