"""The errors a job reports: one base class, :class:`JobError`, for every failure of the job
machinery itself (a child process that raised or died, a job that ended without a result).

``JobError`` is deliberately not a ``RuntimeError``: superqt's thread worker takes a
``RuntimeError`` raised by the generator for "the worker object was deleted" and then emits
neither ``errored`` nor ``finished``, which would leave a dock waiting for ever.
"""

from __future__ import annotations


class JobError(Exception):
    """A job failed; the message is one line meant for the user."""


class ChildProcessFailed(JobError):
    """The child raised (``message`` is its error as ``Type: text``, ``child_traceback`` its
    traceback) or died. ``user_message`` is what to show a user: the text alone for bad input
    (a ``ValueError`` in the child), the whole message otherwise."""

    def __init__(
        self,
        message: str,
        child_traceback: str = "",
        exitcode: int | None = None,
        bad_input: str | None = None,
    ):
        super().__init__(message)
        self.child_traceback = child_traceback
        self.exitcode = exitcode
        self.bad_input = bad_input
        self.user_message = bad_input or message


class Cancelled(JobError):
    """Raised by :func:`~.run.run` when a job ended without a :class:`~.events.Done` event."""


class MainModuleNotGuarded(JobError):
    """A child process cannot start: the script being run would run again inside it."""


def one_line(exc: BaseException) -> str:
    """An error as one line for a user: a child's own words for its bad input (see
    :class:`ChildProcessFailed`), the exception's type when it has no message."""
    text = " ".join(str(getattr(exc, "user_message", exc)).split())
    return text or type(exc).__name__


__all__ = ["Cancelled", "ChildProcessFailed", "JobError", "MainModuleNotGuarded", "one_line"]
