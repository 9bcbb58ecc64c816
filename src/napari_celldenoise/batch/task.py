"""The work of one file of a batch, as it runs on a dask worker.

:func:`process_file` replays a recipe's planned specs on one file through
:func:`~..jobs.run_spec.run_spec` and returns the file's manifest record. It never raises for
a bad file (:data:`FILE_ERRORS`): the reader's or the job's one-line message becomes the
record's ``error``. Other failures (a dropped connection) raise, and dask runs the task again
(``client.submit(..., retries=...)``); a task whose worker dies is rescheduled by the scheduler
on another worker.

Trained networks are loaded once per worker process (:func:`install_model_cache`), and
TensorFlow is imported only here, in the worker processes, never in the process that submits.

A task keeps within its worker (:func:`fit_within_worker`): the spot fitter uses the worker's
threads and no process pool of its own, and in a worker with a memory limit files larger than
:data:`LAZY_SHARE` of it open lazily, so that every step reads them plane by plane or chunk by
chunk. A stop of the batch reaches a step in progress (:class:`StopFlag`): the step ends at its
next plane or chunk, writes nothing, and the file is recorded ``"cancelled"``.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..io.fs import filesystem, is_remote
from ..jobs import Done

FILE_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # ImageReadError, ImageWriteError, SpecError, ConfigError, bad values
    KeyError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    PermissionError,
)
"""Failures that running the file again would repeat: recorded at once. Any other exception
(a lost connection to a bucket, memory) is raised, so that dask retries the task."""

_CACHE_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str, float], Any] = {}


def install_model_cache() -> None:
    """Keep the Keras models built from model folders for the life of this worker process.

    Wraps :func:`..deep.n2v.build_from_folder` with a cache keyed by the folder's path, the
    weights chosen and the weights file's modification time (a retrained folder is reloaded).
    """
    from ..deep import n2v

    if getattr(n2v.build_from_folder, "_batch_cache", False):
        return
    build = n2v.build_from_folder

    def cached(folder, info, which="best"):
        weights = folder.weights(which)
        key = (str(Path(str(weights)).resolve()), which, os.path.getmtime(weights))
        with _CACHE_LOCK:
            if key not in _MODELS:
                _MODELS[key] = build(folder, info, which)
            return _MODELS[key]

    cached._batch_cache = True  # type: ignore[attr-defined]
    n2v.build_from_folder = cached


def models_loaded() -> int:
    """How many networks this worker process holds (for tests and the dashboard)."""
    return len(_MODELS)


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"


def _remove_stale_parts(path: str) -> None:
    """Delete this target's temporary parts that name no owner (written by older versions,
    ``.NAME.XXXXXXXX.part``). Parts that name a dead owner go with the step's own write
    (:func:`..atomic.atomic_path` removes them from the folder it writes into)."""
    if is_remote(path):
        return
    p = Path(path)
    if p.parent.is_dir():
        for stale in p.parent.glob(f".{p.name}.*.part"):
            if re.fullmatch(rf"\.{re.escape(p.name)}\.[0-9a-f]{{8}}\.part", stale.name):
                stale.unlink(missing_ok=True)


STORAGE_ENV = ("STORAGE_EMULATOR_HOST", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT")
"""Settings of the submitting process that point gcsfs at a storage server (a local GCS
emulator): a task takes them along, since workers started before they were set (or on other
machines) would otherwise ask the real GCS, which they may never reach (the task hangs on its
first ``gs://`` read)."""


def storage_env() -> dict[str, str]:
    """The :data:`STORAGE_ENV` settings of this process that are set."""
    return {k: os.environ[k] for k in STORAGE_ENV if k in os.environ}


LAZY_SHARE = 8
"""In a worker with a memory limit, files over ``limit / LAZY_SHARE`` bytes open lazily: an
in-memory step holds the stack, its float copy and its result at once."""

STOP_POLL = 0.5
"""Seconds between two asks of the batch's stop flag while a step runs (each is a round trip to
the scheduler)."""


def fit_within_worker() -> None:
    """Size this task's numeric work to its dask worker (nothing outside a worker).

    The spot fitter would otherwise start a pool of processes and one numba thread per core in
    every worker, and two workers on two cores would then run four fits at once; and a stack
    that fits the reader's default lazy limit but not the worker's memory would be read whole.
    """
    from ..config import ReaderConfig
    from ..spots.stream import WORKERS_ENV

    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return
    threads = max(1, int(getattr(worker, "state", worker).nthreads))
    os.environ.setdefault(WORKERS_ENV, "1")  # the cluster's workers already fill the cores
    import numba

    numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS, threads)))  # this thread
    limit = getattr(getattr(worker, "memory_manager", None), "memory_limit", None)
    if limit:
        lazy = min(ReaderConfig().lazy_limit, int(limit) // LAZY_SHARE)
        os.environ["CELLDENOISE_LAZY_LIMIT"] = str(lazy)
    _compute_lazy_reads_here(worker)


def _compute_lazy_reads_here(worker) -> None:
    """A lazily read (dask) image computes in the task's own thread: inside a dask worker dask
    would otherwise send each plane's read to the scheduler as a graph of its own (which cannot
    even be serialised, and would hold the stack in the cluster's memory).

    Set for the worker process, not as a context around a task: the worker's client, made on
    the first ask of the stop flag, sets ``scheduler="dask.distributed"`` as it starts (so it is
    made first here), and a context entered and left by two task threads at once would undo
    the other's setting.
    """
    import dask

    worker.client  # noqa: B018 - made now, so that its default scheduler comes before ours
    if dask.config.get("scheduler", None) != "synchronous":
        dask.config.set(scheduler="synchronous")


class StopFlag:
    """``should_stop`` of a step in a worker: whether the batch's dask ``Event`` is set, asked
    at most every :data:`STOP_POLL` seconds (True stays True)."""

    def __init__(self, name: str | None, poll: float = STOP_POLL):
        self.name = name
        self.poll = poll
        self._set = False
        self._last = -float("inf")

    def __call__(self) -> bool:
        if self._set or self.name is None:
            return self._set
        now = time.monotonic()
        if now - self._last >= self.poll:
            self._last = now
            self._set = _stopped(self.name)
        return self._set

    def now(self) -> bool:
        """Ask at once (between steps)."""
        self._last = -float("inf")
        return self()


def process_file(
    specs: list[dict],
    record: dict[str, Any],
    stop_flag: str | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``specs`` (the recipe planned for one file, as JSON data) and complete ``record``.

    Returns ``record`` with ``status`` ``"done"`` or ``"failed"``, ``seconds``, ``worker``,
    ``outputs``, ``error`` and the per-file summary (spot count, good fraction, median
    uncertainty in nm, noise sigma before and after a denoising step). ``stop_flag`` names a
    dask ``Event``: once it is set (the batch was stopped), a file not yet started is
    returned ``"cancelled"`` without running, and a step in progress stops at its next plane
    or chunk, writing nothing (the outputs of the steps before it stay listed).
    ``env`` is the submitting process's :func:`storage_env`, set here before any read.
    """
    os.environ.update(env or {})
    fit_within_worker()
    from ..jobs.run_spec import run_spec
    from ..jobs.specs import parse_spec

    logging.getLogger("tifffile").setLevel(logging.ERROR)  # its error is the record's
    start = time.monotonic()
    out = dict(record, worker=_worker_name(), outputs=[], error="")
    parsed = [parse_spec(s) for s in specs]
    if any(s.kind == "predict" for s in parsed):
        install_model_cache()
    out["status"] = "done"
    stop = StopFlag(stop_flag)
    try:
        _run_steps(parsed, out, stop, run_spec)
    except FILE_ERRORS as exc:  # the file's own fault: its record, and the batch goes on
        out["status"] = "failed"
        out["error"] = _one_line(exc)
    out["seconds"] = round(time.monotonic() - start, 3)
    return out


def _run_steps(parsed, out: dict[str, Any], stop: StopFlag, run_spec) -> None:
    """Run the specs in order into ``out`` (outputs, summary; a stop ends them)."""
    for k, spec in enumerate(parsed):
        if stop.now():  # the outputs of the steps before stay listed
            where = f"after step {k} of {len(parsed)}" if k else "before it ran"
            out.update(status="cancelled", error=f"stopped {where}")
            break
        for target in (spec.output, spec.output + ".provenance.json"):
            _remove_stale_parts(target)
        result, stopped = _run_step(spec, run_spec, stop)
        if stopped:  # the step wrote nothing
            where = f"in step {k + 1} of {len(parsed)} ({spec.kind})"
            out.update(status="cancelled", error=f"stopped {where}")
            break
        out["outputs"].append(spec.output)
        out.update(summarise(spec, result))


def _stopped(stop_flag: str | None) -> bool:
    if stop_flag is None:
        return False
    from distributed import Event

    try:
        return Event(stop_flag).is_set()
    except ValueError:  # not inside a dask worker (a direct call): nothing can stop it
        return False


def _finish(job) -> tuple[Any, bool]:
    """Run a job to its end: ``(result, stopped)``."""
    from ..jobs import run

    last: list[Done] = []
    result = run(job, on_event=lambda e: last.append(e) if isinstance(e, Done) else None)
    return result, last[-1].stopped


def _run_step(spec, run_spec, should_stop) -> tuple[Any, bool]:
    """``(result, stopped)`` of one step."""
    if spec.kind != "spots" or not is_remote(spec.output):
        return _finish(run_spec(spec, should_stop))
    # spot tables are written locally, then uploaded with their provenance (naming the URL)
    import json

    with tempfile.TemporaryDirectory(prefix="celldenoise-batch-") as tmp:
        local = str(Path(tmp) / "spots.csv")
        result, stopped = _finish(run_spec(spec.model_copy(update={"output": local}), should_stop))
        if stopped:
            return result, True
        side = Path(local + ".provenance.json")
        prov = json.loads(side.read_text(encoding="utf-8"))
        prov["spec"]["output"] = spec.output
        side.write_text(json.dumps(prov, indent=1) + "\n", encoding="utf-8")
        fs, inner = filesystem(spec.output)
        fs.put_file(str(side), inner + ".provenance.json")  # the table never lacks its own
        fs.put_file(local, inner)
    return result, False


def summarise(spec, result) -> dict[str, Any]:
    """The per-file summary facts of one step's result."""
    if spec.kind == "spots" and result is not None:
        facts = result.facts
        n = facts.n_spots
        good = facts.n_good / n if n else None
        unc = facts.median_uncertainty
        unc = unc * result.pixel_size if unc is not None else None
        return {"spots": n, "good_fraction": good, "median_uncertainty_nm": unc}
    if spec.kind in ("filter", "predict"):
        return {
            "noise_before": _sigma(spec.input.path, spec.input.reader()),
            "noise_after": _sigma(spec.output, None),
        }
    return {}


def _sigma(path: str, reader) -> float | None:
    """The noise sigma of an image (a few planes' robust estimate), in its intensity units."""
    from ..classical.apply import noise_info
    from ..io import read_image

    image = read_image(path, config=reader)
    try:
        return float(noise_info(image.data, image.axes).sigma)
    finally:
        image.close()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


__all__ = [
    "LAZY_SHARE",
    "StopFlag",
    "fit_within_worker",
    "install_model_cache",
    "models_loaded",
    "process_file",
    "summarise",
]
