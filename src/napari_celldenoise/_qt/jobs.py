"""Run a job generator in napari's thread worker with a progress bar and a Cancel button.

The worker's generator catches every exception of the job itself and hands it to the main
thread as a value (:class:`_Failed`): superqt's worker swallows a ``RuntimeError`` without
emitting ``errored`` or ``finished``, so no exception type may be left for it to handle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ..jobs import Done, Event, Log, Progress, ShouldStop
from ..jobs.errors import one_line

JobFactory = Callable[[ShouldStop], Iterator[Event]]


def drain(steps: Iterator[Any]) -> None:
    """Run every step of a step generator now (see :meth:`JobPanel.start`'s ``on_done``)."""
    for _ in steps:
        pass


class _Failed:
    """An exception raised by a job, carried to the main thread as a yielded value."""

    def __init__(self, exc: BaseException):
        self.exc = exc


class JobPanel(QWidget):
    """A progress bar, a status line and a Cancel button for one background job at a time.

    ``start(factory)`` calls ``factory(should_stop)`` in a worker thread and drains the
    generator; events arrive in the main thread (``on_event``), the ``Done`` result goes to
    ``on_done``, errors become napari notifications. Cancel asks the job to stop
    cooperatively; it yields a ``Done(stopped=True)`` when it has saved what it should.

    An ``on_done`` that returns an iterator (a generator that yields between its steps)
    runs one step per turn of the event loop, so that the viewer repaints and answers
    between them; ``finished`` follows its last step.
    """

    started = Signal()
    finished = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        row = QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.status)
        self._stop = threading.Event()
        self._worker: Any = None
        self._on_event: Callable[[Event], Any] | None = None
        self._on_done: Callable[[Any], Any] | None = None
        self.failed: str | None = None  # the last job's error, None when it did not fail
        self.warnings: list[str] = []  # the last job's warnings (Log events of level warning)
        self._steps: Iterator[Any] | None = None  # on_done's steps still to run
        self._finish_after_steps = False

    @property
    def running(self) -> bool:
        return self._worker is not None or self._steps is not None

    def start(
        self,
        factory: JobFactory,
        *,
        on_event: Callable[[Event], Any] | None = None,
        on_done: Callable[[Any], Any] | None = None,
        label: str = "working",
    ) -> Any:
        """Start a job; refuses (returns None) while another one runs."""
        if self.running:
            show_info("A job is already running: wait for it or press Cancel.")
            return None
        self._stop = threading.Event()
        stop = self._stop
        self._on_event, self._on_done = on_event, on_done
        self.failed = None
        self.warnings = []

        @thread_worker
        def work() -> Iterator[Event | _Failed]:
            try:
                yield from factory(stop.is_set)
            except Exception as exc:  # every type: see the module docstring
                yield _Failed(exc)

        worker = work()  # a fresh worker per job: superqt refuses to start one twice
        worker.yielded.connect(self._handle)
        worker.errored.connect(self._error)
        worker.finished.connect(self._finish)
        self._worker = worker
        self.progress.setRange(0, 0)  # busy until the first Progress event
        self.status.setText(f"{label}…")
        self.cancel_button.setEnabled(True)
        self.started.emit()
        worker.start()
        return worker

    def cancel(self) -> None:
        """Ask the running job to stop at its next check."""
        if self.running:
            self._stop.set()
            self.status.setText("stopping…")
            self.cancel_button.setEnabled(False)

    def _handle(self, event: Event | _Failed) -> None:
        if isinstance(event, _Failed):
            self._error(event.exc)
            return
        if isinstance(event, Progress):
            if event.total > 0:
                self.progress.setRange(0, event.total)
                self.progress.setValue(min(event.done, event.total))
            if event.message:
                self.status.setText(event.message)
        elif isinstance(event, Log):
            self.status.setText(event.message)
            if event.level == "warning":  # kept past the job's end, and notified
                self.warnings.append(event.message)
                show_warning(event.message)
        elif isinstance(event, Done):
            ended = "stopped" if event.stopped else "done"
            self.status.setText(f"{ended}; ⚠ {self.warnings[-1]}" if self.warnings else ended)
            if self._on_done is not None:
                steps = self._on_done(event.result)
                if isinstance(steps, Iterator):
                    self._steps = steps
                    self._step()
        if self._on_event is not None:
            self._on_event(event)

    def _error(self, exc: BaseException) -> None:
        message = one_line(exc)
        self.failed = message
        self.status.setText(f"failed: {message}")
        show_error(message)

    def _step(self) -> None:
        """Run on_done's next step; the one after it in the next turn of the event loop."""
        from qtpy.QtCore import QTimer

        if self._steps is None:
            return
        try:
            next(self._steps)
        except StopIteration:
            self._end_steps()
            return
        except Exception as exc:  # a failed step ends the job like a failed job
            self._end_steps()
            self._error(exc)
            return
        QTimer.singleShot(0, self._step)

    def _end_steps(self) -> None:
        self._steps = None
        if self._finish_after_steps:
            self._finish()

    def _finish(self) -> None:
        self._worker = None
        if self._steps is not None:  # the worker ended before the result was shown
            self._finish_after_steps = True
            return
        self._finish_after_steps = False
        self.cancel_button.setEnabled(False)
        if self.failed or (self._stop.is_set() and self.progress.maximum() == 0):
            # a failure, or a stop before the first Progress (the bar was still busy)
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        elif not self._stop.is_set():
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
        # stopped: the bar keeps the share of the planned steps that was done (a stopped
        # training's bar beside "stopped" says how far it got, 0 % would say it never ran)
        self.finished.emit()
