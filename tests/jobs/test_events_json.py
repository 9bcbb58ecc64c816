"""Events and job results cross machines as JSON and come back equal."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest

from napari_celldenoise.jobs import (
    Calibration,
    Device,
    Done,
    Epoch,
    Log,
    Preview,
    Progress,
    Timing,
    run,
    wire,
)
from napari_celldenoise.jobs.results import ExportResult, PackageCheck


def travel(value):
    """Through JSON text and back, as a remote worker's events are read."""
    text = wire.dumps(value)
    assert "\n" not in text and "NaN" not in text  # one strict JSON line per event
    json.loads(text)
    return wire.loads(text)


@pytest.mark.parametrize(
    "event",
    [
        Progress(3, 8, "epoch 1/2, batch 3/4"),
        Progress(0),
        Log("stopped in epoch 2", "warning"),
        Epoch(2, 0.51, 0.49, 4e-4, 1.25, 30.0),
        Epoch(1, 0.5),
        Epoch(4, 0.7, None, steps=2, total_steps=8),
        Epoch(3, 1.0, 0.9, metrics={"g_loss": 1.0, "d_loss": 0.25, "cycle": 0.5, "id": 0.1}),
        Device("GPU (NVIDIA H200)"),
        Timing(0.14, 100),
        Calibration("weights_best.h5", 0.974, -0.007),
        Calibration("weights_last.h5", 1.0, 0.0, "mu", "this image"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_each_event_round_trips(event):
    back = travel(event)
    assert type(back) is type(event) and back == event
    assert pickle.loads(pickle.dumps(event)) == event


def test_done_round_trips_stopped_and_its_result():
    back = travel(Done(None, stopped=True))
    assert isinstance(back, Done) and back.stopped and back.result is None
    back = travel(Done({"n": 3, "names": ("a", "b")}))
    assert not back.stopped and back.result == {"n": 3, "names": ("a", "b")}


def test_epoch_keeps_nan_losses_and_whether_it_is_partial():
    back = travel(Epoch(4, math.nan, math.inf, steps=2, total_steps=8))
    assert math.isnan(back.loss) and back.val_loss == math.inf
    assert back.partial and not Epoch(4, 1.0, steps=8, total_steps=8).partial
    assert not Epoch(4, 1.0).partial


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.int8, bool])
def test_a_preview_image_comes_back_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    image = (rng.normal(100, 30, (3, 32, 17))).astype(dtype)
    back = travel(Preview(image, "n2v preview", {"epoch": 3, "origin": (0, 64, 32)}))
    assert back.image.dtype == image.dtype and back.image.shape == image.shape
    np.testing.assert_array_equal(back.image, image)
    assert back.name == "n2v preview" and back.metadata == {"epoch": 3, "origin": (0, 64, 32)}


def test_a_big_endian_array_comes_back_with_its_values():
    image = np.arange(12, dtype=">f4").reshape(3, 4)
    back = wire.from_json(wire.to_json(image))
    np.testing.assert_array_equal(back, image)


def test_export_and_check_results_are_typed():
    result = ExportResult("/tmp/model.zip", "bioimage.io validation: passed\n  passed: inference")
    back = travel(Done(result))
    assert back.result == result and back.result.summary == "bioimage.io validation: passed"
    assert travel(Done(PackageCheck(False, "failed: shape"))).result == PackageCheck(
        False, "failed: shape"
    )


def test_a_model_folders_info_round_trips():
    from napari_celldenoise.deep.config import TrainConfig
    from napari_celldenoise.deep.model import ModelInfo

    config = TrainConfig(method="structn2v", mask=[[1, 1, 1]], epochs=3, steps=5, patch=32)
    info = ModelInfo(train=config, axes="TYX", mean=101.5, std=12.0, epochs_done=3,
                     best_val_loss=0.42, device="CPU (2 cores)")  # fmt: skip
    back = travel(Done(info, stopped=True))
    assert back.result == info and back.stopped


def test_a_prediction_and_its_stored_form_round_trip(tmp_path):
    from napari_celldenoise.deep.api import StoredResult

    prediction = np.linspace(0, 1, 96 * 80, dtype=np.float32).reshape(96, 80)
    np.testing.assert_array_equal(travel(Done(prediction)).result, prediction)
    stored = StoredResult(str(tmp_path / "denoised.npy"), (3,), (0, 1, 2))
    assert travel(Done(stored)).result == stored


def test_an_autotune_result_round_trips():
    from napari_celldenoise.classical.autotune import autotune_job
    from napari_celldenoise.synthetic import fluorescence_image

    noisy, _ = fluorescence_image((64, 64), seed=1)
    result = run(autotune_job(noisy, "gaussian", n_grid=3, refine=False))
    back = travel(Done(result)).result
    assert back == result and back.best == result.best


def test_a_spot_table_and_a_centroid_model_round_trip():
    from napari_celldenoise.spots.centroid import train_ridge, training_set_from_spots
    from napari_celldenoise.spots.pipeline import find_spots
    from napari_celldenoise.spots.simulate import simulate_spots

    frames, _ = simulate_spots(2, (64, 64), n_spots=12, seed=3)
    table = run(find_spots(frames, axes="TYX"))
    assert len(table) > 5
    back = travel(Done(table)).result
    assert list(back.columns) == list(table.columns)
    assert list(back.dtypes) == list(table.dtypes)
    assert back.attrs.keys() == table.attrs.keys()
    import pandas as pd

    pd.testing.assert_frame_equal(back, table)
    boxes, offsets = training_set_from_spots(frames, table, axes="TYX")
    model = train_ridge(boxes, offsets)
    model_back = travel(Done(model)).result
    assert model_back.kind == "ridge" and model_back.box == model.box
    np.testing.assert_array_equal(model_back.predict(boxes), model.predict(boxes))


def test_a_value_that_cannot_travel_is_refused_by_name():
    from sklearn.linear_model import Ridge

    with pytest.raises(TypeError, match="cannot send a Ridge as JSON"):
        wire.dumps(Done(Ridge()))
    with pytest.raises(ValueError, match="unknown type 'os.system'"):
        wire.loads('{"type": "os.system", "fields": {}}')
