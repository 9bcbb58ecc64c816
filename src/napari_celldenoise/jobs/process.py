"""Run an event generator in a spawned child process and stream its events back.

TensorFlow must never run in the napari process: on machines with software OpenGL (Mesa
llvmpipe) a viewer and TensorFlow in one process segfault. The child is started with the
``spawn`` context (``fork`` hangs with TensorFlow), so the function must be importable by name
(a module-level function) and its arguments picklable.

Stopping is cooperative first: the child's ``should_stop`` turns True (a shared
``multiprocessing.Event``) so that it can save weights and yield its ``Done``; if it has not
finished after ``grace`` seconds it is terminated, then killed.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from .errors import ChildProcessFailed
from .events import Done, Event, ShouldStop, never_stop
from .main_guard import ADVICE, check_main_guard

logger = logging.getLogger(__name__)

_END = "__celldenoise_end__"

_in_job_child = False


def in_job_child() -> bool:
    """Whether this process is a job child (:func:`_child_main` ran): nothing nests further."""
    return _in_job_child


def _child_main(target: Callable[..., Any], args: tuple, kwargs: dict, q: Any, stop: Any) -> None:
    """Entry point of the child: drain the generator into the queue."""
    global _in_job_child
    _in_job_child = True
    try:
        for event in target(*args, should_stop=stop.is_set, **kwargs):
            q.put(event)
    except BaseException as exc:  # report everything, including KeyboardInterrupt
        # bad input (a ValueError, the package's convention) is told as its own message
        plain = str(exc) if isinstance(exc, ValueError) and str(exc) else None
        q.put((_END, f"{type(exc).__name__}: {exc}", traceback.format_exc(), plain))
        return
    q.put((_END, None, "", None))


class ProcessJob:
    """A generator function running in a child process.

    Iterate over the job to receive its events; call :meth:`stop` from any thread to ask it
    to finish, :meth:`kill` to end it at once.
    """

    def __init__(
        self,
        target: Callable[..., Iterator[Event]],
        *args: Any,
        grace: float = 10.0,
        **kwargs: Any,
    ) -> None:
        check_main_guard()  # a script without a main guard would run again in the child
        ctx = mp.get_context("spawn")
        self._queue = ctx.Queue()
        self._stop = ctx.Event()
        self.grace = grace
        self._stop_requested_at: float | None = None
        self._hint = ""
        if getattr(target, "__module__", None) == "__main__":
            self._hint = (
                "; the job function is defined in the script being run: spawned children "
                f"re-import that script, so {ADVICE}"
            )
        self._process = ctx.Process(
            target=_child_main,
            args=(target, args, kwargs, self._queue, self._stop),
            daemon=True,
            name=f"celldenoise-{getattr(target, '__name__', 'job')}",
        )
        self._process.start()

    @property
    def pid(self) -> int | None:
        """Process id of the child."""
        return self._process.pid

    def is_alive(self) -> bool:
        """Whether the child is still running."""
        return self._process.is_alive()

    def stop(self) -> None:
        """Ask the child to stop at its next ``should_stop`` check (kill after ``grace`` s)."""
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
        self._stop.set()

    def kill(self) -> None:
        """End the child now (terminate, then kill if it ignores that)."""
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(2.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(2.0)

    def events(self, should_stop: ShouldStop = never_stop, poll: float = 0.1) -> Iterator[Event]:
        """Yield the child's events until it ends; ``should_stop`` of the caller is forwarded."""
        try:
            while True:
                if should_stop():
                    self.stop()
                if (
                    self._stop_requested_at is not None
                    and time.monotonic() - self._stop_requested_at > self.grace
                    and self._process.is_alive()
                ):
                    logger.warning("child did not stop within %.1f s: killing it", self.grace)
                    self.kill()
                    yield Done(result=None, stopped=True)
                    return
                try:
                    item = self._queue.get(timeout=poll)
                except queue.Empty:
                    if not self._process.is_alive():
                        # drain anything that arrived just before the end
                        try:
                            item = self._queue.get(timeout=0.5)
                        except queue.Empty:
                            code = self._process.exitcode
                            raise ChildProcessFailed(
                                f"the worker process died (exit code {code}){self._hint}",
                                exitcode=code,
                            ) from None
                    else:
                        continue
                if isinstance(item, tuple) and len(item) == 4 and item[0] == _END:
                    _, error, tb, plain = item
                    self._process.join(5.0)
                    if error is not None:
                        raise ChildProcessFailed(error, tb, self._process.exitcode, plain)
                    return
                yield item
        finally:
            if self._process.is_alive():
                self._stop.set()
                self._process.join(self.grace if self._stop_requested_at else 0.5)
                self.kill()

    def __iter__(self) -> Iterator[Event]:
        return self.events()


def run_in_process(
    target: Callable[..., Iterator[Event]],
    *args: Any,
    should_stop: ShouldStop = never_stop,
    grace: float = 10.0,
    **kwargs: Any,
) -> Iterator[Event]:
    """Run ``target(*args, should_stop=..., **kwargs)`` in a spawned child; yield its events.

    ``target`` must be a module-level generator function that accepts ``should_stop``.
    The returned iterator is itself a job generator, so it composes with :func:`run` and with
    the GUI's thread worker. When ``should_stop()`` turns True the child is asked to stop and is
    killed if it has not finished ``grace`` seconds later (a ``Done(stopped=True)`` is then
    yielded in its place).
    """
    job = ProcessJob(target, *args, grace=grace, **kwargs)
    yield from job.events(should_stop=should_stop)
