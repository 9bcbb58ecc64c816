"""Following a job folder as a job generator (what the dock and `jobs show --follow` do)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from napari_celldenoise.jobs import Done, Epoch, Log, Preview
from napari_celldenoise.jobs.specs import train_spec
from napari_celldenoise.remote.follow import RemoteJobFailed, follow
from napari_celldenoise.remote.job_folder import JobFolder

from .helpers import tiny_config

pytestmark = pytest.mark.remote


def _job(bucket: str, name: str) -> JobFolder:
    return JobFolder.create(f"{bucket}/jobs/{name}", train_spec("x.tif", "m", tiny_config()))


def test_a_finished_job_replays_its_events_with_the_newest_preview(bucket):
    job = _job(bucket, "done")
    events = [Epoch(1, 0.5), Preview(np.ones((8, 8)), "p"), Epoch(2, 0.4),
              Preview(np.full((8, 8), 2.0), "p"), Done(None)]  # fmt: skip
    for i, event in enumerate(events):
        job.write_event(i, event)
    job.write_status(replace(job.read_status(), state="done", epochs_done=2))
    seen = list(follow(job.url, interval=0.1))
    assert [e.epoch for e in seen if isinstance(e, Epoch)] == [1, 2]
    previews = [e for e in seen if isinstance(e, Preview)]
    assert len(previews) == 1 and previews[0].image.mean() == 2.0
    assert isinstance(seen[-1], Done) and not seen[-1].stopped


def test_stop_with_no_worker_alive_ends_following_and_a_failure_raises(bucket):
    job = _job(bucket, "gone")
    status = job.read_status()
    job.write_status(replace(status, state="running", worker="w", heartbeat=1.0))
    seen = list(follow(job.url, interval=0.1, should_stop=lambda: True))
    assert job.stop_requested()
    assert any(isinstance(e, Log) and "no heartbeat from the worker" in e.message for e in seen)
    assert isinstance(seen[-1], Done) and seen[-1].stopped
    failed = _job(bucket, "failed")
    failed.write_status(replace(failed.read_status(), state="failed", message="out of memory"))
    with pytest.raises(RemoteJobFailed, match="out of memory"):
        list(follow(failed.url, interval=0.1))
