"""The spec behind an output file: what a job stores with its output, and reading it back.

Every output that :func:`~.run_spec.run_spec` writes carries ``spec`` (the spec that made it),
``history`` (the specs that made its input, oldest first, taken from the input's own
provenance) and ``software``. :func:`spec_of` returns the spec of a file, :func:`history_of`
the whole chain that led to it: a batch recipe is that chain.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .. import __version__
from ..config import ConfigError
from ..io.provenance import read_provenance
from .specs import AnySpec, parse_spec

logger = logging.getLogger(__name__)

SOFTWARE = f"napari-celldenoise {__version__}"


def provenance_for(spec: AnySpec, *inputs: str) -> dict[str, Any]:
    """What an output of ``spec`` stores: the spec, the history of ``inputs``, the software.

    The history is that of the first input that has one (a filtered image, a denoised stack);
    an input without provenance (a raw acquisition) starts the chain.
    """
    history: list[dict[str, Any]] = []
    for path in inputs:
        earlier = _input_provenance(path)
        if earlier and isinstance(earlier.get("spec"), dict):
            history = [*earlier.get("history", []), earlier["spec"]]
            break
    return {"spec": spec.to_dict(), "history": history, "software": SOFTWARE}


def _input_provenance(path: str) -> dict[str, Any] | None:
    try:
        return read_provenance(path)
    except OSError as exc:  # the job reads it next and says what is wrong with it
        logger.info("no provenance from %s: %s", path, exc)
        return None


def spec_of(path: str | os.PathLike) -> AnySpec | None:
    """The spec that made the output file ``path`` (OME-TIFF or spot CSV); None if none did.

    Raises
    ------
    ConfigError
        When the file carries a spec that does not validate (e.g. from a newer version).
    """
    prov = read_provenance(path)
    if not prov or "spec" not in prov:
        return None
    return _parse(path, prov["spec"])


def history_of(path: str | os.PathLike) -> list[AnySpec]:
    """Every spec that led to ``path``, in the order they ran, its own last ([] without one)."""
    prov = read_provenance(path)
    if not prov or "spec" not in prov:
        return []
    return [_parse(path, s) for s in [*prov.get("history", []), prov["spec"]]]


def _parse(path: str | os.PathLike, data: Any) -> AnySpec:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: its provenance holds no readable spec")
    try:
        return parse_spec(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: provenance: {exc}") from None


__all__ = ["SOFTWARE", "history_of", "provenance_for", "spec_of"]
