"""Temporary parts (``.NAME.*.part`` files and folders) never outlive their writer.

Every writer that streams parts (the atomic writes, the spot CSV, the spot parts beside a
streamed table, classical streaming, batch steps) removes them on success, on an error and
on a stop; a process killed with SIGKILL cannot, and the next run in that folder removes
the parts whose owner is dead (its name says who: :func:`napari_celldenoise.atomic.owner_tag`).
The kills are real: a child process writing, its process group SIGKILLed mid-write.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_celldenoise.atomic import (
    atomic_path,
    atomic_write,
    is_temporary,
    owner_tag,
    remove_stale_temporaries,
)
from napari_celldenoise.io.spots_csv import read_spots_csv, write_spots_csv_parts
from napari_celldenoise.jobs import Done
from napari_celldenoise.jobs.run_spec import run_spec
from napari_celldenoise.jobs.specs import classical_spec, spots_spec
from napari_celldenoise.spots.config import SpotsConfig
from napari_celldenoise.spots.simulate import simulate_spots
from napari_celldenoise.spots.stream import PartStore

from ._procs import cli_env


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"frame": np.zeros(n, int), "y": rng.uniform(0, 9, n), "x": rng.uniform(0, 9, n)}
    )


# ------------------------------------------------------------ success, error, stop


def test_a_part_names_its_owner_and_goes_on_success_error_and_stop(tmp_path):
    target = tmp_path / "out.csv"
    with atomic_path(target) as tmp:
        assert is_temporary(tmp.name) and f".out.csv.{owner_tag()}-" in tmp.name
        tmp.write_text("a\n")
    assert hidden(tmp_path) == [] and target.read_text() == "a\n"

    def parts(fail_after: int, error: type[BaseException]):
        yield _table(5)
        if fail_after:
            yield _table(5, 1)
        raise error("the run stopped")

    for error in (OSError, GeneratorExit, KeyboardInterrupt):  # a failed read, a stop, Ctrl-C
        with pytest.raises(error):
            write_spots_csv_parts(tmp_path / "spots.csv", parts(1, error))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_the_spot_parts_folder_goes_on_success_and_on_error(tmp_path):
    target = tmp_path / "spots.csv"
    with PartStore.beside(target) as store:
        assert is_temporary(store.folder.name) and owner_tag() in store.folder.name
        np.save(store.folder / "part-0.npy", np.arange(4))
    assert hidden(tmp_path) == []
    with pytest.raises(RuntimeError), PartStore.beside(target) as store:
        np.save(store.folder / "part-0.npy", np.arange(4))
        raise RuntimeError("a fit failed")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------ killed writers

_WRITE_AND_HANG = """
import sys, time
from napari_celldenoise.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half a table")
    print(tmp, flush=True)
    time.sleep(600)
"""

_RUN_SPEC_SLOWLY = """
import json, sys, time
from napari_celldenoise.jobs.run_spec import run_spec
from napari_celldenoise.jobs.specs import parse_spec

def slowly():  # a slow machine: the run is still writing when the kill comes
    time.sleep(0.05)
    return False

for _ in run_spec(parse_spec(json.loads(sys.argv[1])), should_stop=slowly):
    pass
