"""``celldenoise simulate-smlm`` and ``celldenoise spots --drift/--merge/--render`` end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_celldenoise.cli.main import main
from napari_celldenoise.io import read_image
from napari_celldenoise.io.spots_csv import read_spots_csv
from napari_celldenoise.jobs.specs import InputSpec, SmlmSteps, SpotsSpec, load_spec, save_spec
from napari_celldenoise.spots.smlm_simulate import true_molecule_count


def _simulate(tmp_path, *extra):
    movie, truth, drift = tmp_path / "movie.ome.tif", tmp_path / "truth.csv", tmp_path / "d.csv"
    status = main(
        [
            "simulate-smlm",
            "-o",
            str(movie),
            "--truth",
            str(truth),
            "--drift-truth",
            str(drift),
            "--pixel-size",
            "110",
            *extra,
        ]
    )
    assert status == 0
    return movie, truth, drift


def test_simulate_smlm_writes_movie_truth_and_drift(tmp_path):
    movie, truth, drift = _simulate(
        tmp_path, "--frames", "50", "--size", "32", "40", "--p-on", "0.05", "--seed", "3"
    )
    image = read_image(movie)
    assert image.shape == (50, 32, 40) and image.axes == "TYX"
    assert image.scale["X"] == pytest.approx(0.11) and image.units["X"] == "µm"
    table = read_spots_csv(truth)
    assert table.attrs["pixel_size"] == pytest.approx(110.0)
    assert {"emitter", "burst", "x_sample", "y_sample"} <= set(table.columns)
    d = pd.read_csv(drift)
    assert list(d.columns) == ["frame", "x [nm]", "y [nm]"] and len(d) == 50
    # the truth's camera position is the sample position plus the drift of its frame
    shift = d.set_index("frame").loc[table["frame"] + 1]
    assert np.allclose((table["x"] - table["x_sample"]) * 110.0, shift["x [nm]"], atol=0.05)
    # a bright pixel where an emitter is on
    row = table.iloc[int(np.argmax(table["photons"]))]
    frame = np.asarray(image.data[int(row["frame"])], float)
    assert frame[round(row["y"]), round(row["x"])] > np.median(frame) + 50


def test_bad_merge_option_is_one_line(tmp_path, capsys):
    movie, _, _ = _simulate(tmp_path, "--frames", "5", "--size", "24", "24")
    out = tmp_path / "locs.csv"
    assert main(["spots", str(movie), "-o", str(out), "--merge", "fifty"]) == 2
    assert "--merge: expected RADIUS_NM:GAP" in capsys.readouterr().err
    assert main(["spots", str(movie), "-o", str(out), "--merge", "50:-1"]) == 2
    assert not out.exists()


def test_spec_with_smlm_steps_round_trips(tmp_path):
    spec = SpotsSpec(
        input=InputSpec(path="movie.tif"),
        smlm=SmlmSteps(drift="rcc", merge_radius_nm=40.0, merge_gap=2),
        output="locs.csv",
    )
    path = tmp_path / "spec.yaml"
    save_spec(spec, path)
    assert load_spec(path) == spec


@pytest.mark.slow
def test_movie_to_drift_corrected_merged_render(tmp_path, capsys):
    movie, truth_csv, drift_csv = _simulate(
        tmp_path,
        *("--frames", "400", "--size", "40", "40", "--structure", "rings"),
        *("--p-on", "0.01", "--p-off", "0.4", "--p-bleach", "0.1", "--seed", "2"),
    )
    capsys.readouterr()
    locs, render = tmp_path / "locs.csv", tmp_path / "sr.ome.tif"
    args = ["spots", str(movie), "-o", str(locs), "--drift", "rcc", "--merge", "50:1"]
    assert main([*args, "--render", str(render), "--magnification", "8"]) == 0
    err = capsys.readouterr().err
    table = read_spots_csv(locs)
    assert {"x_raw", "y_raw", "n_blinks"} <= set(table.columns)
    # the drift subtracted, per molecule's first frame, against the truth (offset removed)
    d = pd.read_csv(drift_csv).set_index("frame")
    applied_x = (table["x_raw"] - table["x"]) * 110.0
    applied_y = (table["y_raw"] - table["y"]) * 110.0
    true = d.loc[table["frame"] + 1]
    ex = applied_x.to_numpy() - true["x [nm]"].to_numpy()
    ey = applied_y.to_numpy() - true["y [nm]"].to_numpy()
    assert np.sqrt(np.mean((ex - ex.mean()) ** 2 + (ey - ey.mean()) ** 2)) < 8.0
    assert np.hypot(true["x [nm]"], true["y [nm]"]).max() > 150  # a real drift was corrected
    # counts before and after merging are reported, and the count is near the truth's
    assert "localizations ->" in err and "molecules" in err
    truth = read_spots_csv(truth_csv)
    expected = true_molecule_count(truth, max_gap=1)
    good = (table["class"] == "good").sum()
    assert good == pytest.approx(expected, rel=0.15)  # dim blinks are missed by the detector
    # the render: nm pixels of 110 / 8
    image = read_image(render)
    assert image.units["X"] == "nm" and image.scale["X"] == pytest.approx(13.75)
    assert float(np.asarray(image.data).sum()) == pytest.approx(good, rel=0.02)
