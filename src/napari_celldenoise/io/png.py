"""PNG images (8/16-bit grey, colour or palette), with pixel size from the ``pHYs`` chunk.

A palette ("P" mode) PNG whose palette is a monotone ramp of one colour -- entry ``i`` is
``(0, i, 0)`` for the green lookup table ImageJ saves -- holds one intensity channel: its
pixels are the palette indices and its colour becomes the layer's colormap. A palette of grey
entries gives the grey values. Any other palette is true colour (``YXS``).
"""

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
    _check_declared_size(raw, path)
    try:
        data = np.asarray(imagecodecs.png_decode(raw))
    except Exception as exc:
        raise ImageReadError(path, f"corrupt or truncated PNG ({exc})") from None
    chunks = _header_chunks(raw)
    extra = {}
    palette = _palette(chunks)
    if palette is not None and data.ndim == 3 and data.shape[-1] in (3, 4):
        intensity = palette_intensity(data[..., :3], palette)
        if intensity is not None:
            data, colormap = intensity
            if colormap is not None:
                extra["palette"] = colormap
    if data.ndim == 3 and data.shape[-1] in (3, 4):
        axes = "YXS"
    elif data.ndim == 3 and data.shape[-1] in (1, 2):  # grey (+ alpha): keep the grey values
        data, axes = data[..., 0], "YX"
    else:
        axes = "YX"
    scale, units = {}, {}
    pixel = _phys_micrometres(chunks)
    if pixel is not None:
        scale = {"Y": pixel[1], "X": pixel[0]}
        units = {"Y": "µm", "X": "µm"}
    return ImageData(
        data=data,
        axes=axes,
        scale=scale,
        units=units,
        path=path,
        size_bytes=size,
        format="png",
        extra=extra,
    )


# deflate cannot shrink data more than about 1032:1 (RFC 1951: a 258-byte match per symbol)
_DEFLATE_MAX_RATIO = 1032
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel


def _check_declared_size(raw: bytes, path: str) -> None:
    """Refuse, before decoding, a PNG whose header claims more pixels than its compressed
    data can hold (a corrupt ``IHDR`` asking for gigabytes), or none at all."""
    if len(raw) < 33 or raw[12:16] != b"IHDR":
        raise ImageReadError(path, "corrupt or truncated PNG (no IHDR header)")
    width, height, depth, colour = struct.unpack(">IIBB", raw[16:26])
    if width == 0 or height == 0:
        raise ImageReadError(path, f"corrupt PNG (declares {width} x {height} pixels)")
    samples = _CHANNELS.get(colour, 4)
    decoded = height * (1 + (width * samples * max(depth, 1) + 7) // 8)
    if decoded > _DEFLATE_MAX_RATIO * len(raw) + (1 << 20):
        raise ImageReadError(
            path,
            f"corrupt or truncated PNG: it declares {width} x {height} pixels "
            f"({decoded} bytes), more than its {len(raw)} bytes can hold",
        )


def palette_intensity(
    rgb: np.ndarray, palette: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """One intensity channel for pixels drawn from a one-colour or grey palette, else None.

    Parameters
    ----------
    rgb
        ``(..., 3)`` pixel colours, every one an entry of ``palette``.
    palette
        ``(n, 3)`` uint8 palette entries.

    Returns
    -------
    tuple or None
        ``(intensity, colormap)``. For a palette whose distinct entries are a monotone ramp of
        one colour (``t_i * c``, ``t`` increasing or decreasing), the intensity is the palette
        index (uint8) and ``colormap`` the palette as ``(n, 3)`` floats in 0-1 (None for the
        plain grey ramp ``(i, i, i)``, where index and grey value agree). For other grey
        palettes, the grey value and None. None for a palette with true colours.
    """
    palette = np.asarray(palette, dtype=np.int64).reshape(-1, 3)
    if _is_one_colour_ramp(palette):
        packed = _pack(palette)
        order = np.argsort(packed)
        found = np.searchsorted(packed[order], _pack(rgb))
        index = order[np.clip(found, 0, len(order) - 1)]
        if np.array_equal(palette[index], rgb):
            plain = np.array_equal(palette, np.repeat(np.arange(len(palette))[:, None], 3, 1))
            return index.astype(np.uint8), None if plain else palette / 255.0
    if (palette == palette[:, :1]).all():
        return np.ascontiguousarray(rgb[..., 0]), None
    return None


def _is_one_colour_ramp(palette: np.ndarray) -> bool:
    """Distinct entries ``t_i * c`` (within rounding) with ``t`` strictly monotone."""
    if len(palette) < 2 or len(np.unique(_pack(palette))) != len(palette):
        return False
    top = palette[np.argmax((palette**2).sum(axis=1))].astype(float)
    if not top.any():
        return False
    t = palette @ top / (top @ top)
    if np.abs(palette - t[:, None] * top).max() > 1.0:
        return False
    step = np.diff(t)
    return bool((step > 0).all() or (step < 0).all())


def _pack(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb, dtype=np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _header_chunks(raw: bytes) -> dict[bytes, bytes]:
    """The chunks before the image data (``IHDR``, ``PLTE``, ``pHYs``, ...) by type."""
    chunks: dict[bytes, bytes] = {}
    pos = 8
    while pos + 8 <= len(raw):
        length, kind = struct.unpack(">I4s", raw[pos : pos + 8])
        if kind in (b"IDAT", b"IEND"):
            break
        chunks.setdefault(kind, raw[pos + 8 : pos + 8 + length])
        pos += 12 + length
    return chunks


def _palette(chunks: dict[bytes, bytes]) -> np.ndarray | None:
    """The ``(n, 3)`` palette of an indexed-colour PNG (colour type 3), else None."""
    header, plte = chunks.get(b"IHDR", b""), chunks.get(b"PLTE", b"")
    if len(header) < 10 or header[9] != 3 or not plte or len(plte) % 3:
        return None
    return np.frombuffer(plte, np.uint8).reshape(-1, 3)


def _phys_micrometres(chunks: dict[bytes, bytes]) -> tuple[float, float] | None:
    """Pixel size (x, y) in µm from a ``pHYs`` chunk in metres, if present."""
    phys = chunks.get(b"pHYs", b"")
    if len(phys) != 9:
        return None
    ppx, ppy, unit = struct.unpack(">IIB", phys)
    if unit == 1 and ppx and ppy:
        return 1e6 / ppx, 1e6 / ppy
    return None
