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
    """One training epoch: finished, or ``partial`` when training was stopped inside it.

    ``loss`` and ``val_loss`` are the headline losses; ``metrics`` holds every value the
    method reports by name (a GAN's four losses, n2v's ``n2v_mse``...), ``loss`` included.
    A partial epoch ran ``steps`` of its ``total_steps`` batches: its losses are over those
    batches only, and it never counts as the best epoch.
    """

    epoch: int
    loss: float
    val_loss: float | None = None
    learning_rate: float | None = None
    seconds: float | None = None
    eta_seconds: float | None = None
    metrics: dict[str, float] = field(default_factory=dict, hash=False)
    steps: int | None = None
    total_steps: int | None = None

    @property
    def partial(self) -> bool:
        """Whether training stopped before the epoch's last batch."""
        return (
            self.steps is not None
            and self.total_steps is not None
            and (self.steps < self.total_steps)
        )


@dataclass(frozen=True)
class Device:
    """Where a job computes, as people read it (``"CPU (16 cores)"``, ``"GPU (NVIDIA H200)"``).

    ``note`` says, when there is one, why it is not a faster device that this machine has (an
    NVIDIA GPU that TensorFlow cannot use) and what to install.
    """

    description: str
    note: str = ""


@dataclass(frozen=True)
class Timing:
    """Measured speed of training: ``seconds_per_batch`` over the first batches of a run."""

    seconds_per_batch: float
    batches_per_epoch: int

    @property
    def seconds_per_epoch(self) -> float:
        """The time one epoch of ``batches_per_epoch`` batches takes at this speed."""
        return self.seconds_per_batch * self.batches_per_epoch


@dataclass(frozen=True)
class Calibration:
    """A line fitted to a network's output after training: ``alpha * variable + beta``.

    ``weights`` names the weights file the line belongs to; ``variable`` is what the line
    maps (``"x"``: the network output, ``"mu"``: the PG prior mean), in normalised units;
    ``scope`` says what it was fitted on (``"validation"`` patches or ``"this image"``).
    ``(1, 0)`` means no reliable line was found and the output is kept as it is.
    """

    weights: str
    alpha: float
    beta: float
    variable: str = "x"
    scope: str = "validation"


@dataclass(frozen=True, eq=False)
class Preview:
    """An intermediate image worth showing (e.g. a denoised validation patch)."""

    image: np.ndarray
    name: str = "preview"
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Done:
    """The last event of every job: its result (see :mod:`.results` for each job's type)."""

    result: Any = None
    stopped: bool = False


Event = Progress | Log | Epoch | Device | Timing | Calibration | Preview | Done
