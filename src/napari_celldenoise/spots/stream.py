"""Spots of long movies in bounded memory: frames stream through worker processes in chunks,
localizations go to disk part by part.

A 10,000-frame movie with a million localizations neither fits comfortably as one array of
frames nor should it grow one list of tables. :func:`stream_spots` reads a lazy stack a chunk
of planes at a time, fits each chunk in one of a pool of worker processes (one per core, each
fitting with one numba thread; a small stack runs in this process) and appends each chunk's
table, in frame order, to a :class:`PartStore` on disk. It keeps only the sigmas of the clearly
significant fits, to find the PSF width the default rules classify around, as
:func:`~.pipeline.find_spots` does over the whole table.

Afterwards :func:`streamed_tables` gives the parts one at a time, classified, for a CSV written
part by part (:func:`~napari_celldenoise.io.spots_csv.write_spots_csv_parts`), and
:func:`load_streamed` the whole table for the Spots dock. Both give exactly what
:func:`~.pipeline.find_spots` gives for the same stack (tests/spots/test_stream.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..jobs import Done, Event, Log, Progress, ShouldStop, never_stop
from .config import SpotsConfig
from .pipeline import (
    candidates_of,
    check_stack,
    classifies,
    classify_part,
    flood_warning,
    locate_plane,
    plane_indices,
    psf_from_sure,
    sure_sigmas,
)
from .table import COLUMNS, column_dtype, empty_table

logger = logging.getLogger(__name__)

CHUNK_PLANES = 16
"""Planes fitted as one task of a worker: large enough that sending frames and tables costs
little beside the fits, small enough that Cancel waits at most a chunk's fit."""

SERIAL_BELOW = 200
"""Stacks of fewer planes run in this process: starting the workers costs a few seconds."""

WORKERS_ENV = "CELLDENOISE_SPOT_WORKERS"
"""Environment variable: the number of worker processes (default: one per usable core)."""


# ----------------------------------------------------------------------------- parts on disk
class PartStore:
    """Tables appended to a folder, one ``.npz`` per part (no pickles), read back in order.

    Use as a context manager: the folder is removed on leaving it, whatever happened, so a
    stopped or failed run leaves nothing behind.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.folder.mkdir(parents=False, exist_ok=True)
        self.n_parts = 0
        self.n_rows = 0

    @classmethod
    def beside(cls, path: str | os.PathLike) -> PartStore:
        """A new hidden folder beside ``path``, a temporary name of :mod:`..atomic` that names
        this process; the parts dead processes left there are removed first."""
        from ..atomic import TEMP_MARK, TEMP_PREFIX, owner_tag, remove_stale_temporaries

        target = Path(path)
        if not target.parent.is_dir():
            raise FileNotFoundError(f"{target.parent}: no such folder")
        remove_stale_temporaries(target.parent)
        prefix = f"{TEMP_PREFIX}{target.name}.{owner_tag()}-"
        return cls(tempfile.mkdtemp(prefix=prefix, suffix=f"{TEMP_MARK}s", dir=target.parent))

    @classmethod
    def temporary(cls) -> PartStore:
        """A new scratch folder in the system's temporary folder (:mod:`..atomic`'s names:
        a killed run's folder goes with the next run)."""
        from ..atomic import make_scratch_folder

        return cls(make_scratch_folder())

    def __enter__(self) -> PartStore:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _part(self, k: int) -> Path:
        return self.folder / f"part-{k:06d}.npz"

    def append(self, table: pd.DataFrame) -> None:
        """Write ``table`` (the pipeline's columns) as the next part."""
        arrays = {c: table[c].to_numpy() for c in COLUMNS}
        arrays["class"] = table["class"].to_numpy().astype(str)
        np.savez(self._part(self.n_parts), **arrays)
        self.n_parts += 1
        self.n_rows += len(table)

    def read(self, k: int) -> pd.DataFrame:
        """Part ``k`` as a table in the pipeline's columns and dtypes."""
        with np.load(self._part(k), allow_pickle=False) as z:
            return pd.DataFrame({c: z[c].astype(column_dtype(c)) for c in COLUMNS})

    def tables(self) -> Iterator[pd.DataFrame]:
        """Every part in order, one in memory at a time."""
        for k in range(self.n_parts):
            yield self.read(k)

    def load(self) -> pd.DataFrame:
        """All parts as one table, filled column by column (no second copy of the rows)."""
        n = self.n_rows
        columns = {c: np.empty(n, column_dtype(c)) for c in COLUMNS}
        at = 0
        for k in range(self.n_parts):
            with np.load(self._part(k), allow_pickle=False) as z:
                m = len(z["frame"])
                for c in COLUMNS:
                    columns[c][at : at + m] = z[c]
                at += m
        return pd.DataFrame(columns, copy=False) if n else empty_table()


