"""PNG images (8/16-bit grey or colour), with pixel size from the ``pHYs`` chunk."""

from __future__ import annotations

import struct
from typing import IO

import numpy as np

from .errors import ImageReadError
from .image import ImageData

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_png(fh: IO[bytes], path: str, size: int) -> ImageData:
    import imagecodecs

    raw = fh.read()
    if not raw.startswith(PNG_MAGIC):
        raise ImageReadError(path, "not a PNG file (wrong magic bytes)")
    try:
        data = np.asarray(imagecodecs.png_decode(raw))
    except Exception as exc:
        raise ImageReadError(path, f"corrupt or truncated PNG ({exc})") from None
    if data.ndim == 3 and data.shape[-1] in (3, 4):
        axes = "YXS"
    elif data.ndim == 3 and data.shape[-1] in (1, 2):  # grey (+ alpha): keep the grey values
        data, axes = data[..., 0], "YX"
    else:
        axes = "YX"
    scale, units = {}, {}
    pixel = _phys_micrometres(raw)
    if pixel is not None:
        scale = {"Y": pixel[1], "X": pixel[0]}
        units = {"Y": "µm", "X": "µm"}
    return ImageData(
        data=data, axes=axes, scale=scale, units=units, path=path, size_bytes=size, format="png"
    )


def _phys_micrometres(raw: bytes) -> tuple[float, float] | None:
    """Pixel size (x, y) in µm from a ``pHYs`` chunk in metres, if present."""
    pos = 8
    while pos + 8 <= len(raw):
        length, kind = struct.unpack(">I4s", raw[pos : pos + 8])
        if kind == b"pHYs" and length == 9:
            ppx, ppy, unit = struct.unpack(">IIB", raw[pos + 8 : pos + 17])
            if unit == 1 and ppx and ppy:
                return 1e6 / ppx, 1e6 / ppy
            return None
        if kind in (b"IDAT", b"IEND"):
            return None
        pos += 12 + length
    return None
