"""The errors the command line reports as one line with exit status 2."""

from __future__ import annotations

from pydantic import ValidationError

from ..config import ConfigError, format_validation_error
from ..em.errors import LatticeNotFound
from ..io.errors import ImageReadError, ImageWriteError


class CliError(ValueError):
    """Bad input found by a subcommand; the message is shown as it is."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    CliError,
    ImageReadError,
    ImageWriteError,
    ConfigError,
    ValidationError,
    FileExistsError,
    LatticeNotFound,  # a lattice tool (Bragg filter, lattice, em-targets) on a non-crystal
)


def one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return format_validation_error(exc)
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
