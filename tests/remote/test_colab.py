"""The Colab runner notebook, executed with nbclient against the local GCS server: the
``google.colab`` import is absent here, so its guard runs; no credential is written into it."""

from __future__ import annotations

import json

import pytest

from napari_celldenoise.remote.colab import notebook, write_notebook

from .helpers import epochs_reported, make_job, tiny_config

pytestmark = pytest.mark.remote


def test_the_notebook_holds_the_job_url_and_no_credential(tmp_path):
    path = write_notebook("gs://bucket/lab/jobs/20261202-n2v-1a2b", tmp_path / "run.ipynb")
    text = path.read_text()
    data = json.loads(text)
    sources = ["".join(c["source"]) for c in data["cells"]]
    assert "JOB_URL = 'gs://bucket/lab/jobs/20261202-n2v-1a2b'" in sources[1]
    assert "auth.authenticate_user()" in sources[3]
    for secret in ("token", "private_key", "client_secret", "refresh_token", "ya29."):
        assert secret not in text.replace("GOOGLE_CLOUD_PROJECT", "")


@pytest.mark.slow
def test_the_notebook_trains_the_job_through_its_guards(bucket, tmp_path):
    pytest.importorskip("ipykernel")
    nbclient = pytest.importorskip("nbclient")
    job = make_job(f"{bucket}/jobs/colab", tiny_config(epochs=2, steps=2))
    nb = notebook(job.url)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3").execute(cwd=str(tmp_path))
    printed = ["".join(o.get("text", "")) for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", [])]  # fmt: skip
    text = "\n".join(printed)
    assert "not in Colab: using this machine's Google credentials" in text
    assert "no TPU or GPU in this runtime: training on the CPU" in text
    assert "epoch 2:" in text
    assert epochs_reported(job) == [1, 2] and job.read_status().state == "done"
