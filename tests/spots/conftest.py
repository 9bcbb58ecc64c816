"""Fixtures for the spot tests: small simulated movies with known truth."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.spots.simulate import simulate_spots


@pytest.fixture(scope="session")
def movie() -> tuple[np.ndarray, np.ndarray]:
    """6 frames of 64x64 px, 12 isolated spots each, background 5-40 photons/px."""
    return simulate_spots(6, (64, 64), n_spots=12, background=(5.0, 40.0), seed=11)


def truth_yx(truth: np.ndarray) -> np.ndarray:
    return np.column_stack([truth["y"], truth["x"]])
