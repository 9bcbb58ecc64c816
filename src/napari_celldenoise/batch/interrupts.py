"""Ctrl-C and the local workers of a batch.

Ctrl-C in a terminal reaches every process of its group, a local cluster's workers too, and a
worker dies of it in mid-file (its task is then retried on a restarted worker, and the stop
waits for it). :class:`LeaveInterruptsToTheBatch` makes the workers ignore SIGINT: the batch's
own process takes the Ctrl-C and stops the files in progress through the stop flag
(:class:`.task.StopFlag`). Imported only where a local cluster starts (dask.distributed).
"""

from __future__ import annotations

import signal
import threading

from distributed import WorkerPlugin


class LeaveInterruptsToTheBatch(WorkerPlugin):
    """A worker plugin: the worker process ignores SIGINT (set up again on every worker the
    nanny restarts)."""

    name = "celldenoise-leave-interrupts"

    def setup(self, worker) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)


__all__ = ["LeaveInterruptsToTheBatch"]
