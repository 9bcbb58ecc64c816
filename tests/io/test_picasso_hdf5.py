"""Picasso's HDF5 localization files: our round trip, and Picasso itself reading ours."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_celldenoise.io.locs import read_localizations, write_localizations
from napari_celldenoise.io.picasso_hdf5 import (
    PicassoFileError,
    read_picasso_hdf5,
    write_picasso_hdf5,
    yaml_path,
)
from napari_celldenoise.io.spots_csv import SpotTableError
from napari_celldenoise.spots.simulate_locs import simulate_localizations
from napari_celldenoise.spots.table import COLUMNS

PEER_PYTHON = Path(__file__).resolve().parents[2] / "benchmarks" / ".peer-venv" / "bin" / "python"


def fitted_table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A table with every pipeline column, as a fit leaves it (some columns with NaN)."""
    rng = np.random.default_rng(seed)
    t = pd.DataFrame(
        {
            "frame": rng.integers(0, 50, n),
            "z": np.zeros(n, int),
            "y": rng.uniform(0, 63, n),
            "x": rng.uniform(0, 127, n),
            "photons": rng.uniform(200, 5000, n),
            "background": rng.uniform(5, 30, n),
            "sigma_x": rng.uniform(1.0, 1.6, n),
            "sigma_y": rng.uniform(1.0, 1.6, n),
            "crlb_x": rng.uniform(0.02, 0.2, n),
            "crlb_y": rng.uniform(0.02, 0.2, n),
            "crlb_photons": rng.uniform(10, 50, n),
            "crlb_background": rng.uniform(0.1, 1, n),
            "crlb_sigma": rng.uniform(0.01, 0.1, n),
            "bkgstd": rng.uniform(1, 5, n),
            "chi2": rng.uniform(0.5, 2, n),
            "loglik": np.full(n, np.nan),  # a least-squares fit has none
            "significance": rng.uniform(5, 50, n),
            "iterations": rng.integers(3, 20, n),
            "converged": np.ones(n, bool),
            "peak": rng.uniform(10, 100, n),
            "class": rng.choice(["good", "bad"], n).astype(object),
        }
    )
    t["sigma"] = np.sqrt(t["sigma_x"] * t["sigma_y"])
    t["ellipticity"] = np.maximum(t["sigma_x"], t["sigma_y"]) / np.minimum(
        t["sigma_x"], t["sigma_y"]
    )
    t["uncertainty"] = np.sqrt((t["crlb_x"] ** 2 + t["crlb_y"] ** 2) / 2)
    t = t.sort_values("frame", kind="stable").reset_index(drop=True)[COLUMNS]
    t.attrs["pixel_size"] = 107.0
    return t


def test_round_trip_keeps_every_column_with_values(tmp_path):
    table = fitted_table()
    path = write_picasso_hdf5(tmp_path / "locs.hdf5", table, width=128, height=64, n_frames=50)
    assert yaml_path(path).exists()
    back = read_picasso_hdf5(path)
    assert back.attrs["pixel_size"] == 107.0
    assert back["frame"].tolist() == table["frame"].tolist()
    assert back["class"].tolist() == table["class"].tolist()
    assert back["converged"].dtype == bool and back["iterations"].dtype.kind in "iu"
    for col in COLUMNS:
        if col in ("frame", "class", "converged", "loglik", "z"):
            continue
        # Picasso's own fields are float32: 1e-7 relative; ours keep float64
        np.testing.assert_allclose(back[col], table[col], rtol=2e-7, err_msg=col)
    assert "loglik" not in back  # NaN in every row: left out, not written as gaps
    info = back.attrs["picasso_info"][0]
    assert (info["Width"], info["Height"], info["Frames"], info["Pixelsize"]) == (
        128,
        64,
        50,
        107.0,
    )


def test_round_trip_of_a_simulated_table_through_the_generic_reader(tmp_path):
    table = simulate_localizations(field_nm=2000.0, n_frames=100, seed=1)
    path = write_localizations(tmp_path / "sim.hdf5", table)
    back = read_localizations(path)
    np.testing.assert_allclose(back["x"], table["x"], atol=1e-5)
    np.testing.assert_allclose(back["uncertainty"], table["uncertainty"], rtol=1e-6)
    np.testing.assert_array_equal(back["emitter"], table["emitter"])
    with pytest.raises(FileExistsError):
        write_localizations(path, table)
    write_localizations(path, table.iloc[:10], overwrite=True)
    assert len(read_localizations(path)) == 10
    assert read_localizations(tmp_path / "sim.hdf5", pixel_size=50.0).attrs["pixel_size"] == 50.0


def test_metadata_embedded_when_the_yaml_is_gone(tmp_path):
    path = write_picasso_hdf5(tmp_path / "a.hdf5", fitted_table(20))
    yaml_path(path).unlink()
    assert read_picasso_hdf5(path).attrs["pixel_size"] == 107.0


