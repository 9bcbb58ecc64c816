"""A deep recipe on a LocalCluster: each worker process loads the trained network once, not
once per file, TensorFlow loads in the workers only, and the outputs equal the predict step
run on its own."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from napari_celldenoise.batch.recipe import recipe_from_specs
from napari_celldenoise.batch.run import run_batch
from napari_celldenoise.batch.task import models_loaded
from napari_celldenoise.deep.config import PredictConfig, TrainConfig
from napari_celldenoise.io import ImageData, write_ome_tiff
from napari_celldenoise.jobs import run, run_in_process
from napari_celldenoise.jobs.run_spec import run_spec
from napari_celldenoise.jobs.specs import predict_spec, train_spec

from .conftest import same_image

pytestmark = pytest.mark.slow


def _noisy(path, seed: int) -> str:
    data = np.random.default_rng(seed).normal(100, 10, (2, 48, 48)).astype(np.float32)
    um = {"Y": "µm", "X": "µm"}
    write_ome_tiff(path, ImageData(data, "TYX", scale={"Y": 0.2, "X": 0.2}, units=um))
    return str(path)


def test_a_network_is_loaded_once_per_worker_not_once_per_file(tmp_path):
    distributed = pytest.importorskip("distributed")
    if importlib.util.find_spec("tensorflow") is None:  # found, not imported here
        pytest.skip("the deep extra (TensorFlow) is not installed")
    import logging

    example = _noisy(tmp_path / "example.ome.tif", seed=0)
    model = str(tmp_path / "model")
    config = TrainConfig(method="n2v", epochs=1, steps=2, patch=32, batch=4, features=8)
    run(run_in_process(run_spec, train_spec(example, model, config)))  # TF in a child
    recipe = recipe_from_specs(
        [predict_spec(model, example, str(tmp_path / "d.ome.tif"), PredictConfig(tile=64))]
    )
    assert recipe.uses_tensorflow
    src = tmp_path / "in"
    src.mkdir()
    files = [_noisy(src / f"s{i}.ome.tif", seed=1 + i) for i in range(6)]
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        resources={"tf": 1},
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    client = distributed.Client(cluster)
    try:
        assert client.run(models_loaded) == dict.fromkeys(client.scheduler_info()["workers"], 0)
        result = run(run_batch(recipe, [str(src)], str(tmp_path / "out"), client=client))
        assert result.done == 6, [r.get("error") for r in result.records]
        used = {r["worker"] for r in result.records}
        loaded = client.run(models_loaded)
        # every worker that ran files holds exactly one network: loaded once, used for each
        assert {loaded[w] for w in used} == {1}
        assert sum(loaded.values()) == len(used) < 6
        assert all(client.run(lambda: "tensorflow" in sys.modules)[w] for w in used)
    finally:
        client.close()
        cluster.close()
    assert "tensorflow" not in sys.modules  # never in the process that submits
    ref = predict_spec(model, files[3], str(tmp_path / "ref.ome.tif"), PredictConfig(tile=64))
    run(run_in_process(run_spec, ref))
    assert same_image(tmp_path / "out" / "s3.denoised.ome.tif", ref.output)
