"""Building jobs out of jobs: forward a sub-job's events and keep its result."""

from __future__ import annotations

from collections.abc import Generator, Iterable

from .events import Done, Event


def forward(events: Iterable[Event]) -> Generator[Event, None, Done]:
    """Re-yield every event of ``events`` but its :class:`Done`, and return that ``Done``.

    Use as ``done = yield from forward(sub_job)``; a sub-job that ends without a ``Done``
    returns ``Done(None, stopped=True)``.
    """
    done: Done | None = None
    for event in events:
        if isinstance(event, Done):
            done = event
        else:
            yield event
    return done if done is not None else Done(None, stopped=True)


__all__ = ["forward"]
