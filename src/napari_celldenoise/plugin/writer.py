"""napari writer contribution: image layers to OME-TIFF (several layers become channels)."""

from __future__ import annotations

from typing import Any

from ..io import write_ome_tiff
from ..io.layers import layers_to_image

_SUFFIXES = (".ome.tif", ".ome.tiff", ".tif", ".tiff")


def _ome_path(path: str) -> str:
    return path if path.lower().endswith(_SUFFIXES) else path + ".ome.tif"


def write_single_image(path: str, data: Any, meta: dict) -> list[str]:
    """Write one image layer. napari's save dialog has already confirmed any replacement."""
    image = layers_to_image([(data, meta, "image")])
    return [write_ome_tiff(_ome_path(path), image, overwrite=True)]


def write_multiple(path: str, layer_data: list[tuple[Any, dict, str]]) -> list[str]:
    """Write same-shape image layers as the channels of one OME-TIFF (names = layer names)."""
    image = layers_to_image([ld for ld in layer_data if ld[2] == "image"])
    return [write_ome_tiff(_ome_path(path), image, overwrite=True)]
