"""A batch with ``gs://`` inputs and outputs on a real GCS server (fake-gcs-server) on
loopback, run by worker processes that were started before the server was (so that only the
settings the task takes along point them at it)."""

from __future__ import annotations

import shutil
import time

import pytest

from napari_celldenoise.batch.run import run_batch
from napari_celldenoise.io.spots_csv import read_spots_csv
from napari_celldenoise.jobs import run

from .conftest import write_frames

pytestmark = [pytest.mark.remote, pytest.mark.slow]


def test_gs_inputs_and_outputs_on_workers_started_before_the_server(
    recipe, client, tmp_path, gcs_server
):
    root = tmp_path / "gcs"
    for i in range(3):
        write_frames(root / "lab" / "raw" / f"cell_{i}.ome.tif", seed=20 + i)
    try:
        with gcs_server(root):
            deadline = time.monotonic() + 120  # a hang ends as a stop, and fails below
            result = run(
                run_batch(
                    recipe,
                    ["gs://lab/raw"],
                    "gs://lab/out",
                    client=client,
                    should_stop=lambda: time.monotonic() > deadline,
                )
            )
            assert result.cancelled == 0 and result.done == 3, result.records
            import gcsfs

            fs = gcsfs.GCSFileSystem(token="anon")
            names = sorted(p.rsplit("/", 1)[-1] for p in fs.ls("lab/out"))
            assert "manifest.csv" in names and "spots.csv" in names
            assert {f"cell_{i}.spots.csv" for i in range(3)} <= set(names)
            rec = next(r for r in result.records if r["input"].endswith("cell_1.ome.tif"))
            assert rec["outputs"][-1] == "gs://lab/out/cell_1.spots.csv" and rec["spots"] > 0
            with fs.open("lab/out/cell_1.spots.csv", "rb") as fh:
                local = tmp_path / "c1.spots.csv"
                local.write_bytes(fh.read())
            assert len(read_spots_csv(local)) == rec["spots"]
    finally:
        shutil.rmtree(root, ignore_errors=True)
