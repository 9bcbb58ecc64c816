"""A worker killed after its last epoch's checkpoint and before its ``Done`` event: the next
worker finds every epoch done, publishes, and still sends the ``Done`` the job's reader waits
for, once."""

from __future__ import annotations

from dataclasses import replace

import pytest

from napari_celldenoise.jobs import Done
from napari_celldenoise.remote.job_folder import JobFolder

from .helpers import make_job, tiny_config, worker

pytestmark = pytest.mark.slow


def _dones(job: JobFolder) -> list[int]:
    """The indices of the job's Done events."""
    return [i for i, e in job.events(previews=False) if isinstance(e, Done)]


def test_a_worker_after_the_last_checkpoint_still_reports_done(tmp_path):
    job = make_job(f"{(tmp_path / 'bucket').as_uri()}/jobs/done", tiny_config(epochs=1, steps=2))
    assert worker(job.url).wait(timeout=300) == 0
    (index,) = _dones(job)
    # as if the first worker died between the checkpoint and the Done event
    job.store.delete(f"events/{index:06d}.json")
    status = job.read_status()
    job.write_status(replace(status, state="running", heartbeat=0.0))
    assert _dones(job) == []

    assert worker(job.url).wait(timeout=300) == 0
    status = job.read_status()
    assert (status.state, status.attempt, status.epochs_done) == ("done", 2, 1)
    (index,) = _dones(job)
    assert dict(job.events(previews=False))[index].result.epochs_done == 1
