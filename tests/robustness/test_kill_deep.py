"""SIGKILL of ``celldenoise predict`` and ``export`` (TensorFlow, in child processes): the
target holds the old file or the complete new one. Killing a training belongs to the
training tests (``--resume``)."""

from __future__ import annotations

import subprocess
import zipfile

import numpy as np
import pytest
import tifffile

from napari_celldenoise.io import read_image

from ._procs import cli_command, cli_env, kill_series

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
