"""The CLI contract: remote submit -> jobs show --follow -> jobs stop -> jobs pull -> predict,
and one-line errors (exit 2) before anything is uploaded."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import tifffile

from napari_celldenoise.deep.model import ModelFolder
from napari_celldenoise.remote.job_folder import JobFolder
from napari_celldenoise.remote.store import Store

from .helpers import CLI, cli, epochs_reported, noisy_image, wait_for

pytestmark = pytest.mark.remote


@pytest.fixture
def noisy(tmp_path):
    path = tmp_path / "noisy.tif"
    image = noisy_image()
    tifffile.imwrite(path, image.data, imagej=True, resolution=(10, 10),
                     metadata={"axes": "TYX", "unit": "um"})  # fmt: skip
    return path


@pytest.mark.slow
def test_submit_follow_outage_stop_pull_and_predict(
    bucket, noisy, tmp_path, gcs_server, fake_nvidia
):
    done = cli("remote", "submit", str(noisy), "--method", "n2v", "--bucket", bucket,
               "--launcher", "local", "--epochs", "2000", "--steps", "4", "--patch", "32",
               "--batch", "4")  # fmt: skip
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip().splitlines()[-1]
    assert url.startswith(f"{bucket}/jobs/") and "-n2v-" in url
    job = JobFolder(url)
    assert job.read_job().spec.config.epochs == 2000
    wait_for(lambda: epochs_reported(job), 180, "the first epoch")
    listed = cli("jobs", "list", bucket)
    assert listed.returncode == 0 and url in listed.stdout and "n2v" in listed.stdout
    follow = [*CLI, "jobs", "show", url, "--follow", "--interval", "0.5"]
    follower = subprocess.Popen(follow, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the GCS server gone for 10 s in mid-training: worker and follower retry and go on
        gcs_server.stop()
        time.sleep(10)
    finally:
        gcs_server.start()
    assert follower.poll() is None  # still following
    done_before = epochs_reported(job)
    assert cli("jobs", "stop", url).returncode == 0
    out, err = follower.communicate(timeout=180)
    assert follower.returncode == 0, err
    assert "epoch 1: loss" in out and out.rstrip().splitlines()[-1].startswith("done")
    reported = epochs_reported(job)
    assert reported == list(range(1, len(reported) + 1)) and len(reported) >= len(done_before)
    status = job.read_status()
    assert status.stopped and status.epochs_done < 2000
    shown = cli("jobs", "show", url, "--json")
    records = [json.loads(line) for line in shown.stdout.splitlines()]
    assert records[0]["status"]["state"] == "done" and records[0]["job"]["kind"] == "train"
    assert any(r.get("type") == "Epoch" for r in records[1:])
    logs = cli("jobs", "logs", url).stdout
    assert "stop requested" in logs
    if "training on CPU" in logs:  # the worker's machine has an NVIDIA driver, TensorFlow no CUDA
        assert "GPU is present but TensorFlow cannot use it" in logs
    model = tmp_path / "model"
    pulled = cli("jobs", "pull", url, "-o", str(model))
    assert pulled.returncode == 0, pulled.stderr
    folder = ModelFolder(model)
    assert (model / "weights_best.h5").is_file() and (model / "weights_last.h5").is_file()
    assert folder.read_info().epochs_done == status.epochs_done
    out = tmp_path / "denoised.tif"
    predicted = cli("predict", str(model), str(noisy), "-o", str(out))
    assert predicted.returncode == 0, predicted.stderr
    assert tifffile.imread(out).shape == noisy_image().data.shape
    assert cli("jobs", "delete", url).returncode == 0
    assert "not a job folder" in cli("jobs", "show", url).stderr


def test_bad_jobs_and_buckets_are_one_line_and_upload_nothing(bucket, noisy, gcs_server):
    shown = cli("jobs", "show", f"{bucket}/jobs/nothing")
    assert shown.returncode == 2
    assert shown.stderr.strip() == (
        f"celldenoise jobs: error: {bucket}/jobs/nothing: not a job folder (no job.json)"
    )
    missing = cli("remote", "submit", str(noisy), "--method", "n2v", "--bucket",
                  "gs://no-such-bucket/lab", "--launcher", "local", "--patch", "32")  # fmt: skip
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "gs://no-such-bucket: no such bucket" in missing.stderr
    bad = cli("remote", "submit", str(noisy), "--method", "n2v", "--bucket", bucket,
              "--launcher", "local", "--patch", "30")  # fmt: skip
    assert bad.returncode == 2 and "patch 30 must be a multiple" in bad.stderr
    assert Store(bucket).list("") == []
    tpu = cli("remote", "submit", str(noisy), "--method", "n2v", "--bucket", "/tmp/x",
              "--launcher", "tpu-vm")  # fmt: skip
    assert tpu.returncode == 2 and "reads gs:// buckets" in tpu.stderr
