"""Provenance of output files: the job spec that made a file, stored with it and read back.

An OME-TIFF carries it in its OME-XML as a ``MapAnnotation`` in the namespace
:data:`NAMESPACE` (key-value pairs that OMERO and Bio-Formats show as they are): ``spec`` holds
the spec as JSON, ``history`` the specs that made the input (oldest first, JSON list),
``software`` the package and version. A spot table (CSV) carries the same keys in a JSON file
beside it, ``NAME.csv.provenance.json``, as Picasso keeps a YAML file of its processing steps
beside its localizations: a comment line inside the CSV would break the ThunderSTORM import
that the table is made for.

This module stores and reads plain dicts; :mod:`napari_celldenoise.jobs.provenance` turns them
into validated specs.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

NAMESPACE = "napari-celldenoise/provenance"
"""OME ``MapAnnotation`` namespace of the provenance."""

SIDECAR_SUFFIX = ".provenance.json"
"""Appended to a CSV's name for its provenance file."""

KEYS = ("spec", "history", "software")


def ome_annotation(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """tifffile's ``MapAnnotation`` entry for ``provenance`` (values JSON-encoded)."""
    return {
        "Namespace": NAMESPACE,
        "Value": {key: _text(provenance[key]) for key in KEYS if key in provenance},
    }


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _decode(values: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, text in values.items():
        if key == "software":
            out[key] = text
            continue
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text  # left for the spec validator to refuse with a clear message
    return out


def provenance_from_ome_xml(xml: str) -> dict[str, Any] | None:
    """The provenance stored in an OME-XML string, or None when it has none."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] != "MapAnnotation" or el.get("Namespace") != NAMESPACE:
            continue
        values = {}
        for m in el.iter():
            if m.tag.rsplit("}", 1)[-1] == "M" and m.get("K"):
                values[m.get("K")] = m.text or ""
        return _decode(values)
    return None


def sidecar_path(csv_path: str | os.PathLike) -> Path:
    """Where the provenance of the spot table ``csv_path`` is kept."""
    path = Path(csv_path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def sidecar_text(provenance: Mapping[str, Any]) -> str:
    """The sidecar file's content for ``provenance``."""
    return json.dumps({k: provenance[k] for k in KEYS if k in provenance}, indent=1) + "\n"


def read_provenance(path: str | os.PathLike) -> dict[str, Any] | None:
    """The provenance of an output file (OME-TIFF or spot CSV), or None when it has none.

    Never raises for a file without provenance; a file that cannot be opened raises
    :class:`OSError` as opening it would.
    """
    path = os.fspath(path)
    if path.lower().endswith(".csv"):
        side = sidecar_path(path)
        if not side.is_file():
            if not Path(path).exists():
                raise FileNotFoundError(path)
            return None
        try:
            raw = json.loads(side.read_text(encoding="utf-8"))
        except ValueError:
            return None
        return raw if isinstance(raw, dict) else None
    import tifffile

    from .fs import open_binary

    fh, _ = open_binary(path)
    try:
        with tifffile.TiffFile(fh) as tif:
            xml = tif.ome_metadata if tif.is_ome else None
    except Exception:  # not a TIFF at all: it has no provenance
        return None
    finally:
        fh.close()
    return provenance_from_ome_xml(xml) if xml else None


__all__ = [
    "NAMESPACE",
    "SIDECAR_SUFFIX",
    "ome_annotation",
    "provenance_from_ome_xml",
    "read_provenance",
    "sidecar_path",
    "sidecar_text",
]
