"""Parameter specifications shared by the command line and the dock widgets.

Each filter parameter has a type, hard limits (checked everywhere: a value outside them is bad
input), a slider range and a default. *Intensity* parameters (``relative=True``: a bilateral
range sigma, an NLM ``h``, a TV weight, ...) are given by the user in the image's intensity units,
but their default and slider range are multiples of the image's estimated noise sigma, so that the
same preset suits an 8-bit PNG and a 16-bit camera stack. Inside a variance-stabilising transform
(``--vst``) the noise sigma is 1 and intensity parameters are in stabilised units.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Value = float | int | str | bool


class ParamError(ValueError):
    """A parameter name or value the method does not accept (reported as one line)."""


class ImageTooSmall(ParamError):
    """The image (or the block a method sees) is smaller than the method's minimum size.

    Raised before any work is done, so that nothing is half-computed; the message names the
    method, its minimum and the size it was given.
    """


@dataclass(frozen=True)
class Param:
    """One parameter of a method.

    Attributes
    ----------
    name, help
        Identifier (``--param NAME=VALUE``) and one line of help.
    kind
        ``float``, ``int``, ``odd`` (odd integer), ``choice`` or ``bool``.
    default
        Default value; for ``relative`` parameters a multiple of the noise sigma.
    low, high
        Hard limits, inclusive (``None``: unbounded). ``low_open``: the low limit is excluded.
    slider
        (low, high) of the slider; multiples of the noise sigma when ``relative``.
    unit
        Shown next to the slider: ``px``, ``intensity``, ``iterations``, ...
    log
        Slider and auto-tune search on a log scale.
    """

    name: str
    default: Value
    kind: str = "float"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    slider: tuple[float, float] | None = None
    unit: str = ""
    help: str = ""
    choices: tuple[str, ...] = ()
    relative: bool = False
    log: bool = False

    # -- values ---------------------------------------------------------------------------
    def parse(self, text: str) -> Value:
        """A value from command-line text, checked against the limits."""
        text = str(text).strip()
        if self.kind == "choice":
            return self.check(text)
        if self.kind == "bool":
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ParamError(f"{self.name}: expected true or false, got {text!r}")
        try:
            number = float(text)
        except ValueError:
            raise ParamError(f"{self.name}: expected a number, got {text!r}") from None
        return self.check(number)

    def check(self, value: Any) -> Value:
        """``value`` converted to the parameter's type; :class:`ParamError` if out of range."""
        if self.kind == "choice":
            if str(value) not in self.choices:
                raise ParamError(f"{self.name}: {value!r} is not one of {', '.join(self.choices)}")
            return str(value)
        if self.kind == "bool":
            return bool(value)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ParamError(f"{self.name}: expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ParamError(f"{self.name}: must be a finite number, got {value!r}")
        if self.kind in ("int", "odd"):
            if number != round(number):
                raise ParamError(f"{self.name}: must be a whole number, got {value!r}")
            number = round(number)
            if self.kind == "odd" and number % 2 == 0:
                raise ParamError(f"{self.name}: must be odd, got {number}")
        lo_bad = self.low is not None and (
            number <= self.low if self.low_open else number < self.low
        )
        hi_bad = self.high is not None and number > self.high
        if lo_bad or hi_bad:
            raise ParamError(f"{self.name}={value} is out of range: {self.range_text()}")
        return number if self.kind in ("int", "odd") else float(number)

    def range_text(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high is None else "]"
        unit = f" {self.unit}" if self.unit else ""
        return f"{left}{lo}, {hi}{right}{unit}"

    # -- data-dependent defaults ------------------------------------------------------------
    def default_for(self, sigma: float) -> Value:
        """The default, scaled by the noise ``sigma`` for intensity parameters."""
        if self.relative and self.kind == "float":
            return float(self.default) * _safe_sigma(sigma)
        return self.default

    def slider_range(self, sigma: float = 1.0) -> tuple[float, float]:
        """(low, high) for a slider, in the parameter's own units."""
        if self.kind == "bool":
            return (0.0, 1.0)
        if self.kind == "choice":
            return (0.0, float(len(self.choices) - 1))
        lo, hi = self.slider or (self.low or 0.0, self.high if self.high is not None else 10.0)
        if self.relative:
            s = _safe_sigma(sigma)
            lo, hi = lo * s, hi * s
        return float(lo), float(hi)

    def search_grid(self, sigma: float = 1.0, n: int = 9) -> list[Value]:
        """Candidate values for auto-tuning over the slider range."""
        lo, hi = self.slider_range(sigma)
        if self.kind in ("int", "odd"):
            values = np.unique(
                np.round(np.geomspace(max(lo, 1), hi, n) if self.log else np.linspace(lo, hi, n))
            ).astype(int)
            if self.kind == "odd":
                values = np.unique(values | 1)
            return [self.check(int(v)) for v in values if self._ok(int(v))]
        if self.kind in ("choice", "bool"):
            raise ParamError(f"{self.name}: cannot search a {self.kind} parameter")
        grid = np.geomspace(max(lo, 1e-6 * hi), hi, n) if self.log else np.linspace(lo, hi, n)
        return [float(v) for v in grid if self._ok(float(v))]

    def _ok(self, v: Value) -> bool:
        try:
            self.check(v)
        except ParamError:
            return False
        return True


def _safe_sigma(sigma: float) -> float:
    return float(sigma) if sigma and math.isfinite(sigma) and sigma > 0 else 1.0


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    """``["h=3", "size=5"]`` -> ``{"h": "3", "size": "5"}``; ParamError for malformed items."""
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise ParamError(f"--param expects NAME=VALUE, got {item!r}")
        name, value = item.split("=", 1)
        name = name.strip().replace("-", "_")
        if not name:
            raise ParamError(f"--param expects NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def resolve(
    params: tuple[Param, ...],
    given: Mapping[str, Any],
    *,
    sigma: float = 1.0,
    method: str = "",
) -> dict[str, Value]:
    """Full parameter dict: the given values (text or numbers, checked) over the defaults."""
    specs = {p.name: p for p in params}
    unknown = sorted(set(given) - set(specs))
    if unknown:
        known = ", ".join(specs) or "none"
        where = f" for {method}" if method else ""
        raise ParamError(f"unknown parameter {unknown[0]!r}{where} (parameters: {known})")
    out: dict[str, Value] = {}
    for p in params:
        if p.name in given:
            value = given[p.name]
            out[p.name] = p.parse(value) if isinstance(value, str) else p.check(value)
        else:
            out[p.name] = p.default_for(sigma)
    return out
