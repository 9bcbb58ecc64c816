"""Where each job kind runs is decided by jobs/placement.py, and every caller follows it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from napari_celldenoise.jobs import run, run_in_process
from napari_celldenoise.jobs.placement import PLACEMENT
from tests.jobs.workers import placements

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
from napari_celldenoise.jobs import ChildProcessFailed, run
from napari_celldenoise.jobs.placement import runs_in_child
from napari_celldenoise.jobs.run_spec import run_spec
from napari_celldenoise.jobs.specs import predict_spec

def where(kinds=("train", "predict", "centroid-mlp", "bioimageio-check", "filter", "spots")):
    return " ".join(k for k in kinds if runs_in_child(k))

def predict_error():
    spec = predict_spec({missing!r}, {missing!r} + ".tif", {missing!r} + "-out.tif")
    try:
        run(run_spec(spec))
    except ChildProcessFailed as exc:
        return "child: " + str(exc).split(":")[0]
    except ValueError as exc:
        return "here: " + type(exc).__name__

print(where()); print(predict_error())
import napari  # a viewer may exist from now on
print(where()); print(predict_error())
"""


def test_tensorflow_kinds_leave_a_process_that_may_hold_a_viewer(tmp_path):
    code = PROBE.format(missing=str(tmp_path / "no-model"))
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # without napari (the command line): only the always-isolated kinds; run_spec runs here
    assert lines[0] == "centroid-mlp bioimageio-check"
    assert lines[1].startswith("here: ")
    # once napari is imported: training and prediction too, and run_spec sends them away
    assert lines[2] == "train predict centroid-mlp bioimageio-check"
    assert lines[3].startswith("child: ")


def test_nothing_nests_inside_a_job_child():
    inside = run(run_in_process(placements))
    assert set(inside) == set(PLACEMENT) and not any(inside.values())
