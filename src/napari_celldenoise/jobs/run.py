"""Drain an event generator in scripts, tests and the CLI."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from .errors import Cancelled
from .events import Done, Event, Log

logger = logging.getLogger(__name__)
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def run(events: Iterable[Event], on_event: Callable[[Event], Any] | None = None) -> Any:
    """Consume ``events`` and return the result carried by the final :class:`Done`.

    Parameters
    ----------
    events
        A job generator (or any iterable of events).
    on_event
        Called with every event, ``Done`` included, e.g. to print progress.

    Returns
    -------
    The ``result`` of the ``Done`` event.

    Raises
    ------
    Cancelled
        If the iterable ends without a ``Done`` event.
    """
    done: Done | None = None
    for event in events:
        if on_event is not None:
            on_event(event)
        if isinstance(event, Log):
            logger.log(_LEVELS.get(event.level, logging.INFO), event.message)
        if isinstance(event, Done):
            done = event
    if done is None:
        raise Cancelled("the job ended without a result")
    return done.result
