"""The TPU VM launcher end to end with a stand-in gcloud on PATH: create -> train -> describe
(PREEMPTED: the watchdog deletes and recreates the node, the job resumes) -> delete."""

from __future__ import annotations

import json
import os
import sys
import threading

import pytest

from napari_celldenoise.deep.model import ModelFolder
from napari_celldenoise.jobs import Device, Done
from napari_celldenoise.remote.job_folder import LeaseHeld
from napari_celldenoise.remote.launchers import TpuVmLauncher, node_name, watch

from .helpers import cli, epochs_reported, make_job, tiny_config, wait_for

pytestmark = pytest.mark.remote


@pytest.fixture
def gcloud(tmp_path, monkeypatch):
    """A ``gcloud`` first on PATH; returns its state folder."""
    bin_dir, state = tmp_path / "bin", tmp_path / "gcloud-state"
    bin_dir.mkdir()
    script = os.path.join(os.path.dirname(__file__), "fake_gcloud.py")
    shim = bin_dir / "gcloud"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GCLOUD_STATE", str(state))
    return state


def _calls(state):
    return [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]


def test_dry_run_prints_every_command_and_changes_nothing(gcloud, bucket, tmp_path):
    import numpy as np
    import tifffile

    tifffile.imwrite(tmp_path / "in.tif", np.zeros((2, 32, 32), np.uint16), imagej=True,
                     metadata={"axes": "TYX"})  # fmt: skip
    done = cli("remote", "submit", str(tmp_path / "in.tif"), "--method", "n2v", "--bucket",
               bucket, "--launcher", "tpu-vm", "--zone", "europe-west4-a", "--accelerator",
               "v5litepod-4", "--spot", "--dry-run", "--patch", "32")  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("gcloud compute tpus tpu-vm create celldenoise-")
    for flag in (
        "--zone=europe-west4-a",
        "--accelerator-type=v5litepod-4",
        "--spot",
        "--version=v2-alpha-tpuv5-lite",
        "--metadata-from-file=startup-script=",
    ):
        assert flag in lines[0]  # fmt: skip
    assert " describe " in lines[1] and lines[2].endswith("--quiet")
    assert lines[-1].startswith(f"{bucket}/jobs/")
    assert "$4.80 per hour" in done.stderr and "2025-06" in done.stderr
    assert not (gcloud / "calls.jsonl").exists()  # no gcloud call
    from napari_celldenoise.remote.store import Store

    assert Store(bucket).list("") == []  # nothing uploaded


@pytest.mark.slow
def test_create_train_preempt_recreate_and_delete(gcloud, bucket, tmp_path):
    """The preemption SIGKILLs the worker in mid-training: the recreated node's worker resumes
    from the last finished epoch, every epoch in the history exactly once."""
    job = make_job(f"{bucket}/jobs/tpu", tiny_config(epochs=3, steps=6))
    launcher = TpuVmLauncher(zone="us-central1-a", accelerator="v5litepod-1", spot=True)
    launcher.create(job.url)
    name = node_name(job.url)
    lines: list[str] = []
    result: dict = {}
    watchdog = threading.Thread(
        target=lambda: result.update(state=watch(job.url, launcher, interval=0.2, say=lines.append))
    )
    watchdog.start()
    try:
        wait_for(lambda: epochs_reported(job), 180, "the first epoch", every=0.1)
        with pytest.raises(LeaseHeld):  # a second worker refuses while the first beats
            job.acquire("another-worker", settle=0)
        (gcloud / f"{name}.preempt").write_text("")
        watchdog.join(300)
    finally:
        if watchdog.is_alive():
            (gcloud / "stop").write_text("")
    assert result.get("state") == "done", lines
    assert epochs_reported(job) == [1, 2, 3]
    status = job.read_status()
    assert status.attempt == 2 and status.epochs_done == 3, lines
    devices = [e for _, e in job.events(previews=False) if isinstance(e, Device)]
    # the relaunched worker says its device when it trains; on a busy machine the first one
    # may have finished every epoch before the preemption landed, and the second only publishes
    assert 1 <= len(devices) <= 2 and devices[0].description.startswith("CPU")
    done = [e for _, e in job.events(previews=False) if isinstance(e, Done)]
    assert len(done) == 1 and done[0].result.epochs_done == 3
    history = ModelFolder(job.pull_model(tmp_path / "model")).read_history()
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert "attempt-1.log" in job.logs() and "resuming after epoch" in job.logs()
    verbs = [c[3] for c in _calls(gcloud) if c[:3] == ["compute", "tpus", "tpu-vm"]]
    assert verbs.count("create") == 2 and verbs[-1] == "delete"
    assert any("preempted: recreating" in line for line in lines)
    assert not (gcloud / f"{name}.json").exists()  # no TPU left billing
