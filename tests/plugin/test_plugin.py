"""npe2 contributions without a viewer: manifest, reader claims, writer hooks, samples."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import tifffile

from napari_celldenoise.io import read_image
from napari_celldenoise.plugin import samples
from napari_celldenoise.plugin.reader import EMPTY, napari_get_reader
from napari_celldenoise.plugin.writer import write_multiple, write_single_image


def test_manifest_validates():
    proc = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-celldenoise"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_reader_claims_images_only(tmp_path):
    (tmp_path / "t.csv").write_text("x,y\n1,2\n")
    assert napari_get_reader(str(tmp_path / "t.csv")) is None
    assert napari_get_reader(str(tmp_path / "folder")) is None
    assert napari_get_reader(123) is None  # a foreign object never raises
    assert napari_get_reader(str(tmp_path / "a.tif")) is not None
    assert napari_get_reader("gs://bucket/a.ome.tiff") is not None


def test_reader_returns_layers_and_sentinel_for_broken_files(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.ones((3, 8, 8), np.uint8), photometric="minisblack")
    layers = napari_get_reader(str(tmp_path / "a.tif"))(str(tmp_path / "a.tif"))
    assert layers[0][0].shape == (3, 8, 8) and layers[0][2] == "image"
    (tmp_path / "b.tif").write_bytes(b"")
    assert napari_get_reader(str(tmp_path / "b.tif"))(str(tmp_path / "b.tif")) == EMPTY


def test_writer_hooks(tmp_path):
    a = np.random.default_rng(0).random((2, 8, 8)).astype(np.float32)
    meta = {
        "name": "a",
        "scale": [0.5, 0.1, 0.1],
        "units": ["micrometer"] * 3,
        "axis_labels": ["Z", "Y", "X"],
        "metadata": {},
    }
    (path,) = write_single_image(str(tmp_path / "one"), a, meta)
    assert path.endswith(".ome.tif")
    back = read_image(path)
    np.testing.assert_array_equal(back.data, a)
    assert back.scale == {"Z": 0.5, "Y": 0.1, "X": 0.1} and back.units["X"] == "µm"
    (path,) = write_multiple(
        str(tmp_path / "two.ome.tif"),
        [(a, {**meta, "name": "dna"}, "image"), (a * 2, {**meta, "name": "actin"}, "image")],
    )
    back = read_image(path)
    assert back.axes == "ZCYX" and back.channel_names == ["dna", "actin"]
    np.testing.assert_array_equal(back.data[:, 1], a * 2)


def test_samples_have_known_truth():
    clean, noisy = samples.noisy_cells()
    assert clean[0].shape == noisy[0].shape == (512, 512)
    # the noise is zero-mean around the clean image
    assert abs(float((noisy[0] - clean[0]).mean())) < 0.5
    movie, truth = samples.spot_movie()
    frames, points = movie[0], truth[0]
    assert frames.ndim == 3 and points.shape[1] == 3
    t, y, x = points[0].astype(float)
    assert frames[int(t), round(y), round(x)] > np.median(frames[int(t)]) + 10
    (vol,) = samples.volume()
    assert vol[0].ndim == 3 and vol[1]["scale"][0] == 0.5
