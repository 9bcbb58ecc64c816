"""A matplotlib figure drawn off the GUI thread and shown as an image.

Drawing a small figure of three histograms took 0.2-2 s of the main thread on a 2-core machine
(text layout and rasterisation in matplotlib's Agg), during which napari could not respond.
:class:`ThreadedFigure` draws in a worker thread on a figure that only that thread touches and
hands the pixels to the GUI thread, which only sets them on a label. The worker holds the GIL
in slices (``sys.getswitchinterval()``, 5 ms), so the event loop keeps ticking while it draws.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import QLabel, QSizePolicy, QWidget

logger = logging.getLogger(__name__)

Draw = Callable[..., None]
"""``draw(figure, *args)``: draws on a cleared matplotlib ``Figure`` (in the worker thread)."""


class _Relay(QObject):
    """Carries pixels from the workers to the GUI thread, for labels that may be gone.

    One for the process, made in the GUI thread and never deleted: emitting on the label
    itself from a worker after the dock was closed (its C++ object deleted) crashed the
    process. The label travels as a weak reference and is checked before use.
    """

    pixels = Signal(object, object)

    def deliver(self, label_ref: Any, pixels: np.ndarray) -> None:
        label = label_ref()
        if label is not None and not _deleted(label):
            label._show(pixels)


def _deleted(widget: QObject) -> bool:
    try:
        widget.objectName()
    except RuntimeError:  # wrapped C/C++ object has been deleted
        return True
    return False


_RELAY: _Relay | None = None


def _relay() -> _Relay:
    global _RELAY
    if _RELAY is None:
        _RELAY = _Relay()
        _RELAY.pixels.connect(_RELAY.deliver)
    return _RELAY


class ThreadedFigure(QLabel):
    """A label showing a figure that :meth:`render` draws in a worker thread.

    Requests made while a drawing runs are coalesced: only the newest is drawn next. The figure
    is drawn at the label's size, again when the label is resized. A caller that keeps artists
    on :attr:`figure` (lines it updates) changes them holding :attr:`lock` and calls
    ``render()`` without a function: the figure is drawn as it is.
    """

    drawn = Signal(object)
    """Emitted (in the GUI thread) with the RGBA pixels once they are shown."""

    def __init__(
        self, figsize: tuple[float, float], dpi: int, facecolor: str, parent: QWidget | None = None
    ):
        super().__init__(parent)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=figsize, dpi=dpi)  # drawn by the worker only
        self.figure.patch.set_facecolor(facecolor)
        FigureCanvasAgg(self.figure)
        self.lock = threading.RLock()
        """Held while the worker draws; hold it to change the figure's artists."""
        self._dpi = dpi
        self._size = (int(figsize[0] * dpi), int(figsize[1] * dpi))
        self._lock = threading.Lock()
        self._pending: tuple[Draw | None, tuple[Any, ...], tuple[int, int]] | None = None
        self._last: tuple[Draw | None, tuple[Any, ...]] | None = None
        self._busy = False
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setStyleSheet(f"background-color: {facecolor}")
        self._relay = _relay()
        self._ref = weakref.ref(self)

    def render(self, draw: Draw | None = None, *args: Any) -> None:
        """Draw ``draw(figure, *args)`` on the cleared figure (None: the figure as it is) in
        the worker thread, then show it."""
        self._last = (draw, args)
        with self._lock:
            self._pending = (draw, args, self._size)
            if self._busy:
                return
            self._busy = True
        threading.Thread(
            target=self._work, args=(self._relay, self._ref), name="celldenoise-figure", daemon=True
        ).start()

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until no drawing is pending (tests, screenshots); True when idle."""
        import time

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if not self._busy:
                    return True
            time.sleep(0.005)
        return False

    def _work(self, relay: _Relay, ref: Any) -> None:
        """The worker: touches only the figure, the Python state and ``relay`` (no widget)."""
        while True:
            with self._lock:
                job, self._pending = self._pending, None
                if job is None:
                    self._busy = False
                    return
            draw, args, (width, height) = job
            figure = self.figure
            try:
                with self.lock:
                    figure.set_size_inches(max(width, 60) / self._dpi, max(height, 40) / self._dpi)
                    if draw is not None:
                        figure.clear()
                        draw(figure, *args)
                    figure.canvas.draw()
                    pixels = np.asarray(figure.canvas.buffer_rgba()).copy()
            except Exception:  # a drawing bug must not kill the thread silently
                logger.exception("drawing a figure failed")
                continue
            try:
                relay.pixels.emit(ref, pixels)
            except RuntimeError:  # the application is shutting down
                return

    def _show(self, pixels: np.ndarray) -> None:
        height, width = pixels.shape[:2]
        image = QImage(pixels.data, width, height, 4 * width, QImage.Format.Format_RGBA8888)
        self.setPixmap(QPixmap.fromImage(image.copy()))
        self.drawn.emit(pixels)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        size = (event.size().width(), event.size().height())
        if size != self._size and min(size) > 0:
            self._size = size
            if self._last is not None:
                draw, args = self._last
                self.render(draw, *args)
