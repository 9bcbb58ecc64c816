"""``celldenoise info X | head``: a reader that goes away early ends the command quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import tifffile

import napari_celldenoise


def test_a_closed_stdout_pipe_ends_quietly_without_a_traceback(tmp_path):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.zeros((3, 8, 8), np.uint16))
    src = str(Path(napari_celldenoise.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "napari_celldenoise.cli", "info", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    proc.stdout.close()  # like `head` that has read all it wanted before the first line
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert err == "", err
    assert proc.returncode == 1  # as Python's documentation of SIGPIPE handling advises
