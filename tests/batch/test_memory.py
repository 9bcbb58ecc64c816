"""A worker with a memory limit reads a large stack plane by plane: a file over its share of the
limit opens lazily, every step of the recipe runs on it (the stop flag asked all along), and the
worker's memory grows by far less than the stack would need if read whole."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from napari_celldenoise.batch.recipe import recipe_from_specs
from napari_celldenoise.batch.run import ClusterOptions, FileDone, make_client, run_batch
from napari_celldenoise.io import ImageData, read_image, write_ome_tiff
from napari_celldenoise.jobs import run
from napari_celldenoise.jobs.run_spec import run_spec
from napari_celldenoise.jobs.specs import classical_spec

pytestmark = pytest.mark.slow

PLANES, SIDE = 1300, 256
"""170 MB of uint16 in small planes: over a 1 GB worker's lazy share (125 MB, ``LAZY_SHARE``);
read whole, a filter step would hold the stack, its float copy and its result (over 800 MB).
Small planes keep the step's fixed cost (the noise estimate on 8 planes) small beside it."""


def _anonymous_memory(pid: int) -> int:
    """Bytes of the process's own (anonymous) resident memory: its arrays, not the pages of
    files it maps (a memory-mapped read or write is backed by the file, not by the worker)."""
    with open(f"/proc/{pid}/status") as f:
        line = next(t for t in f if t.startswith("RssAnon:"))
    return int(line.split()[1]) * 1024


def _peak_growth(pid: int, done: threading.Event, out: list[int]) -> None:
    base = peak = _anonymous_memory(pid)
    while not done.is_set():
        try:
            peak = max(peak, _anonymous_memory(pid))
        except OSError:  # the worker died (its task is then retried elsewhere)
            break
        time.sleep(0.05)
    out.append(peak - base)


def test_a_large_stack_goes_plane_by_plane_in_a_worker_with_a_memory_limit(tmp_path):
    pytest.importorskip("distributed")
    rng = np.random.default_rng(7)
    data = rng.poisson(100, (PLANES, SIDE, SIDE)).astype(np.uint16)
    src = tmp_path / "in" / "big.ome.tif"
    src.parent.mkdir()
    write_ome_tiff(src, ImageData(data, "TYX", scale={"Y": 0.1, "X": 0.1}))
    del data
    spec = classical_spec("x.ome.tif", "x.gauss.ome.tif", "gaussian", {"sigma": 1.0})
    recipe = recipe_from_specs([spec])
    client, cluster = make_client(ClusterOptions(workers=1, memory_limit="1GB"))
    try:  # the step once on a small file in the worker, outside a batch: its imports and
        # compiles are not the step's memory, and the batch's first task stays the first
        small = tmp_path / "warm.ome.tif"
        write_ome_tiff(small, ImageData(rng.poisson(100, (2, 64, 64)).astype(np.uint16), "TYX"))
        warm = classical_spec(str(small), str(tmp_path / "warm.out.ome.tif"), "gaussian", {})
        client.submit(lambda: run(run_spec(warm)) and None, pure=False).result()
        (pid,) = client.run(lambda: __import__("os").getpid()).values()
        done, growth = threading.Event(), []
        sampler = threading.Thread(target=_peak_growth, args=(pid, done, growth))
        sampler.start()
        try:
            out = str(tmp_path / "out")
            events = list(run_batch(recipe, [str(src.parent)], out, client=client))
        finally:
            done.set()
            sampler.join()
    finally:
        client.close()
        cluster.close()
    (record,) = [e.record for e in events if isinstance(e, FileDone)]
    assert record["status"] == "done", record.get("error")
    (output,) = record["outputs"]
    local = tmp_path / "local.ome.tif"
    run(run_spec(classical_spec(str(src), str(local), "gaussian", {"sigma": 1.0})))
    assert np.array_equal(np.asarray(read_image(output).data), np.asarray(read_image(local).data))
    stack_mb = PLANES * SIDE * SIDE * 2 / 1e6
    print(f"worker memory growth {growth[0] / 1e6:.0f} MB for a {stack_mb:.0f} MB stack")
    assert growth[0] < stack_mb * 1e6, f"{growth[0] / 1e6:.0f} MB"


def test_local_workers_start_with_the_batch_malloc_settings():
    """dask's 64 KiB ``MALLOC_TRIM_THRESHOLD_`` fixes glibc's mmap threshold and made the
    batch recipe ~1.7x slower per file in a worker: the local workers start with
    ``WORKER_MALLOC`` instead, keep dask's other settings, and the caller's dask config is
    left as it was."""
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")
    from napari_celldenoise.batch.run import WORKER_MALLOC

    before = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    client, cluster = make_client(ClusterOptions(workers=1))
    names = [*WORKER_MALLOC, "OMP_NUM_THREADS"]
    try:
        (worker,) = client.run(lambda: {k: os.environ.get(k) for k in names}).values()
    finally:
        client.close()
        cluster.close()
    assert worker == {
        "MALLOC_MMAP_THRESHOLD_": str(4 << 20),
        "MALLOC_TRIM_THRESHOLD_": str(16 << 20),
        "OMP_NUM_THREADS": str(before["OMP_NUM_THREADS"]),
    }
    assert dict(dask.config.get("distributed.nanny.pre-spawn-environ")) == before
