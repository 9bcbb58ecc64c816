"""Batch fixtures: tiny spot images in a folder tree, the recipe that one of them was processed
with in the docks' way (filter, then spots on the filtered image), and one LocalCluster of two
worker processes per module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_celldenoise.io import ImageData, write_ome_tiff
from napari_celldenoise.jobs import run
from napari_celldenoise.jobs.run_spec import run_spec
from napari_celldenoise.jobs.specs import classical_spec, spots_spec
from napari_celldenoise.spots.config import SpotsConfig
from napari_celldenoise.spots.simulate import simulate_spots

UM = {"Y": "µm", "X": "µm"}
SRC = Path(__file__).resolve().parents[2] / "src"


def write_frames(path: Path, seed: int, shape=(48, 48), frames: int = 2) -> Path:
    """Simulated camera frames of spots (100 nm pixels) as OME-TIFF."""
    data, _ = simulate_spots(frames, shape, n_spots=8, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_ome_tiff(path, ImageData(data, "TYX", scale={"Y": 0.1, "X": 0.1}, units=UM))
    return path


def make_tree(root: Path, n: int = 4) -> Path:
    """``root/a/cell_0.ome.tif``, ``root/b/cell_1.ome.tif``, ...: ``n`` images in two folders."""
    for i in range(n):
        write_frames(root / "ab"[i % 2] / f"cell_{i}.ome.tif", seed=10 + i)
    return root


def example_chain(folder: Path):
    """Filter an example image, then find spots on the filtered one, as the docks do; returns
    the two specs and the spot CSV (whose provenance is the recipe)."""
    raw = write_frames(folder / "example.ome.tif", seed=1)
    filtered, table = folder / "example.filtered.ome.tif", folder / "example.spots.csv"
    f = classical_spec(str(raw), str(filtered), "gaussian", {"sigma": 1.0})
    s = spots_spec(str(filtered), str(table), SpotsConfig(fit="lsq"))
    run(run_spec(f))
    run(run_spec(s))
    return f, s, table


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return example_chain(tmp_path_factory.mktemp("example"))


@pytest.fixture(scope="module")
def recipe(example):
    from napari_celldenoise.batch import recipe_from_output

    return recipe_from_output(example[2])


@pytest.fixture(scope="module")
def client():
    """Two worker processes (processes: a worker can be killed, TensorFlow never loads here),
    started as ``celldenoise batch --workers 2`` starts them."""
    pytest.importorskip("distributed")
    from napari_celldenoise.batch.run import ClusterOptions, make_client

    c, cluster = make_client(ClusterOptions(workers=2))
    yield c
    c.close()
    cluster.close()


def same_image(a: str | Path, b: str | Path) -> bool:
    import tifffile

    return np.array_equal(tifffile.imread(a), tifffile.imread(b))
