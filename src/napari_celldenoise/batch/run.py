"""Run a recipe on many files with dask.distributed: one task per file, a manifest, resume.

:func:`run_batch` is a job generator (events, ``Done(BatchResult)`` last) shared by
``celldenoise batch`` and the Batch dock. Without a scheduler address it starts a
``LocalCluster`` of worker processes (TensorFlow, when a recipe needs it, loads there and
never in the calling process); with one it uses that running scheduler, however it was
started (``dask scheduler``, dask-jobqueue on SLURM/PBS, Coiled...).

Each file is one ``client.submit`` with ``retries``: a task whose worker dies runs again on
another. A file that fails is recorded with its one-line error and the batch goes on. Every
output is written atomically (temporary name, then rename), so a killed worker leaves no
half-written file. A stop (Ctrl-C, the dock's Cancel) cancels the files not yet finished,
records them as ``cancelled`` and writes the manifest; ``resume`` then runs only those.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io.fs import filesystem, is_remote
from ..jobs import Done, Event, Log, Progress, ShouldStop, never_stop
from .inputs import BatchInput, expand_inputs
from .manifest import Manifest, join, read_records
from .recipe import Recipe, RecipeError
from .results import write_results

logger = logging.getLogger(__name__)

RETRIES = 2
"""How many times a file is re-run after its worker died."""

STOP_GRACE = 60.0
"""Seconds a stop waits for the files in progress, so that their outputs are complete and
recorded; a file still running then is recorded as cancelled (and runs again on resume)."""


@dataclass(frozen=True)
class ClusterOptions:
    """Where a batch runs: a running scheduler's address, or a local cluster's size."""

    scheduler: str | None = None
    workers: int | None = None
    threads_per_worker: int = 1
    memory_limit: str | None = None


@dataclass(frozen=True, eq=False)
class FileDone:
    """A file of the batch finished (done, failed or cancelled): its manifest record."""

    record: dict[str, Any]


@dataclass(frozen=True, eq=False)
class BatchResult:
    """What a batch did: counts, where the manifest is, the dashboard's address."""

    outdir: str
    total: int
    done: int
    failed: int
    skipped: int
    cancelled: int
    recipe_hash: str
    dashboard: str | None
    seconds: float
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def manifest(self) -> str:
        return join(self.outdir, "manifest.csv")


def make_client(options: ClusterOptions, *, tensorflow: bool = False):
    """A dask ``Client`` (and the ``LocalCluster`` it owns, or None) for ``options``."""
    from distributed import Client, LocalCluster

    if options.scheduler:
        try:
            return Client(options.scheduler, timeout="20s"), None
        except (OSError, TimeoutError) as exc:
            raise RecipeError(f"--scheduler {options.scheduler}: cannot connect ({exc})") from None
    from ..jobs.main_guard import check_main_guard

    check_main_guard()  # local workers are spawned: an unguarded script would run again there
    kwargs: dict[str, Any] = {
        "n_workers": options.workers,
        "threads_per_worker": options.threads_per_worker,
        "processes": True,
        "dashboard_address": ":0",
        "silence_logs": logging.ERROR,
    }
    if options.memory_limit:
        kwargs["memory_limit"] = options.memory_limit
    if tensorflow:  # one network per worker process at a time
        kwargs["resources"] = {"tf": 1}
    with worker_malloc():
        cluster = LocalCluster(**{k: v for k, v in kwargs.items() if v is not None})
    client = Client(cluster)
    from .interrupts import LeaveInterruptsToTheBatch

    client.register_plugin(LeaveInterruptsToTheBatch())  # Ctrl-C stops files, not workers
    return client, cluster


WORKER_MALLOC = {"MALLOC_MMAP_THRESHOLD_": 4 << 20, "MALLOC_TRIM_THRESHOLD_": 16 << 20}
"""glibc's allocator settings for local workers (bytes): arrays up to 4 MiB (a 512 x 512
float64 frame, a fit's boxes) are reused from the heap, larger ones (a chunk of planes) are
mapped and given back when freed, and at most 16 MiB of free heap is kept."""


