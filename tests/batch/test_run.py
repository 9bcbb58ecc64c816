"""Batch runs on a real LocalCluster (two worker processes): per-file outputs identical to the
steps run one by one, a corrupt file recorded with the reader's message, resume after an
interruption, a worker killed in mid-batch."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pandas as pd
import pytest

from napari_celldenoise.batch.run import FileDone, run_batch
from napari_celldenoise.io.spots_csv import read_spots_csv
from napari_celldenoise.jobs import Done, run
from napari_celldenoise.jobs.provenance import spec_of
from napari_celldenoise.jobs.run_spec import run_spec

from .conftest import make_tree, same_image, write_frames

pytestmark = pytest.mark.slow


def _manifest(outdir: Path) -> pd.DataFrame:
    text = {"outputs": str, "error": str, "worker": str}
    return pd.read_csv(outdir / "manifest.csv", dtype=text).fillna(
        {"outputs": "", "error": "", "worker": ""}
    )


def test_outputs_match_the_steps_run_one_by_one_and_a_corrupt_file_is_recorded(
    recipe, client, tmp_path
):
    src = make_tree(tmp_path / "in", n=4)
    (src / "b" / "broken.tif").write_bytes(b"II*\x00" + b"\x00" * 10)
    out = tmp_path / "out"
    result = run(run_batch(recipe, [str(src)], str(out), client=client))
    assert (result.total, result.done, result.failed) == (5, 4, 1)
    m = _manifest(out).set_index("input")
    bad = m.loc[str(src / "b" / "broken.tif")]
    assert bad["status"] == "failed" and bad["outputs"] == ""
    reader = "not a readable TIFF (no image found: broken header or truncated)"
    assert bad["error"] == f"{src / 'b' / 'broken.tif'}: {reader}"  # the reader's one line
    assert set(m["recipe_hash"]) == {recipe.hash}
    assert not list(out.rglob("broken*"))  # nothing written for it
    for i in range(4):
        rel = f"{'ab'[i % 2]}/cell_{i}"
        row = m.loc[str(src / f"{rel}.ome.tif")]
        assert row["status"] == "done" and row["worker"].startswith("tcp://127.0.0.1:")
        assert row["outputs"] == f"{out / rel}.filtered.ome.tif;{out / rel}.spots.csv"
        # the same steps run one by one, in this process
        ref = tmp_path / "ref" / rel
        ref.parent.mkdir(parents=True, exist_ok=True)
        for spec in recipe.plan(str(src / f"{rel}.ome.tif"), str(ref)):
            run(run_spec(spec))
        assert same_image(f"{out / rel}.filtered.ome.tif", f"{ref}.filtered.ome.tif")
        ours, theirs = read_spots_csv(f"{out / rel}.spots.csv"), read_spots_csv(f"{ref}.spots.csv")
        pd.testing.assert_frame_equal(ours, theirs)
        assert row["spots"] == len(ours) > 0
        assert row["good_fraction"] == pytest.approx((ours["class"] == "good").mean())
        # each output carries its spec: the chain is the recipe again
        assert spec_of(f"{out / rel}.spots.csv").input.path == f"{out / rel}.filtered.ome.tif"
    merged = pd.read_csv(out / "spots.csv")
    assert merged.columns[0] == "file" and merged["file"].nunique() == 4
    assert len(merged) == m["spots"].sum()
    summary = pd.read_csv(out / "summary.csv").set_index("input")
    done = summary[summary["status"] == "done"]
    assert (done["noise_after"] < done["noise_before"]).all()  # the filter lowered the noise
    assert done["median_uncertainty_nm"].between(0.1, 100).all()
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["input"] for x in lines) == sorted(m.index)


def test_resume_after_an_interruption_runs_only_the_missing_files(recipe, client, tmp_path):
    src = make_tree(tmp_path / "in", n=6)
    out = tmp_path / "out"
    finished: list[str] = []

    def note(event):
        if isinstance(event, FileDone) and event.record["status"] == "done":
            finished.append(event.record["input"])

    done = run(
        run_batch(
            recipe, [str(src)], str(out), client=client, should_stop=lambda: len(finished) >= 2
        ),
        on_event=note,
    )
    assert done.cancelled > 0 and done.done == len(finished) >= 2
    m = _manifest(out)
    assert set(m["status"]) == {"done", "cancelled"} and len(m) == 6  # consistent, complete
    before = {p: os.stat(p).st_mtime_ns for p in out.rglob("*.spots.csv")}
    again: list[str] = []
    result = run(
        run_batch(recipe, [str(src)], str(out), client=client, resume=True),
        on_event=lambda e: again.append(e.record["input"]) if isinstance(e, FileDone) else None,
    )
    assert result.skipped == len(finished) and result.done == 6 - len(finished)
    assert sorted(again) == sorted(set(m["input"]) - set(finished))
    for path, mtime in before.items():  # the files done before were not written again
        assert os.stat(path).st_mtime_ns == mtime
    assert set(_manifest(out)["status"]) == {"done"}
    # another recipe (other settings) does not count as done
    other = recipe.model_copy(update={"steps": recipe.steps[1:]})
    assert run(run_batch(other, [str(src)], str(out), client=client, resume=True)).skipped == 0


def test_a_worker_killed_mid_batch_has_its_files_retried(recipe, client, tmp_path):
    src = tmp_path / "in"
    for i in range(6):  # bigger files, so that a file is in flight when its worker dies
        write_frames(src / f"f{i}.ome.tif", seed=i, shape=(96, 96), frames=4)
    out = tmp_path / "out"
    killed = []

    def kill_one(event):
        if isinstance(event, FileDone) and not killed:
            pids = client.run(os.getpid)
            victim = next(p for a, p in pids.items() if a != event.record["worker"])
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    events = []
    result = run(
        run_batch(recipe, [str(src)], str(out), client=client),
        on_event=lambda e: (events.append(e), kill_one(e)),
    )
    assert killed and isinstance(events[-1], Done)
    m = _manifest(out)
    assert len(m) == 6 and set(m["status"]) <= {"done", "failed"}
    assert result.done == 6, m[m["status"] != "done"][["input", "error"]]
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]  # no half-written file
    for row in m.itertuples():
        for path in row.outputs.split(";"):
            assert Path(path).stat().st_size > 0
            assert spec_of(path) is not None  # complete files: provenance at the end reads
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it
