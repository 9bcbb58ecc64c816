"""A stop reaches the step in progress: the dock's Cancel (``should_stop``) and Ctrl-C on
``celldenoise batch`` end a long step within seconds, write nothing half-done, and leave the
file ``cancelled`` in a consistent manifest (``--resume`` runs such a file again)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from napari_celldenoise.batch.recipe import recipe_from_specs
from napari_celldenoise.batch.run import FileDone, run_batch
from napari_celldenoise.jobs import run
from napari_celldenoise.jobs.specs import classical_spec

from .conftest import SRC, write_frames

pytestmark = pytest.mark.slow

PLANES = 40
"""BM3D takes about 2 s a 128 x 128 plane here (idle): the whole step runs over a minute,
several on a loaded machine; a stop must end it within seconds."""


def _slow_file(folder: Path) -> Path:
    return write_frames(folder / "big.ome.tif", seed=3, shape=(128, 128), frames=PLANES)


def _slow_recipe():
    return recipe_from_specs([classical_spec("x.ome.tif", "x.bm3d.ome.tif", "bm3d", {})])


def _left(out: Path) -> list[Path]:
    """Files under ``out`` other than the batch's own tables: what the step wrote."""
    own = {"manifest.csv", "manifest.jsonl"}
    return [p for p in out.rglob("*") if p.is_file() and p.name not in own]


def test_a_stop_ends_the_step_in_progress_within_seconds(client, tmp_path):
    client.run(__import__, "napari_celldenoise.classical.file_job")  # the workers are warm
    src = tmp_path / "in"
    _slow_file(src)
    out = tmp_path / "out"
    start = time.monotonic()
    asked: list[float] = []

    def stop() -> bool:  # the dock's Cancel, pressed 8 s after Start
        if time.monotonic() - start > 8 and not asked:
            asked.append(time.monotonic())
        return bool(asked)

    records = []
    result = run(
        run_batch(_slow_recipe(), [str(src)], str(out), client=client, should_stop=stop),
        on_event=lambda e: records.append(e.record) if isinstance(e, FileDone) else None,
    )
    waited = time.monotonic() - asked[0]
    assert waited < 30, f"the step ran on for {waited:.1f} s after the stop"
    assert result.cancelled == 1 and result.done == 0
    assert records[0]["status"] == "cancelled"
    assert records[0]["error"] == "stopped in step 1 of 1 (filter)"  # inside, not before it
    assert _left(out) == []  # no half-written output, no temporary file
    m = pd.read_csv(out / "manifest.csv")
    assert list(m["status"]) == ["cancelled"]


def test_ctrl_c_on_the_batch_command_stops_the_step_in_progress(tmp_path):
    src = tmp_path / "in"
    big = _slow_file(src)
    out = tmp_path / "out"
    recipe = tmp_path / "recipe.yaml"
    _slow_recipe().save(recipe)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "napari_celldenoise.cli", "batch", str(recipe), str(src)]
    cmd += ["-o", str(out), "--workers", "1", "-q"]
    proc = subprocess.Popen(
        cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        start_new_session=True,  # its own process group, as a shell's job
    )  # fmt: skip
    try:
        seen = ""
        while "dask dashboard" not in seen:  # the dashboard's address: the cluster is up
            line = proc.stderr.readline()
            assert line, seen + (proc.stderr.read() or "")
            seen += line
        time.sleep(10)  # the worker imports the filters and starts on the file
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole group, workers too
        t0 = time.monotonic()
        stdout, stderr = proc.communicate(timeout=60)
        waited = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert waited < 30, f"{waited:.1f} s from Ctrl-C to the end"
    assert "0 done, 0 failed, 0 skipped, 1 cancelled" in stdout
    m = pd.read_csv(out / "manifest.csv")
    assert list(m["status"]) == ["cancelled"] and m["input"][0] == str(big)
    assert m["error"][0].startswith("stopped")
    assert _left(out) == []
