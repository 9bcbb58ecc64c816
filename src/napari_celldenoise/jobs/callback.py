"""A function that reports progress through a callback, run as a job generator.

Some numerics take ``progress(done, total)`` and ``should_stop()`` callables instead of being
generators (:func:`napari_celldenoise.spots.drift.estimate_drift`). :func:`callback_job` runs
such a function in a thread of its own and yields its progress as :class:`~.events.Progress`
events while it works, then ``Done(result)``: the docks and :func:`~.run.run` take it like any
other job.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .events import Done, Event, Progress, ShouldStop, never_stop


def callback_job(
    fn: Callable[..., Any],
    *args: Any,
    message: str = "",
    should_stop: ShouldStop = never_stop,
    poll_s: float = 0.1,
    **kwargs: Any,
) -> Iterator[Event]:
    """Run ``fn(*args, progress=..., should_stop=..., **kwargs)``; yield its progress.

    Yields ``Progress(done, total, message)`` for each report, then ``Done(result)``, or
    ``Done(None, stopped=True)`` when ``should_stop`` was set by the time ``fn`` returned.
    An exception of ``fn`` is raised again here, in the caller's thread.
    """
    reports: queue.Queue = queue.Queue()
    outcome: dict[str, Any] = {}

    def progress(done: int, total: int) -> None:
        reports.put((int(done), int(total)))

    def work() -> None:
        try:
            outcome["result"] = fn(*args, progress=progress, should_stop=should_stop, **kwargs)
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=work, name=getattr(fn, "__name__", "job"), daemon=True)
    thread.start()
    while thread.is_alive() or not reports.empty():
        try:
            done, total = reports.get(timeout=poll_s)
        except queue.Empty:
            continue
        yield Progress(done, total, message)
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    if should_stop():
        yield Done(None, stopped=True)
        return
    yield Done(outcome.get("result"))
