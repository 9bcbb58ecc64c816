"""EM readers: DM3, EMD (the real development files), MRC written here; napari and CLI paths."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from napari_celldenoise.cli.main import main
from napari_celldenoise.io import ImageReadError, read_image
from napari_celldenoise.plugin.reader import napari_get_reader

mrcfile = pytest.importorskip("mrcfile", reason="the em extra (mrcfile) is not installed")

REAL = [
    # file, shape, dtype, pixel size in nm as the data README states it
    ("example_Se_implanted_MoS2.dm3", (1024, 1024), np.uint32, 0.0127),
    ("example_Au_nanoparticle.emd", (2048, 2048), np.uint16, 0.0075),
]


@pytest.mark.parametrize(("name", "shape", "dtype", "nm"), REAL)
def test_real_em_files_open_with_their_pixel_size(shared_data, name, shape, dtype, nm):
    pytest.importorskip("rsciio", reason="the em extra (rosettasciio) is not installed")
    image = read_image(shared_data("em", name))
    assert image.axes == "YX"
    assert image.shape == shape
    assert image.dtype == dtype
    assert image.units == {"Y": "nm", "X": "nm"}
    assert image.scale["X"] == pytest.approx(nm, rel=0.01)
    assert image.scale["Y"] == pytest.approx(nm, rel=0.01)
    assert image.format == name.rsplit(".", 1)[1]


def test_napari_reader_gives_a_layer_with_nm_scale(shared_data):
    pytest.importorskip("rsciio", reason="the em extra (rosettasciio) is not installed")
    path = str(shared_data("em", "example_Se_implanted_MoS2.dm3"))
    reader = napari_get_reader(path)
    assert reader is not None
    [(data, kwargs, kind)] = reader(path)
    assert kind == "image" and data.shape == (1024, 1024)
    assert kwargs["units"] == ["nm", "nm"]
    assert kwargs["scale"][0] == pytest.approx(0.0127, rel=0.01)


def test_napari_reader_declines_other_files(shared_data):
    assert napari_get_reader(str(shared_data("em", "MoS2_hex_prismatic.xyz"))) is None
    assert napari_get_reader("notes.txt") is None


def _write_mrc(path, data, voxel_angstrom):
    with mrcfile.new(str(path)) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = voxel_angstrom


def test_mrc_volume_opens_as_zyx_with_voxel_size_in_nm(tmp_path):
    data = np.arange(3 * 8 * 10, dtype=np.float32).reshape(3, 8, 10)
    path = tmp_path / "tomo.mrc"
    _write_mrc(path, data, (2.5, 1.5, 1.5))  # x, y, z in Å
    image = read_image(path)
    assert image.axes == "ZYX"
    np.testing.assert_array_equal(image.data, data)
    assert image.scale == pytest.approx({"Z": 0.15, "Y": 0.15, "X": 0.25})
    assert image.units == {"Z": "nm", "Y": "nm", "X": "nm"}


def test_mrc_image_opens_lazily_and_keeps_pixels(tmp_path):
    data = np.random.default_rng(0).integers(0, 1000, (2, 6, 7)).astype(np.int16)
    path = tmp_path / "stack.mrcs"
    _write_mrc(path, data, 3.0)
    image = read_image(path, lazy=True)
    assert image.lazy
    np.testing.assert_array_equal(np.asarray(image.data), data)
    image.close()


def test_mrc_without_voxel_size_is_in_pixels(tmp_path):
    path = tmp_path / "plain.mrc"
    _write_mrc(path, np.ones((4, 5), np.float32), 0.0)
    image = read_image(path)
    assert image.axes == "YX" and image.units == {"Y": "pixel", "X": "pixel"}


def test_broken_em_files_give_one_clear_error(tmp_path):
    bad = tmp_path / "broken.dm3"
    bad.write_bytes(b"not a digital micrograph file at all" * 10)
    pytest.importorskip("rsciio", reason="the em extra (rosettasciio) is not installed")
    with pytest.raises(ImageReadError, match="broken.dm3: cannot read this .dm3 file"):
        read_image(bad)
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.mrc")


def test_missing_extra_names_what_to_install(tmp_path, monkeypatch, capsys):
    path = tmp_path / "vol.mrc"
    _write_mrc(path, np.zeros((4, 4), np.float32), 1.0)
    monkeypatch.setitem(sys.modules, "mrcfile", None)  # as if it were not installed
    with pytest.raises(ImageReadError, match=r"needs mrcfile: pip install .napari-celldenoise.em."):
        read_image(path)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "napari-celldenoise[em]" in err[0]


def test_cli_info_reads_an_mrc_file(tmp_path, capsys):
    path = tmp_path / "vol.mrc"
    _write_mrc(path, np.zeros((2, 4, 4), np.float32), 10.0)
    assert main(["info", str(path), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"ZYX"' in out and '"nm"' in out
