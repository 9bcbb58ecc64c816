"""Reading and writing images (pure: no Qt, no napari)."""

from .errors import ImageReadError, ImageWriteError
from .image import ImageData
from .read import is_supported, read_image
from .write import write_ome_tiff

__all__ = [
    "ImageData",
    "ImageReadError",
    "ImageWriteError",
    "is_supported",
    "read_image",
    "write_ome_tiff",
]
