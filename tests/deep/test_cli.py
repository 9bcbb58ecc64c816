"""`celldenoise train` / `predict` (TensorFlow runs in the test process: marked tf)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_celldenoise.cli import main
from napari_celldenoise.io import read_image

pytestmark = pytest.mark.tf


@pytest.fixture
def stack(tmp_path, small_noisy):
    path = tmp_path / "in.tif"
    tifffile.imwrite(
        path,
        np.stack([small_noisy, small_noisy[:, ::-1]]),
        imagej=True,
        metadata={"axes": "TYX", "unit": "um"},
        resolution=(10.0, 10.0),
    )
    return path


def test_train_resume_predict(tmp_path, stack, capsys):
    model = tmp_path / "model"
    args = [
        "train",
        str(stack),
        "--method",
        "n2v",
        "-o",
        str(model),
        "--epochs",
        "1",
        "--steps",
        "2",
        "--patch",
        "32",
        "--batch",
        "2",
    ]
    assert main(args) == 0
    assert "learning_rate: 0.0004" in (model / "celldenoise.yaml").read_text()  # n2v's default
    assert main([*args, "--resume"]) == 0
    assert "2 epochs" in capsys.readouterr().out
    out = tmp_path / "out.ome.tif"
    assert main(["predict", str(model), str(stack), "-o", str(out), "--tile", "64"]) == 0
    src, res = read_image(stack), read_image(out)
    assert res.shape == src.shape and res.axes == src.axes
    assert res.scale["X"] == pytest.approx(src.scale["X"])
    assert abs(float(np.mean(res.data)) - float(np.mean(src.data))) < float(np.std(src.data))
    # the 8-fold self-ensemble: same shape, a different (averaged) result
    both = tmp_path / "ensemble.ome.tif"
    assert main(["predict", str(model), str(stack), "-o", str(both), "--ensemble"]) == 0
    averaged = read_image(both).data
    assert averaged.shape == src.shape and np.isfinite(averaged).all()
    assert not np.allclose(averaged, res.data)


def test_pg_predict_takes_the_number_of_adaptation_steps(tmp_path, stack, capsys):
    model = tmp_path / "pg"
    train = ["train", str(stack), "--method", "pg-blindspot", "-o", str(model)]
    assert main([*train, "--epochs", "1", "--steps", "2", "--patch", "32", "--batch", "2"]) == 0
    assert "depth: 2" in (model / "celldenoise.yaml").read_text()  # the deepest that fits 32
    out = tmp_path / "out.ome.tif"
    assert main(["predict", str(model), str(stack), "-o", str(out), "--tta-steps", "3"]) == 0
    err = capsys.readouterr().err
    assert "3 fine-tuning steps" in err and "adapting to this image 3/3" in err
    assert read_image(out).shape == read_image(stack).shape


def test_structn2v_auto_mask(tmp_path, stack, capsys):
    model = tmp_path / "s"
    assert (
        main(
            [
                "train",
                str(stack),
                "--method",
                "structn2v",
                "-o",
                str(model),
                "--epochs",
                "1",
                "--steps",
                "1",
                "--patch",
                "32",
                "--batch",
                "2",
                "--mask",
                "auto",
                "--learning-rate",
                "0.002",
            ]
        )
        == 0
    )
    assert "--mask auto: proposed mask" in capsys.readouterr().err
    assert "mask:" in (model / "celldenoise.yaml").read_text()
    assert "learning_rate: 0.002" in (model / "celldenoise.yaml").read_text()
    # continuing keeps the folder's method and mask, whatever --method says
    assert main(["train", str(stack), "--method", "n2v", "-o", str(model), "--epochs", "1",
                 "--steps", "1", "--patch", "32", "--batch", "2", "--resume"]) == 0  # fmt: skip
    assert "method: structn2v" in (model / "celldenoise.yaml").read_text()
    assert "epochs_done: 2" in (model / "celldenoise.yaml").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--patch", "256"], "smaller than the training patch"),
        (["--patch", "30"], "multiple of"),
        (["--mask", "nofile.txt", "--method", "structn2v"], "cannot read"),
        (["--precision", "bfloat16"], "precision is a setting of pg-blindspot, not of n2v"),
        (["--structure-share", "0.5"], "structure_share is a setting of pg-blindspot"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, stack, capsys, extra, message):
    args = ["train", str(stack), "--method", "n2v", "-o", str(tmp_path / "m"), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "m").exists()


def test_predict_bad_model_folder(tmp_path, stack, capsys):
    assert main(["predict", str(tmp_path), str(stack), "-o", str(tmp_path / "o.tif")]) == 2
    assert "not a model folder" in capsys.readouterr().err


def test_3d_structn2v_from_the_cli_trains_continues_and_predicts(tmp_path):
    from scipy import ndimage as ndi

    rng = np.random.default_rng(4)
    vol = (ndi.convolve1d(rng.normal(size=(16, 48, 48)), [1.0, 1.0, 1.0], axis=0) + 10).astype(
        np.float32
    )
    path = tmp_path / "vol.tif"
    tifffile.imwrite(path, vol, imagej=True, metadata={"axes": "ZYX"})
    model = tmp_path / "m3"
    base = ["train", str(path), "-o", str(model), "--epochs", "1", "--steps", "2",
            "--patch", "16", "--batch", "2"]  # fmt: skip
    assert main([*base, "--method", "structn2v", "--dims", "3", "--mask", "auto"]) == 0
    text = (model / "celldenoise.yaml").read_text()
    assert "dims: 3" in text
    # continuing needs neither --dims nor --mask: the folder's 3D network and ZYX mask are kept
    assert main([*base, "--method", "n2v", "--resume"]) == 0
    assert "epochs_done: 2" in (model / "celldenoise.yaml").read_text()
    out = tmp_path / "out.tif"
    assert main(["predict", str(model), str(path), "-o", str(out)]) == 0
    result = tifffile.imread(out)
    assert result.shape == vol.shape and np.isfinite(result).all()


@pytest.mark.timeout(300)
def test_ctrl_c_stops_training_after_the_batch_and_keeps_the_weights(tmp_path, stack):
    import os
    import signal
    import subprocess
    import sys

    model = tmp_path / "m"
    cmd = [sys.executable, "-m", "napari_celldenoise.cli", "train", str(stack), "-o", str(model),
           "--method", "n2v",
           "--epochs", "50", "--steps", "10000", "--patch", "32", "--batch", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    for line in proc.stderr:  # wait until batches run
        if ", batch " in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "stopping after this batch" in err and "continue with --resume" in err
    assert f"{model}: 0 epochs" in out  # the interrupted epoch is saved, not counted whole
    assert (model / "weights_last.h5").is_file() and os.path.getsize(model / "weights_last.h5")
    import json

    steps = json.loads((model / "history.json").read_text())[-1]["steps"]
    assert 1 <= steps < 10000  # the history says how much of the epoch was trained
    assert f"stopped in epoch 1 ({steps} of its 10000 batches): 0 whole epoch(s)" in err


def test_a_gpu_that_tensorflow_cannot_use_is_named_with_what_to_install(
    tmp_path, stack, capsys, fake_nvidia
):
    from napari_celldenoise.deep import strategy

    args = ["train", str(stack), "-o", str(tmp_path / "m"), "--method", "n2v",
            "--epochs", "1", "--steps", "1", "--patch", "32", "--batch", "2"]  # fmt: skip
    assert main(args) == 0
    err = capsys.readouterr().err
    if "training n2v on GPU" in err:
        pytest.skip("TensorFlow uses this machine's GPU")
    assert "note: an NVIDIA GPU is present but TensorFlow cannot use it" in err
    assert "pip install 'napari-celldenoise[gpu]'" in err
    with pytest.raises(RuntimeError, match=r"napari-celldenoise\[gpu\]"):
        strategy.pick("gpu")  # asked for a GPU: the same reason, as the error


def test_no_gpu_note_on_a_machine_without_one(tmp_path, stack, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no nvidia-smi there on a machine without one
    import os
    import shutil

    if shutil.which("nvidia-smi") or os.path.exists("/dev/nvidia0"):
        pytest.skip("this machine has an NVIDIA driver")
    args = ["train", str(stack), "-o", str(tmp_path / "m"), "--method", "n2v",
            "--epochs", "1", "--steps", "1", "--patch", "32", "--batch", "2"]  # fmt: skip
    assert main(args) == 0
    assert "note:" not in capsys.readouterr().err