def test_broken_files_give_one_clear_error(tmp_path):
    bad = tmp_path / "not.hdf5"
    bad.write_text("hello")
    with pytest.raises(PicassoFileError, match="not.hdf5: not a readable HDF5"):
        read_picasso_hdf5(bad)
    import h5py

    other = tmp_path / "other.hdf5"
    with h5py.File(other, "w") as fh:
        fh.create_dataset("image", data=np.zeros(3))
    with pytest.raises(PicassoFileError, match="no 'locs' table"):
        read_picasso_hdf5(other)
    foreign = tmp_path / "x.txt"
    foreign.write_text("a,b\n1,2\n")
    with pytest.raises(SpotTableError, match="not a spot table"):
        read_localizations(foreign)
    with pytest.raises(PicassoFileError, match="ends in .hdf5"):
        write_picasso_hdf5(tmp_path / "x.csv", fitted_table(5))


def _peer(code: str, tmp_path: Path) -> dict:
    if not PEER_PYTHON.exists():
        pytest.skip("the Picasso peer venv (benchmarks/.peer-venv) is absent")
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [str(PEER_PYTHON), "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_picasso_reads_our_file(tmp_path):
    table = fitted_table()
    path = write_picasso_hdf5(tmp_path / "ours.hdf5", table, width=128, height=64, n_frames=50)
    code = f"""
import json
from picasso import io, lib
locs, info = io.load_locs({str(path)!r})
print(json.dumps({{"n": len(locs), "columns": list(locs.columns),
    "x": locs["x"].tolist(), "lpx": locs["lpx"].tolist(), "frame": locs["frame"].tolist(),
    "pixelsize": lib.get_from_metadata(info, "Pixelsize")}}))
"""
    got = _peer(code, tmp_path)
    assert got["n"] == len(table)  # Picasso's sanity checks dropped no row
    assert {"frame", "x", "y", "photons", "sx", "sy", "bg", "lpx", "lpy"} <= set(got["columns"])
    np.testing.assert_allclose(got["x"], table["x"], rtol=1e-6)
    np.testing.assert_allclose(got["lpx"], table["crlb_x"], rtol=1e-6)
    assert got["frame"] == table["frame"].tolist()
    assert got["pixelsize"] == 107.0


@pytest.mark.slow
def test_we_read_a_file_picasso_wrote(tmp_path):
    out = tmp_path / "theirs.hdf5"
    code = f"""
import json
import numpy as np, pandas as pd
from picasso import io
n = 40
rng = np.random.default_rng(0)
locs = pd.DataFrame({{"frame": np.arange(n, dtype=np.uint32),
    "x": rng.uniform(1, 30, n).astype("f4"),
    "y": rng.uniform(1, 30, n).astype("f4"), "photons": np.full(n, 1000, "f4"),
    "sx": np.full(n, 1.2, "f4"), "sy": np.full(n, 1.5, "f4"), "bg": np.full(n, 10, "f4"),
    "lpx": np.full(n, 0.1, "f4"), "lpy": np.full(n, 0.2, "f4"),
    "net_gradient": np.full(n, 3000, "f4")}})
info = [{{"Width": 32, "Height": 32, "Frames": n}}, {{"Pixelsize": 130, "Generated by": "test"}}]
io.save_locs({str(out)!r}, locs, info)
print(json.dumps({{"x": locs["x"].tolist()}}))
"""
    got = _peer(code, tmp_path)
    table = read_localizations(out)
    assert table.attrs["pixel_size"] == 130.0
    np.testing.assert_allclose(table["x"], got["x"])
    np.testing.assert_allclose(table["uncertainty"], np.sqrt((0.1**2 + 0.2**2) / 2), rtol=1e-6)
    np.testing.assert_allclose(table["ellipticity"], 1.25, rtol=1e-6)
    assert table["net_gradient"].iloc[0] == 3000.0
    assert (table["class"] == "good").all()


def test_napari_reader_opens_a_picasso_file_as_points(tmp_path):
    import h5py

    from napari_celldenoise.plugin.spots_reader import napari_get_reader

    table = fitted_table(30)
    path = write_picasso_hdf5(tmp_path / "locs.hdf5", table)
    reader = napari_get_reader(str(path))
    assert reader is not None
    [(data, meta, kind)] = reader(str(path))
    assert kind == "points" and data.shape == (30, 3)  # frame, y, x
    assert meta["scale"][-1] == pytest.approx(0.107)  # µm, from the file's Pixelsize
    np.testing.assert_allclose(data[:, 2], table["x"], rtol=1e-6)
    other = tmp_path / "image.h5"
    with h5py.File(other, "w") as fh:
        fh.create_dataset("data", data=np.zeros((4, 4)))
    assert napari_get_reader(str(other)) is None  # an HDF5 without localizations: not ours
    assert napari_get_reader(str(tmp_path / "missing.hdf5")) is None
