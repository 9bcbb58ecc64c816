"""Typed events yielded by long-running generators.

Events are small frozen dataclasses so that they pickle cheaply across a process boundary
(``multiprocessing`` queue) and can be matched with ``isinstance`` or ``match``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ShouldStop = Callable[[], bool]
"""A callable polled by long loops (per batch, tile or frame); True asks the loop to stop."""


def never_stop() -> bool:
    """The default ``should_stop``: never asks to stop."""
    return False


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` units of work are finished; ``total`` 0 means unknown."""

    done: int
    total: int = 0
    message: str = ""

    @property
    def fraction(self) -> float | None:
        """Finished fraction in [0, 1], or None when the total is unknown."""
        if self.total <= 0:
            return None
        return min(max(self.done / self.total, 0.0), 1.0)


@dataclass(frozen=True)
class Log:
    """A line for the user (status bar, log pane, stderr in the CLI)."""

    message: str
    level: str = "info"


@dataclass(frozen=True)
class Epoch:
    """One finished training epoch."""

    epoch: int
    loss: float
    val_loss: float | None = None
    learning_rate: float | None = None
    seconds: float | None = None
    eta_seconds: float | None = None


@dataclass(frozen=True, eq=False)
class Preview:
    """An intermediate image worth showing (e.g. a denoised validation patch)."""

    image: np.ndarray
    name: str = "preview"
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Done:
    """The last event of every job: the result (any picklable object)."""

    result: Any = None
    stopped: bool = False


Event = Progress | Log | Epoch | Preview | Done
