"""napari reader contribution: TIFF / OME-TIFF / ImageJ / PNG, local or ``gs://``."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from ..io import ImageReadError, is_supported, read_image
from ..io.layers import image_to_layers

logger = logging.getLogger(__name__)

LayerData = list[tuple[Any, ...]]
EMPTY: LayerData = [(None,)]  # napari's sentinel for "read, but nothing to show"


def napari_get_reader(path: str | list[str]) -> Callable[[Any], LayerData] | None:
    """Return a reader for ``path`` if it is an image file we handle, else None (never raises)."""
    try:
        paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
        if not paths or not all(is_supported(p) for p in paths):
            return None
    except Exception:  # a foreign object must not break napari's reader search
        return None
    return read_layers


def read_layers(path: str | list[str]) -> LayerData:
    """Layer data for one or more files; a broken file gives one notification, no traceback."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    layers: LayerData = []
    for p in paths:
        try:
            layers += image_to_layers(read_image(p))
        except ImageReadError as exc:
            notify_error(str(exc))
    return layers or EMPTY


def notify_error(message: str) -> None:
    """Show ``message`` as a napari error notification (logged when napari is absent)."""
    logger.error(message)
    try:
        from napari.utils.notifications import show_error
    except ImportError:  # pragma: no cover - used outside napari
        return
    show_error(message)
