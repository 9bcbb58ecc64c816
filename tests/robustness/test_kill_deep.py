"""SIGKILL of ``celldenoise train``, ``predict`` and ``export`` (TensorFlow, in child
processes): the target holds the old file or the complete new one; a killed training's folder
loads and ``--resume`` goes on from its last whole epoch; a killed prediction's scratch folder
is removed by the next run."""

from __future__ import annotations

import random
import signal
import subprocess
import time
import zipfile

import numpy as np
import pytest
import tifffile

from napari_celldenoise.deep.model import ModelFolder
from napari_celldenoise.io import read_image

from ._procs import SCRATCH, cli_command, cli_env, kill_series

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("deep-kill")
    noisy = root / "noisy.tif"
    rng = np.random.default_rng(0)
    tifffile.imwrite(noisy, rng.poisson(50, (64, 64)).astype(np.float32))
    folder = root / "model"
    args = ["train", noisy, "--method", "n2v", "-o", folder, "--epochs", "1", "--steps", "2"]
    args += ["--patch", "32", "--batch", "2"]
    proc = subprocess.run(cli_command(args), env=cli_env(), capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return folder, noisy


def test_sigkill_of_predict_leaves_old_or_complete_new(model, tmp_path):
    folder, noisy = model
    old = tmp_path / "old.tif"
    tifffile.imwrite(old, np.zeros((4, 4), np.float32))

    def args(target):
        return ["predict", folder, noisy, "-o", target, "--overwrite", "--no-tta"]

    def complete(path):
        image = read_image(path)
        return image.shape == (64, 64) and np.isfinite(np.asarray(image.data)).all()

    outcomes = kill_series(
        tmp_path,
        "predict.tif",
        args,
        old.read_bytes(),
        complete,
        [["result.tif"]],
        delays=(1, 6),
        triggered=1,
    )
    assert any(o[0] == "killed" for o in outcomes)


def test_a_killed_predicts_scratch_folder_is_removed_by_the_next_run(model, tmp_path):
    folder, noisy = model
    target = tmp_path / "denoised.tif"
    command = cli_command(["predict", folder, noisy, "-o", target, "--no-tta"])

    def scratch():
        return [p for p in tmp_path.iterdir() if p.name.startswith(SCRATCH)]

    proc = subprocess.Popen(command, env=cli_env(), stderr=subprocess.DEVNULL)
    try:
        start = time.monotonic()
        while not scratch() and proc.poll() is None and time.monotonic() - start < 300:
            time.sleep(0.005)
        assert proc.poll() is None, "predict ended before its scratch folder was seen"
        proc.send_signal(signal.SIGKILL)  # before TensorFlow has started: the folder stays
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    (stale,) = scratch()
    assert not target.exists()
    done = subprocess.run(command, env=cli_env(), capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert not stale.exists() and scratch() == []
    assert read_image(target).shape == (64, 64)


def test_sigkill_of_export_leaves_old_or_complete_new(model, tmp_path):
    folder, _ = model

    def args(target):
        return ["export", folder, "-o", target, "--overwrite", "--no-check"]

    def complete(path):
        with zipfile.ZipFile(path) as zf:
            return zf.testzip() is None and any(n.endswith("rdf.yaml") for n in zf.namelist())

    outcomes = kill_series(
        tmp_path,
        "export.zip",
        args,
        b"not a zip",
        complete,
        [["result.zip"]],
        delays=None,
        triggered=1,
    )
    assert any(o[0] == "killed" for o in outcomes)


def _whole_epochs(folder: ModelFolder) -> list[int]:
    return [r["epoch"] for r in folder.read_history() if not r["partial"]]


def test_a_killed_training_loads_and_resume_goes_on_from_its_last_whole_epoch(tmp_path):
    noisy = tmp_path / "noisy.tif"
    tifffile.imwrite(noisy, np.random.default_rng(1).poisson(50, (64, 64)).astype(np.float32))
    folder = ModelFolder(tmp_path / "model")
    base = ["train", noisy, "--method", "n2v", "-o", folder.path, "--steps", "2"]
    base += ["--patch", "32", "--batch", "2"]
    proc = subprocess.Popen(
        cli_command([*base, "--epochs", "500"]), env=cli_env(), stderr=subprocess.DEVNULL
    )
    try:
        start = time.monotonic()
        while proc.poll() is None and time.monotonic() - start < 300:
            if folder.exists() and folder.read_info().epochs_done >= 1:
                break
            time.sleep(0.01)
        # somewhere in the next epochs: a batch, the validation, or the epoch's writes
        time.sleep(random.Random(25).uniform(0, 1.0))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL, "the training ended before the kill"
    finally:
        if proc.poll() is None:
            proc.kill()
    info = folder.read_info()  # the killed folder loads: info, side files, whole weights
    done = info.epochs_done
    assert done >= 1 and folder.weights("last").is_file() and folder.weights("best").is_file()
    assert _whole_epochs(folder)[:done] == list(range(1, done + 1))
    print(f"killed after {done} whole epoch(s)")

    def resume():
        run = subprocess.run(
            cli_command([*base, "--epochs", "1", "--resume"]),
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        return run

    run = resume()
    assert "optimizer state restored" in run.stderr
    assert f"{done + 1} epochs" in run.stdout
    assert folder.read_info().epochs_done == done + 1
    assert _whole_epochs(folder) == list(range(1, done + 2))
    # a kill between the history's write and the info's (the info is written last): the
    # history holds an epoch that the info does not count; it is trained again, not doubled
    folder.write_info(folder.read_info().model_copy(update={"epochs_done": done}))
    resume()
    assert folder.read_info().epochs_done == done + 1
    assert _whole_epochs(folder) == list(range(1, done + 2))
