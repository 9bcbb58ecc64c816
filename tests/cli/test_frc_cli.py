"""``celldenoise frc``, ``render`` of a Picasso file and ``spots -o OUT.hdf5``."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_celldenoise.cli.main import main
from napari_celldenoise.io.locs import read_localizations, write_localizations
from napari_celldenoise.io.picasso_hdf5 import yaml_path
from napari_celldenoise.spots.simulate_locs import expected_frc_resolution, simulate_localizations


@pytest.fixture(scope="module")
def table():
    return simulate_localizations(sigma_nm=12.0, field_nm=5000.0, n_frames=1000, seed=4)


@pytest.mark.parametrize("suffix", [".csv", ".hdf5"])
def test_frc_reports_the_resolution_and_the_precision(tmp_path, capsys, table, suffix):
    path = write_localizations(tmp_path / f"locs{suffix}", table)
    curve = tmp_path / "curve.csv"
    assert main(["frc", str(path), "--repeats", "2", "--curve", str(curve)]) == 0
    out = capsys.readouterr().out
    frc = float(re.search(r"FRC resolution ([\d.]+) nm", out).group(1))
    pixel = float(re.search(r"([\d.]+) nm pixels", out).group(1))
    assert pixel == pytest.approx(6.0)
    assert frc == pytest.approx(expected_frc_resolution(table["emitter"], 12.0, pixel), rel=0.1)
    assert float(re.search(r"NeNA ([\d.]+) nm", out).group(1)) == pytest.approx(12.0, rel=0.1)
    assert "median uncertainty 12.0 nm" in out
    written = pd.read_csv(curve)
    assert list(written.columns) == ["frequency [1/nm]", "frc", "smoothed"]
    assert written["frequency [1/nm]"].iloc[-1] == pytest.approx(0.5 / pixel, rel=0.01)
    assert main(["frc", str(path), "--curve", str(curve)]) == 2  # exists, no --overwrite


def test_frc_bad_input_exits_2_with_one_line(tmp_path, capsys, table):
    path = write_localizations(tmp_path / "few.csv", table.iloc[:30])
    cases = {
        "at least 100 localizations": [str(path)],
        "cannot read": [str(tmp_path / "missing.hdf5")],
        "--pixel must be a positive": [str(path), "--pixel", "0"],
        "--repeats must be": [str(path), "--repeats", "0"],
    }
    for message, args in cases.items():
        assert main(["frc", *args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_render_reads_a_picasso_file(tmp_path, capsys, table):
    path = write_localizations(tmp_path / "locs.hdf5", table.iloc[:2000])
    out = tmp_path / "sr.ome.tif"
    assert main(["render", str(path), "-o", str(out), "--magnification", "10"]) == 0
    assert "2000 localizations" in capsys.readouterr().out
    with tifffile.TiffFile(out) as tif:
        assert 'PhysicalSizeX="10.0"' in tif.ome_metadata  # 100 nm camera pixels / 10
        assert tif.asarray().sum() == pytest.approx(2000, rel=1e-3)
    # the camera pixel given on the command line wins over the file's
    assert main(["render", str(path), "-o", str(out), "--overwrite", "--camera-pixel", "50"]) == 0
    with tifffile.TiffFile(out) as tif:
        assert 'PhysicalSizeX="5.0"' in tif.ome_metadata


def test_spots_writes_a_picasso_file(tmp_path, capsys):
    img, out = tmp_path / "sim.ome.tif", tmp_path / "found.hdf5"
    args = ["simulate-spots", "-o", str(img), "--frames", "3", "--size", "48", "64"]
    assert main([*args, "--spots", "8", "--pixel-size", "120"]) == 0
    assert main(["spots", str(img), "-o", str(out), "-q"]) == 0
    assert yaml_path(out).exists()
    found = read_localizations(out)
    assert found.attrs["pixel_size"] == pytest.approx(120.0)
    assert len(found) > 10 and set(found["frame"]) == {0, 1, 2}
    info = found.attrs["picasso_info"]
    assert (info[0]["Width"], info[0]["Height"], info[0]["Frames"]) == (64, 48, 3)
    assert "spec" in info[1]  # the job that made it, as a CSV's provenance file holds it
    assert np.isfinite(found["uncertainty"]).all()