"""


def _start(code: str, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=cli_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group: the kill takes its workers too
    )


def _kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()


def _kill_when_parts_appear(proc: subprocess.Popen, folder: Path, timeout: float = 120) -> list:
    """SIGKILL ``proc`` as soon as a temporary part is in ``folder``; returns the parts."""
    start = time.monotonic()
    try:
        while time.monotonic() - start < timeout and proc.poll() is None:
            parts = [p for p in folder.iterdir() if is_temporary(p.name)]
            if parts:
                time.sleep(0.05)  # a little into the writing
                return parts
            time.sleep(0.005)
        pytest.fail(f"no part appeared in {folder} (exit code {proc.poll()})")
    finally:
        if proc.poll() is None:
            _kill(proc)


def test_a_killed_writers_part_goes_with_the_next_write_a_live_ones_stays(tmp_path):
    killed = _start(_WRITE_AND_HANG, str(tmp_path / "a.csv"))
    alive = _start(_WRITE_AND_HANG, str(tmp_path / "b.csv"))
    try:
        stale, kept = Path(killed.stdout.readline().strip()), Path(alive.stdout.readline().strip())
        _kill(killed)
        assert stale.read_bytes() == b"half a table"  # a SIGKILL leaves it behind
        other_host = tmp_path / f".c.csv.{killed.pid}-1-00000000-abcd.part"
        old_style = tmp_path / ".d.csv.0123abcd.part"  # no owner in its name: kept
        for path in (other_host, old_style):
            path.write_bytes(b"?")
        atomic_write(tmp_path / "e.csv", b"x,y\n")
        assert not stale.exists()
        assert kept.is_file() and other_host.is_file() and old_style.is_file()
    finally:
        _kill(alive)
    assert remove_stale_temporaries(tmp_path) == [kept]  # its owner is dead now too


def _movie(path: Path, frames: int) -> str:
    movie, _ = simulate_spots(frames, (32, 32), n_spots=4, background=(5.0, 30.0), seed=3)
    tifffile.imwrite(path, movie.astype(np.uint16), ome=True, metadata={"axes": "TYX"})
    return str(path)


def test_a_killed_streamed_spots_run_leaves_parts_the_next_run_removes(tmp_path):
    src = _movie(tmp_path / "movie.ome.tif", 96)
    out = tmp_path / "out"
    out.mkdir()
    spec = spots_spec(src, str(out / "spots.csv"), SpotsConfig())
    proc = _start(_RUN_SPEC_SLOWLY, json.dumps(spec.model_dump(mode="json")),
                  CELLDENOISE_SPOT_WORKERS="1")  # fmt: skip
    parts = _kill_when_parts_appear(proc, out)
    assert all(p.exists() for p in parts) and not (out / "spots.csv").exists()
    events = list(run_spec(spec))  # the next run, here
    assert isinstance(events[-1], Done) and not events[-1].stopped
    assert sorted(p.name for p in out.iterdir()) == ["spots.csv", "spots.csv.provenance.json"]
    assert len(read_spots_csv(out / "spots.csv")) > 0


def _filter_spec(tmp_path: Path) -> tuple[object, Path]:
    src = tmp_path / "in.ome.tif"
    data = np.random.default_rng(0).poisson(40.0, (48, 64, 64)).astype(np.uint16)
    tifffile.imwrite(src, data, ome=True, metadata={"axes": "ZYX"})
    out = tmp_path / "out"
    out.mkdir()
    return classical_spec(str(src), str(out / "f.ome.tif"), "gaussian", {"sigma": 1.0}), out


def test_a_killed_streamed_filter_leaves_a_part_the_next_run_removes(tmp_path):
    spec, out = _filter_spec(tmp_path)
    proc = _start(
        _RUN_SPEC_SLOWLY, json.dumps(spec.model_dump(mode="json")), CELLDENOISE_LAZY_LIMIT="0"
    )  # fmt: skip  (block by block)
    parts = _kill_when_parts_appear(proc, out)
    assert all(p.exists() for p in parts)
    events = list(run_spec(spec))
    assert isinstance(events[-1], Done) and not events[-1].stopped
    assert [p.name for p in out.iterdir()] == ["f.ome.tif"]  # its provenance is inside it


def test_a_batch_step_removes_the_parts_of_a_killed_worker(tmp_path):
    from napari_celldenoise.batch.task import process_file

    spec, out = _filter_spec(tmp_path)
    proc = _start(_RUN_SPEC_SLOWLY, json.dumps(spec.model_dump(mode="json")),
                  CELLDENOISE_LAZY_LIMIT="0")  # fmt: skip
    parts = _kill_when_parts_appear(proc, out)
    assert all(p.exists() for p in parts)
    (out / ".f.ome.tif.0123abcd.part").write_bytes(b"?")  # an older version's: no owner
    record = process_file([spec.model_dump(mode="json")], {"file": "in.ome.tif"})
    assert record["status"] == "done", record
    assert hidden(out) == []
