"""Axis letters, units and their normalisation.

Internally an image's axes are a subset of ``TZCYX`` in that order, plus ``S`` (RGB samples)
last for colour images. Pixel sizes travel as two dicts keyed by axis letter: ``scale``
(physical size of one step along that axis) and ``units``.
"""

from __future__ import annotations

from collections.abc import Mapping

CANONICAL = "TZCYXS"
SPATIAL = "ZYX"

_UNIT_ALIASES = {
    "micron": "µm",
    "microns": "µm",
    "um": "µm",
    "µm": "µm",
    "μm": "µm",
    "\\u00b5m": "µm",
    "micrometer": "µm",
    "micrometre": "µm",
    "nm": "nm",
    "nanometer": "nm",
    "nanometre": "nm",
    "mm": "mm",
    "millimeter": "mm",
    "cm": "cm",
    "m": "m",
    "meter": "m",
    "å": "Å",
    "angstrom": "Å",
    "pixel": "pixel",
    "pixels": "pixel",
    "px": "pixel",
    "": "pixel",
    "s": "s",
    "sec": "s",
    "second": "s",
    "seconds": "s",
    "ms": "ms",
    "min": "min",
    "h": "h",
}

# factors to micrometres, for comparing and converting length units
_TO_UM = {"nm": 1e-3, "µm": 1.0, "mm": 1e3, "cm": 1e4, "m": 1e6, "Å": 1e-4}


def normalize_unit(unit: str | None) -> str:
    """Map the many spellings of a unit in TIFF metadata to one (``micron`` -> ``µm``)."""
    if unit is None:
        return "pixel"
    key = str(unit).strip()
    return _UNIT_ALIASES.get(key.lower(), _UNIT_ALIASES.get(key, key))


def to_micrometres(value: float, unit: str) -> float | None:
    """Convert a length to µm, or None if ``unit`` is not a length unit."""
    factor = _TO_UM.get(normalize_unit(unit))
    return None if factor is None else value * factor


def validate_axes(axes: str, ndim: int) -> str:
    """Check ``axes`` are distinct ``TZCYXS`` letters, one per dimension; return upper-case."""
    axes = axes.upper()
    if len(axes) != ndim:
        raise ValueError(f"axes {axes!r} do not match an image with {ndim} dimensions")
    if set(axes) - set(CANONICAL) or len(set(axes)) != len(axes):
        raise ValueError(f"axes must be distinct letters from {CANONICAL}, got {axes!r}")
    return axes


def from_tifffile_axes(axes: str, shape: tuple[int, ...]) -> str:
    """Translate tifffile's series axes into ``TZCYXS`` letters.

    tifffile uses ``I`` (image sequence), ``Q`` (unknown) and a few rarer letters for axes it
    cannot name. Following ImageJ, the first unnamed axis becomes ``Z`` (a plain multi-page TIFF
    opens as slices), a second one ``T``, a third ``C``. ``S`` (samples) stays ``S`` when it is the
    last axis of length 3 or 4 (RGB/RGBA); otherwise it is a channel axis.
    """
    out = []
    for i, letter in enumerate(axes.upper()):
        if letter == "S" and not (i == len(axes) - 1 and shape[i] in (3, 4)):
            letter = "C"
        out.append(letter)
    spare = [c for c in "ZTC" if c not in out]
    for i, letter in enumerate(out):
        if letter not in CANONICAL:
            if not spare:
                raise ValueError(f"cannot map tifffile axes {axes!r} to TZCYXS")
            out[i] = spare.pop(0)
    result = "".join(out)
    if len(set(result)) != len(result):
        raise ValueError(f"cannot map tifffile axes {axes!r} to TZCYXS")
    return result


def default_scale(axes: str) -> tuple[dict[str, float], dict[str, str]]:
    """Unit scale and 'pixel' units for every axis but C and S."""
    scale = {a: 1.0 for a in axes if a not in "CS"}
    units = {a: ("frame" if a == "T" else "pixel") for a in scale}
    return scale, units


def format_scale(scale: Mapping[str, float], units: Mapping[str, str]) -> str:
    """``"Z 0.5 µm, Y 0.1 µm, X 0.1 µm"`` for messages and the info dock."""
    return ", ".join(f"{a} {scale[a]:.6g} {units.get(a, '')}".rstrip() for a in scale)
