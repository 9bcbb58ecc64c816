import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_celldenoise.cli import main
from napari_celldenoise.io.spots_csv import HEADER, read_spots_csv
from napari_celldenoise.spots.match import match_points


def test_simulate_then_find(tmp_path, capsys):
    img, truth, out = tmp_path / "sim.ome.tif", tmp_path / "truth.csv", tmp_path / "out.csv"
    assert (
        main(
            [
                "simulate-spots",
                "-o",
                str(img),
                "--truth",
                str(truth),
                "--frames",
                "3",
                "--size",
                "64",
                "64",
                "--spots",
                "10",
                "--pixel-size",
                "120",
            ]
        )
        == 0
    )
    assert main(["spots", str(img), "-o", str(out), "--fit", "lsq", "-q"]) == 0
    found, true = read_spots_csv(out), read_spots_csv(truth)
    assert found.attrs["pixel_size"] == pytest.approx(120.0)  # from the image's scale
    assert list(pd.read_csv(out).columns[: len(HEADER)]) == HEADER
    good = found[found["class"] == "good"]
    m = match_points(
        good[["y", "x"]].to_numpy(),
        true[["y", "x"]].to_numpy(),
        found_frame=good["frame"].to_numpy(),
        true_frame=true["frame"].to_numpy(),
    )
    assert m.f1 > 0.95, m.summary()