def worker_malloc():
    """A dask config context in which new local workers start with :data:`WORKER_MALLOC`
    instead of dask's ``MALLOC_TRIM_THRESHOLD_=65536`` (``distributed.nanny.pre-spawn-environ``).

    With dask's setting glibc fixes its mmap threshold at 128 KiB (mallopt(3)): every array
    above that is mapped, faulted in page by page and unmapped again. Measured on the batch
    benchmark's recipe (Gaussian filter, spots on 10 planes of 512 x 512) in a worker with a
    1 GB limit: 1,115 ms CPU a file with dask's setting, 651 ms with these; on a 0.54 GB stack
    of 1024 x 1024 planes read lazily, 68 s and a peak RSS of 789 MB with dask's, 54 s and
    743 MB with these. glibc's adaptive default (no setting) was as slow in that run and let a
    worker outgrow a 1 GB limit on a 2 GB stack. The nanny reads the settings when it is made,
    so restarted workers keep them; workers started by ``dask worker`` take them from a config
    file (docs/batch.md)."""
    import dask

    return dask.config.set(
        {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_MALLOC.items()}
    )


def _tf_resources(client) -> dict[str, int] | None:
    """``{"tf": 1}`` when the cluster's workers declare a ``tf`` resource, else None."""
    workers = client.scheduler_info().get("workers", {})
    if any("tf" in (w.get("resources") or {}) for w in workers.values()):
        return {"tf": 1}
    return None


def _out_base(outdir: str, item: BatchInput) -> str:
    base = join(outdir, *item.rel.split("/"))
    if not is_remote(base):
        Path(base).parent.mkdir(parents=True, exist_ok=True)
    return base


def _finished(rec: dict[str, Any], item: BatchInput, recipe_hash: str) -> bool:
    """Whether an earlier record shows ``item`` done with this recipe, its outputs present."""
    if rec.get("status") != "done" or rec.get("recipe_hash") != recipe_hash:
        return False
    if rec.get("size") != item.size:
        return False
    for out in rec.get("outputs") or []:
        fs, inner = filesystem(out)
        if not fs.exists(inner):
            return False
    return bool(rec.get("outputs"))


