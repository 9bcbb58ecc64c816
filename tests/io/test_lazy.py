"""Files above the size limit open lazily as dask arrays with bounded memory."""

from __future__ import annotations

import numpy as np
import tifffile

from napari_celldenoise.config import ReaderConfig, parse_size
from napari_celldenoise.io import read_image, write_ome_tiff


def _stack(path, n=12):
    data = np.arange(n * 64 * 64, dtype=np.uint16).reshape(n, 64, 64)
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TYX", "finterval": 0.5})
    return data


def test_file_above_the_limit_opens_as_dask_and_reads_planes_on_demand(tmp_path):
    data = _stack(tmp_path / "big.tif")
    image = read_image(tmp_path / "big.tif", config=ReaderConfig(lazy_limit=1000))
    assert image.lazy and hasattr(image.data, "dask")
    assert image.axes == "TYX" and image.scale["T"] == 0.5
    assert image.data.chunksize[0] == 1  # one plane per chunk: bounded memory
    np.testing.assert_array_equal(np.asarray(image.data[5]), data[5])
    np.testing.assert_array_equal(image.data.compute(), data)


def test_small_file_is_read_into_memory(tmp_path):
    _stack(tmp_path / "small.tif")
    image = read_image(tmp_path / "small.tif")  # default limit is 1 GB
    assert not image.lazy and isinstance(image.data, np.ndarray)


def test_lazy_image_writes_plane_by_plane(tmp_path):
    data = _stack(tmp_path / "big.tif")
    image = read_image(tmp_path / "big.tif", lazy=True)
    back = read_image(write_ome_tiff(tmp_path / "copy.ome.tif", image))
    np.testing.assert_array_equal(back.data, data)
    assert back.scale["T"] == 0.5


def test_limit_from_environment(monkeypatch):
    monkeypatch.setenv("CELLDENOISE_LAZY_LIMIT", "2MB")
    assert ReaderConfig().lazy_limit == 2_000_000
    assert parse_size("1 GiB") == 1 << 30 and parse_size("3e3") == 3000
