"""A function with progress and should_stop callbacks, run as a job generator."""

from __future__ import annotations

import threading

import pytest

from napari_celldenoise.jobs import Done, Progress, run
from napari_celldenoise.jobs.callback import callback_job


def counting(n, *, progress=None, should_stop=None):
    for i in range(n):
        if should_stop is not None and should_stop():
            return None
        progress(i + 1, n)
    return n * 10


def test_progress_events_then_the_result():
    events = list(callback_job(counting, 4, message="counting"))
    assert [(e.done, e.total, e.message) for e in events if isinstance(e, Progress)] == [
        (i, 4, "counting") for i in range(1, 5)
    ]
    assert isinstance(events[-1], Done) and events[-1].result == 40
    assert run(callback_job(counting, 3)) == 30


def test_progress_arrives_while_the_function_still_works():
    gate = threading.Event()

    def waits(*, progress, should_stop):
        progress(1, 2)
        assert gate.wait(10), "the first progress event never came out"
        progress(2, 2)
        return "done"

    job = callback_job(waits)
    first = next(job)  # before the function may go on
    assert isinstance(first, Progress) and first.done == 1
    gate.set()
    assert list(job)[-1].result == "done"


def test_stop_and_errors():
    stopped = list(callback_job(counting, 5, should_stop=lambda: True))
    assert len(stopped) == 1 and stopped[0].stopped and stopped[0].result is None

    def broken(*, progress, should_stop):
        progress(1, 2)
        raise ValueError("no fiducials found")

    with pytest.raises(ValueError, match="no fiducials"):
        list(callback_job(broken))
