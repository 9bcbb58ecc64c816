"""Small module-level generators for the process-runner tests (importable by a spawned child)."""

from __future__ import annotations

import os
import time

import numpy as np

from napari_celldenoise.jobs import Done, Log, Preview, Progress


def count(n, *, should_stop, delay=0.0):
    """Yield ``n`` progress steps and a preview; stop early (and say so) when asked."""
    yield Log(f"child pid {os.getpid()}")
    for i in range(n):
        if should_stop():
            yield Done(result={"reached": i}, stopped=True)
            return
        time.sleep(delay)
        yield Progress(i + 1, n, f"step {i + 1}")
    yield Preview(np.full((4, 4), n, np.float32))
    yield Done(result={"reached": n, "pid": os.getpid()})


def fail(*, should_stop):
    yield Progress(1, 2)
    raise ValueError("bad patch size")


def stubborn(*, should_stop):
    """Ignores should_stop: the runner must kill it after the grace period."""
    while True:
        time.sleep(0.05)
        yield Progress(0, 0, "busy")


def crash(*, should_stop):
    yield Progress(1, 2)
    os._exit(3)


def placements(*, should_stop):
    """Where each kind would run if started from inside this child."""
    from napari_celldenoise.jobs.placement import PLACEMENT, runs_in_child

    yield Done(result={kind: runs_in_child(kind) for kind in PLACEMENT})
