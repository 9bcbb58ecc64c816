"""Synthetic images with known clean versions for the classical-denoising tests."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.synthetic import fluorescence_image, fluorescence_volume


@pytest.fixture(scope="session")
def cells() -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) 256x256 float32 Poisson-Gaussian image in camera units (offset 100)."""
    return fluorescence_image((256, 256), photons=40.0, seed=5)


@pytest.fixture(scope="session")
def volume() -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) 16x64x64 float32 volume."""
    return fluorescence_volume((16, 64, 64), seed=6)
