"""Train and predict specs run in a spawned child (the dock's rule: TensorFlow never in the
caller's process), and the denoised file carries its predict spec."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from napari_celldenoise.deep.config import PredictConfig, TrainConfig
from napari_celldenoise.io import ImageData, read_image, write_ome_tiff
from napari_celldenoise.jobs import run, run_in_process
from napari_celldenoise.jobs.provenance import spec_of
from napari_celldenoise.jobs.run_spec import run_spec
from napari_celldenoise.jobs.specs import predict_spec, train_spec


@pytest.mark.slow
def test_train_then_predict_specs_in_a_child_process(tmp_path):
    rng = np.random.default_rng(0)
    data = (rng.normal(100, 10, (2, 64, 64))).astype(np.float32)
    noisy = str(tmp_path / "noisy.ome.tif")
    um = {"Y": "µm", "X": "µm"}
    write_ome_tiff(noisy, ImageData(data, "TYX", scale={"Y": 0.2, "X": 0.2}, units=um))
    model = str(tmp_path / "model")
    config = TrainConfig(method="n2v", epochs=1, steps=2, patch=32, batch=4, features=8)
    info = run(run_in_process(run_spec, train_spec(noisy, model, config)))
    assert info.epochs_done == 1
    out = str(tmp_path / "denoised.ome.tif")
    spec = predict_spec(model, noisy, out, PredictConfig(tile=64))
    assert run(run_in_process(run_spec, spec)) == out
    assert spec_of(out) == spec
    image = read_image(out)
    assert image.shape == (2, 64, 64) and image.scale["X"] == pytest.approx(0.2)
    assert "tensorflow" not in sys.modules
