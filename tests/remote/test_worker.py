"""The worker as a real process against a real GCS server: train, kill and resume, outage."""

from __future__ import annotations

import os
import signal
import time

import pytest

from napari_celldenoise.deep.model import ModelFolder
from napari_celldenoise.jobs import Device, Done
from napari_celldenoise.remote.job_folder import LeaseHeld

from .helpers import epochs_reported, make_job, tiny_config, wait_for, worker

pytestmark = [pytest.mark.remote, pytest.mark.slow]


def test_a_worker_killed_mid_training_resumes_without_losing_or_repeating_an_epoch(
    bucket, tmp_path
):
    job = make_job(f"{bucket}/jobs/kill", tiny_config(epochs=4, steps=8))
    with open(tmp_path / "first.log", "wb") as log:
        first = worker(job.url, log=log)
    try:
        wait_for(lambda: epochs_reported(job), 120, "the first epoch", every=0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    killed_at = epochs_reported(job)
    assert 1 <= len(killed_at) < 4
    with pytest.raises(LeaseHeld):  # the killed worker's lease is still alive: refused
        job.acquire("another-worker", settle=0)
    time.sleep(3.2)  # the killed worker's lease runs out
    with open(tmp_path / "second.log", "wb") as log:
        assert worker(job.url, log=log).wait(180) == 0, (tmp_path / "second.log").read_text()
    assert epochs_reported(job) == [1, 2, 3, 4]
    status = job.read_status()
    assert status.state == "done" and status.attempt == 2 and status.epochs_done == 4
    devices = [e for _, e in job.events(previews=False) if isinstance(e, Device)]
    assert len(devices) == 2 and devices[0].description.startswith("CPU")
    done = [e for _, e in job.events(previews=False) if isinstance(e, Done)]
    assert len(done) == 1 and done[0].result.epochs_done == 4
    history = ModelFolder(job.pull_model(tmp_path / "model")).read_history()
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert "attempt-1.log" in job.logs() and "resuming after epoch" in job.logs()


def test_the_gcs_server_gone_for_10_s_mid_training_is_survived(bucket, gcs_server, tmp_path):
    job = make_job(f"{bucket}/jobs/outage", tiny_config(epochs=3, steps=4))
    with open(tmp_path / "worker.log", "wb") as log:
        proc = worker(job.url, log=log)
    try:
        wait_for(lambda: epochs_reported(job), 120, "the first epoch")
        gcs_server.stop()
        time.sleep(10)
        gcs_server.start()
        assert proc.wait(180) == 0, (tmp_path / "worker.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        if gcs_server.proc is None:
            gcs_server.start()
    assert epochs_reported(job) == [1, 2, 3]
    assert job.read_status().state == "done"
    assert ModelFolder(job.pull_model(tmp_path / "model")).read_info().epochs_done == 3