def run_batch(
    recipe: Recipe,
    inputs: list[str],
    outdir: str,
    *,
    options: ClusterOptions | None = None,
    resume: bool = False,
    client=None,
    should_stop: ShouldStop = never_stop,
) -> Iterator[Event]:
    """Run ``recipe`` on every image named by ``inputs``, writing under ``outdir``.

    Yields ``Log`` lines (the dashboard's address first), ``Progress`` per finished file and a
    :class:`FileDone` per file; ``Done(BatchResult)`` last (``stopped=True`` after a stop).
    ``client`` is a dask ``Client`` to use as it is (else one is made from ``options``).

    Raises
    ------
    RecipeError
        For inputs that name no image, or an output folder that cannot be made.
    """
    from distributed import wait

    start = time.monotonic()
    if not is_remote(outdir):
        Path(outdir).mkdir(parents=True, exist_ok=True)
    items = expand_inputs(inputs, exclude=outdir)
    rhash = recipe.hash
    earlier = read_records(outdir) if resume else {}
    manifest = Manifest(outdir, keep=earlier)
    todo = [it for it in items if not _finished(earlier.get(it.path, {}), it, rhash)]
    skipped = len(items) - len(todo)
    cluster = None
    own = client is None
    if own:
        client, cluster = make_client(
            options or ClusterOptions(), tensorflow=recipe.uses_tensorflow
        )
    dashboard = getattr(client, "dashboard_link", None)
    counts = {"done": 0, "failed": 0, "cancelled": 0}
    stopped = False
    try:
        n_workers = len(client.scheduler_info().get("workers", {}))
        yield Log(f"dask dashboard: {dashboard}" if dashboard else "dask: no dashboard")
        yield Log(
            f"{len(items)} files, {skipped} already done, {len(todo)} to run on "
            f"{n_workers} workers (recipe {rhash})"
        )
        resources = _tf_resources(client) if recipe.uses_tensorflow else None
        from .task import process_file, storage_env

        env = storage_env()

        stop_flag = f"celldenoise-stop-{uuid.uuid4().hex}"  # a dask Event: set on a stop
        futures = {}
        for i, item in enumerate(todo):
            specs = [s.to_dict() for s in recipe.plan(item.path, _out_base(outdir, item))]
            record = {"input": item.path, "size": item.size, "recipe_hash": rhash}
            fut = client.submit(
                process_file,
                specs,
                record,
                stop_flag,
                env,
                key=f"celldenoise-{rhash}-{i}-{abs(hash(item.path)) % 10**8}",
                retries=RETRIES,
                pure=False,
                resources=resources,
            )
            futures[fut] = item
        total = len(todo)
        finished = 0
        yield Progress(0, total, f"0 of {total} files")
        pending = set(futures)
        while pending:
            if should_stop():
                stopped = True
                break
            try:
                done_set, pending = wait(pending, timeout=0.5, return_when="FIRST_COMPLETED")
            except TimeoutError:
                continue
            for fut in done_set:
                rec = _record_of(fut, futures[fut], rhash)
                manifest.add(rec)
                counts[rec["status"]] += 1
                finished += 1
                yield FileDone(rec)
            yield Progress(
                finished, total, f"{finished} of {total} files ({counts['failed']} failed)"
            )
        if stopped:
            yield from _stop(client, stop_flag, pending, futures, rhash, manifest, counts)
    finally:
        manifest.close()
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
    records = list(manifest.records.values())
    if not stopped:
        yield from write_results(outdir, records)
    result = BatchResult(
        outdir=outdir,
        total=len(items),
        done=counts["done"],
        failed=counts["failed"],
        skipped=skipped,
        cancelled=counts["cancelled"],
        recipe_hash=rhash,
        dashboard=dashboard,
        seconds=time.monotonic() - start,
        records=records,
    )
    yield Done(result, stopped=stopped)


def _stop(client, stop_flag: str, pending, futures, rhash, manifest, counts) -> Iterator[Event]:
    """Stop the batch: the files not started see the flag and do nothing (recorded as
    cancelled by the task itself); those in progress finish, for :data:`STOP_GRACE` seconds
    at most, so that every record tells what is on disk."""
    from distributed import Event as DaskEvent
    from distributed import wait

    try:
        DaskEvent(stop_flag, client=client).set()
        yield Log("stopping: the files in progress finish first")
        wait(list(pending), timeout=STOP_GRACE)
    except (OSError, TimeoutError):  # the scheduler is gone, or a file is still running
        pass
    for fut in pending:
        item = futures[fut]
        if fut.done():
            rec = _record_of(fut, item, rhash)
        else:
            fut.cancel()
            rec = {
                "input": item.path,
                "size": item.size,
                "recipe_hash": rhash,
                "status": "cancelled",
                "outputs": [],
                "error": f"stopped while it ran (still running after {STOP_GRACE:g} s)",
            }
        manifest.add(rec)
        counts[rec["status"]] += 1
        yield FileDone(rec)


def _record_of(fut, item: BatchInput, rhash: str) -> dict[str, Any]:
    try:
        return fut.result()
    except Exception as exc:  # the worker died more than RETRIES times, or the task was lost
        text = " ".join(str(exc).split()) or type(exc).__name__
        return {
            "input": item.path,
            "size": item.size,
            "recipe_hash": rhash,
            "status": "failed",
            "outputs": [],
            "error": f"{type(exc).__name__}: {text}",
            "seconds": None,
            "worker": "",
        }


__all__ = [
    "RETRIES",
    "STOP_GRACE",
    "BatchResult",
    "ClusterOptions",
    "FileDone",
    "make_client",
    "run_batch",
]