# ----------------------------------------------------------------------------- the run
@dataclass(frozen=True, eq=False)
class Streamed:
    """A finished run: its parts on disk and what the whole table's classes need.

    Attributes
    ----------
    store
        The parts (frame order).
    axes
        The stack's axes (``TYX``...).
    n_planes, n_spots
        Planes fitted and localizations found.
    psf_sigma
        The PSF width the default rules classify around (None: no classification).
    seconds, workers
        Wall time of the run and worker processes used (1: this process).
    """

    store: PartStore
    axes: str
    n_planes: int
    n_spots: int
    psf_sigma: float | None
    seconds: float
    workers: int


def default_workers(n_planes: int) -> int:
    """Worker processes for a stack of ``n_planes``: one per usable core (or
    ``$CELLDENOISE_SPOT_WORKERS``); 1 (this process) for a short stack or inside a job's
    child process, where nothing nests."""
    from ..jobs.process import in_job_child

    value = os.environ.get(WORKERS_ENV)
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            logger.warning("%s=%r is not a number; using one worker per core", WORKERS_ENV, value)
    if n_planes < SERIAL_BELOW or in_job_child():
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores)


def stream_spots(
    stack,
    config: SpotsConfig,
    store: PartStore,
    *,
    axes: str | None = None,
    detect_on=None,
    workers: int | None = None,
    chunk: int = CHUNK_PLANES,
    should_stop: ShouldStop = never_stop,
) -> Iterator[Event]:
    """Detect and fit spots in every plane of ``stack`` into ``store``; yields ``Progress``
    per chunk, ``Done(Streamed)`` last (``stopped=True`` when ``should_stop`` asked: the
    store then holds the chunks finished before the stop, from the first plane on).

    Parameters
    ----------
    stack
        A lazy (dask) or in-memory stack in ADU; only ``workers * 2`` chunks of planes are
        read at a time.
    config, axes, detect_on
        As :func:`~.pipeline.find_spots`.
    store
        Where the chunks' tables go.
    workers
        Worker processes (default :func:`default_workers`); 1 fits in this process.
    chunk
        Planes per task.
    should_stop
        Polled between chunks and while waiting for one; a stop cancels the queued chunks
        and waits for the ones in progress (at most one chunk's fit).
    """
    shape = tuple(int(s) for s in stack.shape)
    axes = check_stack(shape, config, axes, detect_on)
    planes = plane_indices(shape)
    chunks = [planes[i : i + max(1, chunk)] for i in range(0, len(planes), max(1, chunk))]
    n_workers = default_workers(len(planes)) if workers is None else max(1, int(workers))
    n_workers = min(n_workers, len(chunks))
    pool = _start_pool(n_workers) if n_workers > 1 else None
    if pool is None and n_workers > 1:
        n_workers = 1
        yield Log("spots: fitting in this process (the worker processes could not start)")
    t0 = time.perf_counter()
    sure: list[np.ndarray] = []
    done_planes = 0
    candidates = 0
    stopped = False
    try:
        for part in _chunk_tables(
            stack, detect_on, chunks, axes, config, pool, 2 * n_workers, should_stop
        ):
            if part is None:
                stopped = True
                break
            table, n = part
            candidates += candidates_of([table])
            store.append(table)
            sure.append(sure_sigmas(table))
            done_planes += n
            rate = done_planes / max(time.perf_counter() - t0, 1e-9)
            yield Progress(
                done_planes,
                len(planes),
                f"plane {done_planes}/{len(planes)}: {store.n_rows:,} spots ({rate:.1f} planes/s)",
            )
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    dt = time.perf_counter() - t0
    psf = None
    if classifies(config) and store.n_rows:
        psf = psf_from_sure(np.concatenate(sure) if sure else np.empty(0), config.sigma)
    yield Log(
        f"{store.n_rows} spots in {done_planes} planes ({dt:.2f} s, "
        f"{n_workers} {'process' if n_workers == 1 else 'processes'})"
    )
    warning = flood_warning(candidates, store.n_rows, done_planes, config)
    if warning is not None:
        yield warning
    result = Streamed(store, axes, done_planes, store.n_rows, psf, dt, n_workers)
    yield Done(result, stopped=stopped)


def streamed_tables(streamed: Streamed, config: SpotsConfig) -> Iterator[pd.DataFrame]:
    """The parts of a run in order, classified as :func:`~.pipeline.find_spots` classifies
    the whole table, with its ``attrs``; at least one (empty) table."""
    any_part = False
    for table in streamed.store.tables():
        any_part = True
        yield classify_part(table, config, streamed.axes, streamed.psf_sigma)
    if not any_part:
        yield classify_part(empty_table(config.pixel_size), config, streamed.axes, None)


def load_streamed(streamed: Streamed, config: SpotsConfig) -> pd.DataFrame:
    """The whole table of a run, as :func:`~.pipeline.find_spots` returns it."""
    return classify_part(streamed.store.load(), config, streamed.axes, streamed.psf_sigma)


