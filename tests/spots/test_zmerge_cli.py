"""``celldenoise spots`` on a volume merges a spot seen in consecutive slices, as the dock does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_celldenoise.cli import main
from napari_celldenoise.io.spots_csv import read_spots_csv, write_spots_csv
from napari_celldenoise.jobs import run
from napari_celldenoise.spots.config import SpotsConfig
from napari_celldenoise.spots.pipeline import find_spots
from napari_celldenoise.spots.simulate import simulate_spots
from napari_celldenoise.spots.zmerge import merged_in_z


def _volume(seed=4):
    """A ZYX volume whose 8 spots span slices 1-3 of 5."""
    frames, truth = simulate_spots(1, (64, 64), n_spots=8, background=10.0, seed=seed)
    rng = np.random.default_rng(seed)
    empty = [(100 + 2 * rng.poisson(10.0, (64, 64))).astype(np.uint16) for _ in range(2)]
    return np.stack([empty[0], frames[0], frames[0], frames[0], empty[1]]), len(truth)


@pytest.fixture
def volume_file(tmp_path):
    volume, n_true = _volume()
    path = tmp_path / "volume.ome.tif"
    tifffile.imwrite(path, volume, ome=True, metadata={"axes": "ZYX"})
    return str(path), volume, n_true


def test_cli_merges_a_volume_in_z_like_the_dock_and_says_so(volume_file, tmp_path, capsys):
    path, volume, n_true = volume_file
    out = tmp_path / "spots.csv"
    assert main(["spots", path, "-o", str(out)]) == 0
    err = capsys.readouterr().err
    merged = read_spots_csv(out)
    assert n_true - 1 <= len(merged) <= n_true + 1
    assert "merged in Z from" in err
    # what the Spots dock computes: find_spots on the layer, merged_in_z around it
    dock = run(merged_in_z(find_spots(volume, SpotsConfig(), axes="ZYX")))
    expected = read_spots_csv(write_spots_csv(tmp_path / "dock.csv", dock, pixel_size=100.0))
    assert list(merged.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(merged, expected)

    per_slice = tmp_path / "per_slice.csv"
    assert main(["spots", path, "-o", str(per_slice), "--no-merge-z"]) == 0
    assert "2D spots per slice" in capsys.readouterr().err
    assert len(read_spots_csv(per_slice)) >= 2.5 * n_true
