"""gs:// paths go through gcsfs against a real GCS server (fake-gcs-server) on localhost."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tifffile

from napari_celldenoise.io import ImageReadError, read_image, write_ome_tiff

pytestmark = pytest.mark.remote


@pytest.fixture(scope="module")
def gcs(tmp_path_factory, gcs_server):
    """A fake GCS server with bucket ``bucket`` holding ``ome.tif`` and ``broken.tif``."""
    root = tmp_path_factory.mktemp("gcs")
    bucket = root / "bucket"
    bucket.mkdir()
    data = np.arange(3 * 20 * 30, dtype=np.uint16).reshape(3, 20, 30)
    tifffile.imwrite(
        bucket / "ome.tif",
        data,
        ome=True,
        metadata={"axes": "ZYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2, "PhysicalSizeZ": 0.7},
    )
    (bucket / "broken.tif").write_bytes(b"II*\x00" + b"\x00" * 10)
    try:
        with gcs_server(root):
            yield data
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_gs_path_reads_like_a_local_file(gcs):
    image = read_image("gs://bucket/ome.tif")
    np.testing.assert_array_equal(image.data, gcs)
    assert image.axes == "ZYX" and image.scale == {"Z": 0.7, "Y": 0.2, "X": 0.2}
    assert image.path == "gs://bucket/ome.tif" and image.size_bytes > gcs.nbytes


def test_gs_path_reads_lazily(gcs):
    image = read_image("gs://bucket/ome.tif", lazy=True)
    assert image.lazy
    np.testing.assert_array_equal(np.asarray(image.data[1]), gcs[1])
    image.close()


def test_gs_broken_and_missing_files(gcs):
    with pytest.raises(ImageReadError, match="gs://bucket/broken.tif"):
        read_image("gs://bucket/broken.tif")
    with pytest.raises(ImageReadError, match="no such file"):
        read_image("gs://bucket/missing.tif")


def test_write_to_gs_then_read_back(gcs, tmp_path):
    image = read_image("gs://bucket/ome.tif")
    target = "gs://bucket/out/copy.ome.tif"
    write_ome_tiff(target, image.with_data(image.data * 2))
    back = read_image(target)
    np.testing.assert_array_equal(back.data, gcs * 2)
    assert back.scale == image.scale