def test_camera_and_threshold_options(tmp_path):
    img, out = tmp_path / "sim.ome.tif", tmp_path / "out.csv"
    main(
        [
            "simulate-spots",
            "-o",
            str(img),
            "--frames",
            "1",
            "--size",
            "48",
            "48",
            "--offset",
            "400",
            "--sensitivity",
            "2",
        ]
    )
    args = [
        "spots",
        str(img),
        "-o",
        str(out),
        "--offset",
        "400",
        "--sensitivity",
        "2",
        "--read-noise",
        "1.6",
        "--qe",
        "1",
        "--em-gain",
        "1",
        "--pixel-size",
        "65",
        "--threshold",
        "2*std(Wave.F1)",
        "--sigma",
        "1.3",
        "--box",
        "9",
        "-q",
    ]
    assert main(args) == 0
    t = read_spots_csv(out)
    assert t.attrs["pixel_size"] == pytest.approx(65.0)
    assert t["photons"].median() > 300  # photons, not ADU: the camera settings were used


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--threshold", "2*std("], "cannot parse"),
        (["--threshold", "__import__('os')"], "unknown function"),
        (["--box", "6"], "odd"),
        (["--classify", "nope.joblib"], "no such classifier"),
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path, capsys, extra, message):
    img = tmp_path / "f.tif"
    tifffile.imwrite(img, np.full((32, 32), 100, np.uint16))
    assert main(["spots", str(img), "-o", str(tmp_path / "o.csv"), "-q", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_tiny_image_and_no_spots(tmp_path, capsys):
    tiny = tmp_path / "one.tif"
    tifffile.imwrite(tiny, np.zeros((1, 1), np.uint16))
    assert main(["spots", str(tiny), "-o", str(tmp_path / "a.csv")]) == 2
    assert "smaller than" in capsys.readouterr().err
    flat = tmp_path / "flat.tif"
    tifffile.imwrite(flat, np.full((40, 40), 100, np.uint16))
    out = tmp_path / "b.csv"
    assert main(["spots", str(flat), "-o", str(out)]) == 0
    assert "no spots" in capsys.readouterr().err
    assert out.read_text().splitlines() == [out.read_text().splitlines()[0]]
    assert main(["spots", str(flat), "-o", str(out)]) == 2  # exists, no --overwrite
    assert main(["spots", str(tmp_path / "missing.tif"), "-o", str(tmp_path / "c.csv")]) == 2


def test_classify_with_a_rules_file(tmp_path):
    from napari_celldenoise.spots.classify import Rule, RuleSet

    img, out = tmp_path / "sim.ome.tif", tmp_path / "out.csv"
    main(["simulate-spots", "-o", str(img), "--frames", "2", "--size", "48", "48"])
    rules = RuleSet((Rule("photons", 1e9, None),)).save(tmp_path / "strict.yaml")
    assert main(["spots", str(img), "-o", str(out), "--classify", str(rules), "-q"]) == 0
    table = read_spots_csv(out)
    assert len(table) > 0 and (table["class"] == "bad").all()


def _sim(tmp_path, frames=12, seed="0"):
    img, truth = tmp_path / "sim.ome.tif", tmp_path / "truth.csv"
    args = ["simulate-spots", "-o", str(img), "--truth", str(truth), "--frames", str(frames)]
    args += ["--size", "64", "64", "--spots", "12", "--background", "5", "40", "--seed", seed]
    assert main(args) == 0
    return img, read_spots_csv(truth)


def _centroid_line(err: str) -> str:
    return next(x for x in err.splitlines() if x.startswith("centroid ") and " -> " in x)


def _matched(found, true):
    return match_points(
        found[["y", "x"]].to_numpy(),
        true[["y", "x"]].to_numpy(),
        found_frame=found["frame"].to_numpy(),
        true_frame=true["frame"].to_numpy(),
    )


def test_train_a_ridge_centroid_from_the_fits_then_localise_with_it(tmp_path, capsys):
    img, true = _sim(tmp_path)
    model, fitted, fast = tmp_path / "c.npz", tmp_path / "fit.csv", tmp_path / "fast.csv"
    args = ["spots", str(img), "-o", str(fitted), "--train-centroid", "ridge"]
    assert main([*args, "--centroid-out", str(model)]) == 0
    line = _centroid_line(capsys.readouterr().err)
    assert line.startswith("centroid ridge (") and "predictions/s" in line and model.exists()
    std = float(line.split(": std ")[1].split(" / ")[0])
    assert 0 < std < 0.1  # against the held-out fits
    assert main(["spots", str(img), "-o", str(fast), "--centroid", str(model), "-q"]) == 0
    found = read_spots_csv(fast)
    m = _matched(found, true)
    assert m.f1 > 0.95 and m.rmse < 0.25, m.summary()
    # the model's positions are sub-pixel, not the candidates' integer pixels
    assert np.abs(found["x"] - np.rint(found["x"])).mean() > 0.1


def test_centroid_options_bad_input(tmp_path, capsys):
    img, _ = _sim(tmp_path, frames=1)
    out = tmp_path / "o.csv"
    assert main(["spots", str(img), "-o", str(out), "--train-centroid", "ridge"]) == 2
    assert "--centroid-out" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    assert main(["spots", str(img), "-o", str(out), "--centroid", str(bad)]) == 2
    assert "not a centroid model" in capsys.readouterr().err


@pytest.mark.slow
def test_train_the_network_on_simulated_spots_in_a_child_process(tmp_path, capsys):
    img, _ = _sim(tmp_path, frames=3)
    model, out = tmp_path / "mlp.npz", tmp_path / "o.csv"
    args = ["spots", str(img), "-o", str(out), "--train-centroid", "mlp"]
    args += ["--centroid-from", "simulated", "--centroid-epochs", "2"]
    assert main([*args, "--centroid-out", str(model)]) == 0
    line = _centroid_line(capsys.readouterr().err)
    assert "against the simulated truth" in line and "good fits" in line
    assert float(line.split(": std ")[1].split(" / ")[0]) < 0.2
    import sys

    assert "tensorflow" not in sys.modules  # trained in the child, predicted with numpy


def test_an_offset_far_below_the_dark_level_is_said_with_the_estimate(tmp_path, capsys, caplog):
    from napari_celldenoise.spots.simulate import simulate_spots

    frames, _ = simulate_spots(1, (64, 64), n_spots=6, background=(5.0, 20.0), seed=2)
    path = tmp_path / "dark1000.tif"
    tifffile.imwrite(path, (frames + 900).astype(np.uint16))  # a camera with a 1000 ADU offset
    assert main(["spots", str(path), "-o", str(tmp_path / "a.csv"), "-q"]) == 0  # default 100
    said = capsys.readouterr().err + caplog.text
    assert "offset 100 is far below the image's dark level" in said
    assert "the image suggests 1000" in said  # the dark level of the background
    caplog.clear()
    assert main(["spots", str(path), "-o", str(tmp_path / "b.csv"), "--offset", "995", "-q"]) == 0
    assert "offset" not in capsys.readouterr().err + caplog.text  # a fitting offset: nothing
