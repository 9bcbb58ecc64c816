"""The errors the command line reports as one line with exit status 2."""

from __future__ import annotations

from pydantic import ValidationError

from ..config import ConfigError, format_validation_error
from ..em.errors import LatticeNotFound
from ..extras import MissingExtra, as_missing_extra
from ..io.errors import ImageReadError, ImageWriteError
from ..jobs.errors import ChildProcessFailed
from ..jobs.errors import one_line as jobs_one_line


class CliError(ValueError):
    """Bad input found by a subcommand; the message is shown as it is."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    CliError,
    ImageReadError,
    ImageWriteError,
    ConfigError,
    ValidationError,
    FileExistsError,
    MissingExtra,
    LatticeNotFound,  # a lattice tool (Bragg filter, lattice, em-targets) on a non-crystal
)


def user_error(exc: BaseException) -> BaseException | None:
    """``exc`` when it is reported as one line with exit status 2, else None.

    A failed import of a module that an extra installs counts: it is reported as the
    :class:`~..extras.MissingExtra` naming that extra, wherever the import happened.
    """
    if isinstance(exc, USER_ERRORS):
        return exc
    if isinstance(exc, ChildProcessFailed) and exc.bad_input is not None:
        return exc  # bad input found in a job's child process: its own one line
    if isinstance(exc, ImportError):
        return as_missing_extra(exc)
    return None


def one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return format_validation_error(exc)
    return jobs_one_line(exc)