def find_spots_streamed(
    stack,
    config: SpotsConfig,
    *,
    axes: str | None = None,
    detect_on=None,
    workers: int | None = None,
    should_stop: ShouldStop = never_stop,
) -> Iterator[Event]:
    """:func:`~.pipeline.find_spots` for long movies (the Spots dock): the planes stream
    through the workers into a temporary store, the whole table is read back at the end;
    ``Done(table)`` last. Stopped, as :func:`~.pipeline.find_spots`, it returns the spots of
    the planes finished so far (``Done(table, stopped=True)``)."""
    with PartStore.temporary() as store:
        events = stream_spots(
            stack,
            config,
            store,
            axes=axes,
            detect_on=detect_on,
            workers=workers,
            should_stop=should_stop,
        )
        for event in events:
            if not isinstance(event, Done):
                yield event
                continue
            yield Progress(0, 0, f"reading {event.result.n_spots:,} spots back")
            yield Done(load_streamed(event.result, config), stopped=event.stopped)


# ----------------------------------------------------------------------------- the work
def _read_planes(stack, planes: list[tuple[int, ...]]) -> np.ndarray:
    """The planes at ``planes`` as one array: one slice read for consecutive frames of a
    ``TYX`` stack (one dask computation, not one per frame). A lazy stack is read in this
    thread: inside a dask.distributed worker (a batch run) the default scheduler would try to
    ship the open file to the cluster."""
    first, last = planes[0], planes[-1]
    if len(first) == 1 and last[0] - first[0] == len(planes) - 1:
        return _compute(stack[first[0] : last[0] + 1])
    return np.stack([_compute(stack[p]) for p in planes])


def _compute(array) -> np.ndarray:
    if hasattr(array, "dask"):
        return np.asarray(array.compute(scheduler="synchronous"))
    return np.asarray(array)


def locate_chunk(
    frames: np.ndarray,
    others: np.ndarray | None,
    planes: list[tuple[int, ...]],
    axes: str,
    config: SpotsConfig,
) -> pd.DataFrame:
    """The spots of the planes ``frames`` (at ``planes``) as one table (the worker's task)."""
    from .fit import read_variance

    rvar = read_variance(config.camera)
    parts = []
    for i, index in enumerate(planes):
        other = None if others is None else others[i]
        parts.append(locate_plane(frames[i], index, axes, config, detect_on=other, read_var=rvar))
    table = pd.concat(parts, ignore_index=True)[COLUMNS]
    table.attrs["candidates"] = candidates_of(parts)
    return table


def _chunk_tables(stack, detect_on, chunks, axes, config, pool, depth, should_stop):
    """``(table, n_planes)`` of each chunk in order; ``None`` once ``should_stop`` is True.
    At most ``depth`` chunks are read ahead for the pool, so the frames in memory stay few."""

    def task(planes):
        frames = _read_planes(stack, planes)
        others = None if detect_on is None else _read_planes(detect_on, planes)
        return frames, others, planes, axes, config

    if pool is None:
        for planes in chunks:
            if should_stop():
                yield None
                return
            yield locate_chunk(*task(planes)), len(planes)
        return
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    from ..jobs.errors import ChildProcessFailed

    pending: deque = deque()
    queue = iter(chunks)
    while True:
        # asked before each chunk, also when the next one is already done: a stop between two
        # results must not end the run as if the chunks not yet submitted were all there
        if should_stop():
            yield None
            return
        while len(pending) < depth:
            planes = next(queue, None)
            if planes is None:
                break
            pending.append((len(planes), pool.submit(locate_chunk, *task(planes))))
        if not pending:
            return
        n, future = pending[0]
        while not future.done():
            if should_stop():
                yield None
                return
            wait([future], timeout=0.2, return_when=FIRST_COMPLETED)
        pending.popleft()
        try:
            table = future.result()
        except BrokenProcessPool:
            raise ChildProcessFailed(
                "a spot-fitting worker process died (out of memory, or killed)"
            ) from None
        yield table, n


def _init_worker() -> None:
    """A worker fits with one numba thread: the pool already uses every core. It ignores
    Ctrl-C, which the terminal sends to the whole process group: the parent stops the pool
    (after the chunks in progress) and removes the parts."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import numba

        numba.set_num_threads(1)
    except (ImportError, ValueError):  # pragma: no cover - numba is a dependency
        pass


def _start_pool(n: int):
    """A pool of ``n`` spawned worker processes, or None when they cannot start here (a
    script without a ``__main__`` guard would run again in each)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from ..jobs.errors import MainModuleNotGuarded
    from ..jobs.main_guard import check_main_guard

    try:
        check_main_guard()
    except MainModuleNotGuarded as exc:
        logger.warning("spots: one process only: %s", exc)
        return None
    return ProcessPoolExecutor(n, mp_context=mp.get_context("spawn"), initializer=_init_worker)


__all__ = [
    "CHUNK_PLANES",
    "PartStore",
    "Streamed",
    "default_workers",
    "find_spots_streamed",
    "load_streamed",
    "locate_chunk",
    "stream_spots",
    "streamed_tables",
]
