"""``read_image``: the one entry point for opening an image file, local or ``gs://``."""

from __future__ import annotations

import os
from pathlib import PurePosixPath

from ..config import ReaderConfig
from .axes import validate_axes
from .em import is_em, read_em
from .errors import ImageReadError
from .fs import open_binary
from .image import ImageData
from .png import PNG_MAGIC, read_png
from .tiff import TIFF_MAGICS, read_tiff
from .write import to_canonical

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8", ".tf2")
PNG_SUFFIXES = (".png",)


def is_supported(path: str | os.PathLike) -> bool:
    """Whether the file name says TIFF (incl. OME-TIFF, ImageJ), PNG or an EM format."""
    name = PurePosixPath(os.fspath(path)).name.lower()
    return name.endswith(TIFF_SUFFIXES + PNG_SUFFIXES) or is_em(name)


def read_image(
    path: str | os.PathLike,
    *,
    config: ReaderConfig | None = None,
    lazy: bool | None = None,
) -> ImageData:
    """Open an image with its axes, pixel size and channel names.

    Parameters
    ----------
    path
        A local path or a ``gs://bucket/key`` URL of a TIFF, OME-TIFF, ImageJ TIFF or PNG.
    config
        Reader settings: the size above which files open lazily, an axes override, whether
        a truncated file's complete planes may be opened (``allow_partial``).
    lazy
        Force (True) or forbid (False) lazy loading; default: decided by ``config.lazy_limit``.

    Raises
    ------
    ImageReadError
        For a missing, foreign, empty, truncated or corrupt file; the message names the file
        and the problem in one line.
    """
    config = config or ReaderConfig()
    path = os.fspath(path)
    if not is_supported(path):
        raise ImageReadError(
            path,
            "not a TIFF or PNG file nor an EM format "
            "(reads .tif, .tiff, .ome.tif, .png, .dm3, .dm4, .emd, .ser, .mrc)",
        )
    if is_em(path):  # DM3/DM4, EMD, SER, MRC (the ``em`` extra)
        image = read_em(path, lazy=lazy, lazy_limit=config.lazy_limit)
        return to_canonical(override_axes(image, config.axes) if config.axes else image)
    try:
        fh, size = open_binary(path)
    except FileNotFoundError:
        raise ImageReadError(path, "no such file") from None
    except IsADirectoryError:
        raise ImageReadError(path, "is a folder, not a file") from None
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot open ({exc})") from None
    keep_open = False
    try:
        if size == 0:
            raise ImageReadError(path, "empty file (0 bytes)")
        head = fh.read(8)
        fh.seek(0)
        if head[:4] in TIFF_MAGICS:
            use_lazy = size > config.lazy_limit if lazy is None else lazy
            image = read_tiff(fh, path, size, lazy=use_lazy, allow_partial=config.allow_partial)
            keep_open = image.lazy
        elif head == PNG_MAGIC:
            image = read_png(fh, path, size)
        else:
            kind = "TIFF" if path.lower().endswith(TIFF_SUFFIXES) else "PNG"
            raise ImageReadError(path, f"not a {kind} file (wrong magic bytes {head[:4]!r})")
    finally:
        if not keep_open:
            fh.close()
    if config.axes is not None:
        image = override_axes(image, config.axes)
    return to_canonical(image)


def override_axes(image: ImageData, axes: str) -> ImageData:
    """Relabel the axes of ``image`` (pixel sizes are kept for letters present in both)."""
    try:
        axes = validate_axes(axes, image.data.ndim)
    except ValueError as exc:
        raise ImageReadError(image.path, str(exc)) from None
    return image.with_data(image.data, axes=axes, lazy=image.lazy)
