"""The job folder on a real GCS server (fake-gcs-server) and in a local folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_celldenoise.deep.config import TrainConfig
from napari_celldenoise.io import ImageData, read_image
from napari_celldenoise.jobs import Epoch, Log, Preview
from napari_celldenoise.jobs.specs import train_spec
from napari_celldenoise.remote.job_folder import (
    SCHEMA,
    JobFolder,
    JobFolderError,
    LeaseHeld,
    list_jobs,
)

pytestmark = pytest.mark.remote


def _image() -> ImageData:
    data = np.random.default_rng(0).poisson(20, (2, 32, 40)).astype(np.uint16)
    return ImageData(data, "TYX", scale={"Y": 0.13, "X": 0.13}, units={"Y": "µm", "X": "µm"})


def _spec(epochs: int = 3):
    return train_spec("/data/noisy.tif", "model", TrainConfig(epochs=epochs, steps=2, patch=32))


@pytest.fixture(params=["gs", "file"])
def job_url(request, tmp_path):
    if request.param == "gs":
        base = request.getfixturevalue("bucket")
    else:
        base = (tmp_path / "bucket").as_uri()
    return f"{base}/jobs/job-1"


def test_a_job_round_trips_with_its_input(job_url):
    job = JobFolder.create(job_url, _spec(), image=_image(), launcher="local")
    info = job.read_job()
    assert info.spec.config == _spec().config
    assert info.inputs == [f"{job_url}/inputs/image.ome.tif"]
    assert info.spec.input.path == info.inputs[0] and info.seed == 0
    assert info.versions["napari-celldenoise"] and info.schema == SCHEMA
    uploaded = read_image(info.inputs[0])
    np.testing.assert_array_equal(uploaded.data, _image().data)
    assert uploaded.axes == "TYX" and uploaded.scale["X"] == pytest.approx(0.13)
    described = json.loads(job.store.get("inputs/image.json"))
    assert described["axes"] == "TYX" and described["source"] == "/data/noisy.tif"
    assert job.read_status().state == "queued"
    with pytest.raises(JobFolderError, match="already holds a job"):
        JobFolder.create(job_url, _spec())


def test_not_a_job_newer_schema_and_foreign_folders_are_refused(job_url):
    job = JobFolder(job_url)
    with pytest.raises(JobFolderError, match=r"not a job folder \(no job.json\)"):
        job.read_job()
    job.store.put("job.json", b'{"hello": 1}')
    with pytest.raises(JobFolderError, match="foreign"):
        job.read_job()
    newer = {"kind": "celldenoise-job", "schema": SCHEMA + 1, "spec": _spec().to_dict()}
    job.store.put("job.json", json.dumps(newer).encode())
    with pytest.raises(JobFolderError, match=f"newer .*schema {SCHEMA + 1}.*upgrade"):
        job.read_job()
    assert json.loads(job.store.get("job.json")) == newer  # nothing overwritten


def test_a_second_worker_refuses_while_the_lease_is_alive(job_url):
    job = JobFolder.create(job_url, _spec())
    first = job.acquire("worker-a", lease_seconds=2, settle=0)
    assert first.state == "starting" and first.attempt == 1 and first.worker == "worker-a"
    with pytest.raises(LeaseHeld, match="held by worker worker-a"):
        job.acquire("worker-b", lease_seconds=2, settle=0)
    job.write_status(first.__class__(**{**first.__dict__, "heartbeat": first.heartbeat - 3}))
    second = job.acquire("worker-b", lease_seconds=2, settle=0)  # the lease ran out
    assert second.worker == "worker-b" and second.attempt == 2


def test_events_are_one_object_each_and_previews_npy(job_url):
    job = JobFolder.create(job_url, _spec())
    image = np.linspace(0, 1, 300 * 260, dtype=np.float32).reshape(300, 260)
    events = [Log("hello"), Epoch(1, 0.5, 0.4, metrics={"loss": 0.5}), Preview(image, "p", {})]
    for i, event in enumerate(events):
        job.write_event(i, event)
    assert job.event_names() == [f"events/{i:06d}.json" for i in range(3)]
    assert job.store.list("previews") == ["previews/000002.npy"]
    back = [e for _, e in job.events()]
    assert back[:2] == events[:2]
    np.testing.assert_array_equal(back[2].image, image[::3, ::3])
    assert [i for i, _ in job.events(start=1)] == [1, 2]
    assert not job.stop_requested()
    job.request_stop()
    assert job.stop_requested()


def test_checkpoints_are_checked_and_a_corrupt_one_overwrites_nothing(job_url, tmp_path):
    job = JobFolder.create(job_url, _spec())
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights_last.h5").write_bytes(b"last-1")
    (model / "celldenoise.yaml").write_text("epochs_done: 1\n")
    first = job.save_checkpoint(model, 1)
    (model / "weights_last.h5").write_bytes(b"last-2")
    second = job.save_checkpoint(model, 2)
    assert job.last_checkpoint()["epoch"] == 2
    names = {n.rsplit("/", 1)[-1] for n in job.store.list("checkpoints")}
    assert first["folder"].split("/")[-1] not in names  # the previous snapshot is gone
    restored = tmp_path / "restored"
    job.restore_checkpoint(restored)
    assert (restored / "weights_last.h5").read_bytes() == b"last-2"
    job.store.put(f"{second['folder']}/weights_last.h5", b"last-2 truncat")
    target = tmp_path / "target"
    target.mkdir()
    (target / "weights_last.h5").write_bytes(b"mine")
    with pytest.raises(
        JobFolderError, match=r"weights_last.h5 is corrupt.*nothing was overwritten"
    ):
        job.restore_checkpoint(target)
    assert (target / "weights_last.h5").read_bytes() == b"mine"


def test_jobs_are_listed_newest_first_and_deleted(job_url):
    base = job_url.rsplit("/jobs/", 1)[0]
    JobFolder.create(f"{base}/jobs/20260101-a", _spec())
    JobFolder.create(f"{base}/jobs/20260102-b", _spec(5))
    found = list_jobs(base)
    assert [u.rsplit("/", 1)[-1] for u, _, _ in found] == ["20260102-b", "20260101-a"]
    assert found[0][1].state == "queued" and found[0][2].spec.config.epochs == 5
    JobFolder(f"{base}/jobs/20260101-a").delete()
    assert [u.rsplit("/", 1)[-1] for u, _, _ in list_jobs(base)] == ["20260102-b"]
