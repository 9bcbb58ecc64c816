"""Fixtures of the deep-denoising tests: tiny noisy images and tiny configs (few steps)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.deep.config import TrainConfig
from napari_celldenoise.synthetic import fluorescence_image


@pytest.fixture(scope="session")
def small_noisy() -> np.ndarray:
    noisy, _ = fluorescence_image((96, 96), seed=3)
    return noisy


@pytest.fixture
def tiny_config():
    def make(method: str = "n2v", **kw) -> TrainConfig:
        base = dict(method=method, epochs=1, steps=2, patch=32, batch=2, features=8)
        if method == "structn2v":
            base["mask"] = [[1, 1, 1]]
        base.update(kw)
        return TrainConfig(**base)

    return make
