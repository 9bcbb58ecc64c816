"""Show job events on stderr: a progress line, log lines, epochs."""

from __future__ import annotations

import signal
import sys
import time
from typing import TextIO

from ..jobs import Device, Epoch, Event, Log, Progress


class StderrProgress:
    """Callable for :func:`napari_celldenoise.jobs.run` that reports events on ``stream``.

    On a terminal the progress line is redrawn in place; otherwise a line is written at most
    every ``interval`` seconds, so logs of batch runs stay short.
    """

    def __init__(self, stream: TextIO | None = None, interval: float = 2.0, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.interval = interval
        self.quiet = quiet
        self._last = 0.0
        self._tty = self.stream.isatty()

    def __call__(self, event: Event) -> None:
        if self.quiet:
            return
        if isinstance(event, Progress):
            now = time.monotonic()
            final = event.total and event.done >= event.total
            if not self._tty and now - self._last < self.interval and not final:
                return
            self._last = now
            frac = event.fraction
            pct = f"{100 * frac:5.1f}%" if frac is not None else f"{event.done}"
            text = f"{pct} {event.message}".rstrip()
            if self._tty:
                self.stream.write(f"\r\033[K{text}" + ("\n" if final else ""))
            else:
                self.stream.write(text + "\n")
            self.stream.flush()
        elif isinstance(event, Log):
            self.stream.write(
                f"{event.level}: {event.message}\n"
                if event.level != "info"
                else f"{event.message}\n"
            )
        elif isinstance(event, Device) and event.note:
            self.stream.write(f"note: {event.note}\n")
        elif isinstance(event, Epoch):
            val = f" val_loss {event.val_loss:.5g}" if event.val_loss is not None else ""
            self.stream.write(f"epoch {event.epoch}: loss {event.loss:.5g}{val}\n")


class StopOnInterrupt:
    """Ctrl-C asks a job to stop cleanly; a second Ctrl-C aborts at once.

    Use as ``with StopOnInterrupt() as stop: run(job(..., should_stop=stop))``: the first
    SIGINT or SIGTERM (what a cluster's scheduler sends at its time limit) makes ``stop()`` true
    (training then finishes its batch and keeps its best and last weights), the second raises
    :class:`KeyboardInterrupt`. Main thread only (signal handlers).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.requested = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopOnInterrupt:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        again = "Ctrl-C again" if signum == signal.SIGINT else "send it again"
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        self.stream.write(f"\n{name}: stopping after this batch ({again} to abort)\n")
        self.stream.flush()

    def __call__(self) -> bool:
        return self.requested
