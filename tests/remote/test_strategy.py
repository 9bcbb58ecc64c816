"""Training under MirroredStrategy on two logical CPU devices, and with XLA
(``jit_compile=True``) on the CPU: what a TPU would reject (dynamic shapes, ops without an XLA
kernel, variables outside the strategy's scope) fails here too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.tf, pytest.mark.slow]


def _train(devices: str, method: str, tmp_path) -> list:
    from napari_celldenoise.deep import strategy
    from napari_celldenoise.deep.api import train
    from napari_celldenoise.deep.model import ModelFolder
    from napari_celldenoise.jobs import run

    from .helpers import noisy_image, tiny_config

    placement = strategy.pick(devices)
    config = tiny_config(epochs=2, steps=2, method=method)
    seen: list = []
    with strategy.using(placement):
        info = run(train(noisy_image().data, "TYX", config, str(tmp_path / "m")), seen.append)
    assert strategy.current() is None
    assert info.epochs_done == 2
    history = ModelFolder(tmp_path / "m").read_history()
    assert len(history) == 2 and all(np.isfinite(h["loss"]) for h in history)
    return [placement, seen]


def test_n2v_trains_mirrored_on_two_logical_cpus(tmp_path):
    if "tensorflow" in sys.modules and not os.environ.get("CELLDENOISE_FRESH_TF"):
        # logical CPU devices can only be made before TensorFlow first computes: run this
        # test again in a fresh pytest process when earlier tests of this one used TensorFlow
        here = f"{Path(__file__)}::test_n2v_trains_mirrored_on_two_logical_cpus"
        done = subprocess.run(
            [sys.executable, "-m", "pytest", here, "-q", "-p", "no:cacheprovider"],
            env={**os.environ, "CELLDENOISE_FRESH_TF": "1"},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        return
    placement, _ = _train("cpu:2", "n2v", tmp_path)
    assert placement.replicas == 2 and placement.strategy.num_replicas_in_sync == 2


@pytest.mark.parametrize("method", ["n2v", "pg-blindspot"])
def test_training_compiles_with_xla(method, tmp_path):
    placement, seen = _train("xla", method, tmp_path)
    assert placement.jit
    from napari_celldenoise.jobs import Epoch

    assert [e.epoch for e in seen if isinstance(e, Epoch)] == [1, 2]
