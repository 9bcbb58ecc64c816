"""Configuration models shared by the GUI, the CLI, the remote worker and batch recipes.

Every config is a frozen pydantic v2 model with bounds on its fields, a ``version`` and YAML
save/load. A file written by a newer, incompatible version of the plugin is refused with a
clear message instead of being half-understood.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .atomic import atomic_write

C = TypeVar("C", bound="Config")


class ConfigError(ValueError):
    """A config file could not be read or did not validate (message names the file)."""


class Config(BaseModel):
    """Base of all configs: frozen, no unknown keys, versioned, YAML round trip."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    SCHEMA_VERSION: ClassVar[int] = 1
    version: int = Field(default=1, ge=1, description="schema version of this config")

    @field_validator("version")
    @classmethod
    def _not_from_the_future(cls, value: int) -> int:
        if value > cls.SCHEMA_VERSION:
            raise ValueError(
                f"config version {value} is newer than this plugin supports "
                f"({cls.SCHEMA_VERSION}); update napari-celldenoise"
            )
        return value

    def to_yaml(self, path: str | os.PathLike) -> Path:
        """Write the config as YAML atomically; returns the path."""
        text = yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
        return atomic_write(path, text.encode("utf-8"), overwrite=True)

    @classmethod
    def from_yaml(cls: type[C], path: str | os.PathLike) -> C:
        """Read and validate a YAML config; raises :class:`ConfigError` naming the file."""
        return validate_yaml(path, cls.model_validate)


def validate_yaml(path: str | os.PathLike, validate: Callable[[dict], C]) -> C:
    """Read the YAML mapping at ``path`` and pass it to ``validate`` (a pydantic validator).

    Every failure (missing file, bad YAML, not a mapping, invalid settings) becomes one
    :class:`ConfigError` that names the file.
    """
    path = Path(path)
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a readable YAML file (not UTF-8 text)") from None
    except (OSError, yaml.YAMLError) as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"{path}: not a readable YAML file ({detail})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    try:
        return validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {format_validation_error(exc)}") from None


def format_validation_error(exc: ValidationError) -> str:
    """One line for the user from a pydantic error: ``field: message; field: message``."""
    parts = []
    for err in exc.errors():
        message = err["msg"]
        if err["type"] == "value_error":  # our own validators' text, without pydantic's prefix
            message = message.removeprefix("Value error, ")
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


DEFAULT_LAZY_LIMIT = 1 << 30  # 1 GiB


def _default_lazy_limit() -> int:
    value = os.environ.get("CELLDENOISE_LAZY_LIMIT")
    if value is None:
        return DEFAULT_LAZY_LIMIT
    return parse_size(value)


def parse_size(text: str) -> int:
    """Parse ``"1GB"``, ``"512 MiB"``, ``"2e9"`` into bytes (decimal and binary suffixes)."""
    units = {
        "": 1,
        "b": 1,
        "kb": 1000,
        "mb": 1000**2,
        "gb": 1000**3,
        "tb": 1000**4,
        "kib": 1024,
        "mib": 1024**2,
        "gib": 1024**3,
        "tib": 1024**4,
        "k": 1024,
        "m": 1024**2,
        "g": 1024**3,
        "t": 1024**4,
    }
    s = str(text).strip().lower().replace(" ", "")
    number = s.rstrip("kmgtib")
    unit = s[len(number) :]
    if unit not in units:
        raise ValueError(f"unknown size unit in {text!r}")
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"not a size: {text!r}") from None
    if value < 0:
        raise ValueError(f"a size cannot be negative: {text!r}")
    return int(value * units[unit])


def _default_allow_partial() -> bool:
    return os.environ.get("CELLDENOISE_ALLOW_PARTIAL", "").strip().lower() in ("1", "true", "yes")


class ReaderConfig(Config):
    """How images are opened."""

    lazy_limit: int = Field(
        default_factory=_default_lazy_limit,
        ge=0,
        description="files larger than this many bytes open lazily as dask arrays "
        "(env CELLDENOISE_LAZY_LIMIT, e.g. '1GB')",
    )
    axes: str | None = Field(
        default=None,
        description="override the axes read from the file (letters from TZCYXS)",
    )
    allow_partial: bool = Field(
        default_factory=_default_allow_partial,
        description="open the complete planes of a truncated file (fewer planes than its "
        "metadata declares) with a warning instead of refusing it "
        "(env CELLDENOISE_ALLOW_PARTIAL=1; CLI --allow-partial)",
    )

    @field_validator("axes")
    @classmethod
    def _valid_axes(cls, value: str | None) -> str | None:
        if value is None:
            return value
        value = value.upper()
        if not value or set(value) - set("TZCYXS") or len(set(value)) != len(value):
            raise ValueError(f"axes must be distinct letters from TZCYXS, got {value!r}")
        return value
