"""napari writer contribution: image layers to OME-TIFF (several layers become channels)."""

from __future__ import annotations

from typing import Any

from ..io import write_ome_tiff
from ..io.layers import layers_to_image

_SUFFIXES = (".ome.tif", ".ome.tiff", ".tif", ".tiff")


def _ome_path(path: str) -> str:
    return path if path.lower().endswith(_SUFFIXES) else path + ".ome.tif"


def write_single_image(path: str, data: Any, meta: dict) -> list[str]:
    """Write one image layer. napari's save dialog has already confirmed any replacement.

    A layer made by a dock from a file carries the spec that made it (``metadata
    ["celldenoise"]["spec"]``); the file keeps it as its provenance, as ``celldenoise run``
    would have written it.
    """
    image = layers_to_image([(data, meta, "image")])
    provenance = _provenance(meta)
    return [write_ome_tiff(_ome_path(path), image, overwrite=True, provenance=provenance)]


def _provenance(meta: dict) -> dict[str, Any] | None:
    from ..io.layers import META_KEY
    from ..jobs.provenance import provenance_for
    from ..jobs.specs import parse_spec

    spec = ((meta.get("metadata") or {}).get(META_KEY) or {}).get("spec")
    if not isinstance(spec, dict):
        return None
    parsed = parse_spec(spec)
    return provenance_for(parsed, parsed.input.path) if hasattr(parsed, "input") else None


def write_multiple(path: str, layer_data: list[tuple[Any, dict, str]]) -> list[str]:
    """Write same-shape image layers as the channels of one OME-TIFF (names = layer names)."""
    image = layers_to_image([ld for ld in layer_data if ld[2] == "image"])
    return [write_ome_tiff(_ome_path(path), image, overwrite=True)]
