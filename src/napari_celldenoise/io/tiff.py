"""TIFF, OME-TIFF and ImageJ hyperstacks through tifffile: pixels, axes, pixel size, channels."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from typing import IO, Any

from .axes import from_tifffile_axes, normalize_unit, to_micrometres
from .errors import ImageReadError
from .image import ImageData
from .limits import BOMB_MIN, BOMB_RATIO, available_memory
from .truncated import find_shortfall, read_partial

logger = logging.getLogger(__name__)

TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def read_tiff(
    fh: IO[bytes], path: str, size: int, *, lazy: bool, allow_partial: bool = False
) -> ImageData:
    """Read the first series of a TIFF from an open binary file ``fh`` of ``size`` bytes.

    With ``lazy`` the pixels stay on disk as a dask array backed by tifffile's zarr store
    (the file handle is kept open for as long as the array lives). A file holding fewer
    planes than its metadata declares is refused (see :mod:`.truncated`) unless
    ``allow_partial``: then its complete planes are read, with a warning, and
    ``extra["partial"]`` says how many of how many.
    """
    import tifffile

    try:
        tif = tifffile.TiffFile(fh, name=path.rsplit("/", 1)[-1])
    except Exception as exc:  # tifffile raises TiffFileError, struct.error, ValueError...
        raise ImageReadError(path, f"not a readable TIFF ({_short(exc)})") from None
    try:
        return _read_series(tif, fh, path, size, lazy=lazy, allow_partial=allow_partial)
    except ImageReadError:
        tif.close()
        raise
    except (MemoryError, RecursionError):
        tif.close()
        raise ImageReadError(
            path, "corrupt TIFF structure (needs more memory than it holds)"
        ) from None
    except Exception as exc:  # a corrupt directory surfaces anywhere in tifffile
        tif.close()
        raise ImageReadError(path, f"corrupt TIFF ({_short(exc)})") from None


def _read_series(
    tif: Any, fh: IO[bytes], path: str, size: int, *, lazy: bool, allow_partial: bool
) -> ImageData:
    if not tif.series:
        raise ImageReadError(
            path, "not a readable TIFF (no image found: broken header or truncated)"
        )
    series = tif.series[0]
    extra: dict[str, Any] = {}
    short = find_shortfall(tif, series, fh, size)
    if short is not None and not allow_partial:
        raise ImageReadError(path, short.message())
    if short is not None:
        data, tf_axes = read_partial(tif, series, fh, size, short, lazy=lazy, path=path)
        extra["partial"] = {"declared": short.declared, "present": short.present}
    else:
        _check_complete(series, size, path)
        _check_allocation(series, size, path, lazy=lazy)
        data, tf_axes = None, series.axes
    try:
        shape = tuple(series.shape) if data is None else tuple(data.shape)
        axes = from_tifffile_axes(tf_axes, shape)
    except ValueError as exc:
        raise ImageReadError(path, f"unsupported axes ({exc})") from None
    if tif.is_ome:
        fmt, (scale, units, names) = "ome-tiff", _ome_meta(tif.ome_metadata or "")
    elif tif.is_imagej:
        fmt, (scale, units, names) = "imagej-tiff", _imagej_meta(tif, axes, shape)
    else:
        fmt, (scale, units, names) = "tiff", _resolution_meta(tif.pages.first)
    if data is None and lazy:
        data = _lazy_array(series)
    elif data is None:
        try:
            data = series.asarray()
        except Exception as exc:
            raise ImageReadError(path, f"corrupt image data ({_short(exc)})") from None
    if lazy:
        extra["_keepalive"] = (tif, fh)
    else:
        tif.close()
    try:
        return ImageData(
            data=data,
            axes=axes,
            scale=scale,
            units=units,
            channel_names=names,
            path=path,
            size_bytes=size,
            lazy=lazy,
            format=fmt,
            extra=extra,
        )
    except ValueError as exc:
        raise ImageReadError(path, f"inconsistent image metadata ({_short(exc)})") from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _check_complete(series: Any, size: int, path: str) -> None:
    """Raise if the file ends before the image data it declares (a truncated copy)."""
    end = 0
    if series.dataoffset is not None:  # contiguous, uncompressed: one check
        end = series.dataoffset + series.nbytes
    else:
        for page in series.pages:
            if page is None:
                continue
            offsets, counts = page.dataoffsets, page.databytecounts
            if offsets:
                end = max(end, max(o + c for o, c in zip(offsets, counts)))
    if end > size:
        raise ImageReadError(
            path, f"truncated file: it has {size} bytes but its image data needs {end} bytes"
        )


def _check_allocation(series: Any, size: int, path: str, *, lazy: bool) -> None:
    """Refuse, before allocating, pixels the file cannot hold or memory cannot take.

    Uncompressed data must be in the file byte for byte, so a header claiming
    100000 x 100000 x 1000 pixels in a small file is corrupt; compressed data may not claim
    more than 256 MiB at a ratio beyond 5000:1; an eager read must also fit in the memory
    available now (larger files open lazily).
    """
    nbytes = int(series.nbytes)
    if nbytes == 0:
        raise ImageReadError(path, f"empty image (shape {list(series.shape)})")
    key = series.keyframe
    if key is not None and key.compression == 1 and nbytes > size:
        raise ImageReadError(
            path,
            f"corrupt TIFF: it declares {'x'.join(map(str, series.shape))} pixels "
            f"({nbytes} bytes) but the file has {size} bytes",
        )
    if key is not None and key.compression != 1 and nbytes > BOMB_MIN:
        if nbytes > BOMB_RATIO * size:
            raise ImageReadError(
                path,
                f"corrupt TIFF: it declares {nbytes} bytes of pixels from {size} bytes of "
                f"compressed data (more than {BOMB_RATIO}:1)",
            )
    available = available_memory()
    if not lazy and available is not None and nbytes > available:
        raise ImageReadError(
            path,
            f"its {nbytes / 1e9:.1f} GB of pixels do not fit in the {available / 1e9:.1f} GB of "
            "memory available (open it lazily: lower CELLDENOISE_LAZY_LIMIT)",
        )


def _lazy_array(series: Any) -> Any:
    import dask.array as da
    import zarr

    store = series.aszarr(level=0)
    z = zarr.open(store, mode="r")
    return da.from_zarr(z)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ome_meta(xml: str) -> tuple[dict, dict, list[str] | None]:
    """Physical sizes, time increment and channel names of the first OME Image."""
    scale: dict[str, float] = {}
    units: dict[str, str] = {}
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        logger.warning("OME-XML could not be parsed; pixel size unknown")
        return scale, units, None
    pixels = next((el for el in root.iter() if _local(el.tag) == "Pixels"), None)
    if pixels is None:
        return scale, units, None
    attrs = pixels.attrib
    for ax in "XYZ":
        if f"PhysicalSize{ax}" in attrs:
            scale[ax] = float(attrs[f"PhysicalSize{ax}"])
            units[ax] = normalize_unit(attrs.get(f"PhysicalSize{ax}Unit", "µm"))
    if "TimeIncrement" in attrs:
        scale["T"] = float(attrs["TimeIncrement"])
        units["T"] = normalize_unit(attrs.get("TimeIncrementUnit", "s"))
    names = [ch.attrib.get("Name", "") for ch in pixels if _local(ch.tag) == "Channel"]
    return scale, units, (names if names and all(names) else None)


def _imagej_meta(tif: Any, axes: str, shape: tuple[int, ...]) -> tuple[dict, dict, list | None]:
    """ImageJ: XY from resolution tags in ``unit``, Z ``spacing``, T ``finterval``."""
    meta = tif.imagej_metadata or {}
    unit = normalize_unit(meta.get("unit"))
    scale: dict[str, float] = {}
    units: dict[str, str] = {}
    page = tif.pages.first
    for ax, tag in (("X", "XResolution"), ("Y", "YResolution")):
        size = _pixel_size(page, tag)
        if size is not None:
            scale[ax], units[ax] = size, unit
    if "spacing" in meta:
        scale["Z"], units["Z"] = float(meta["spacing"]), unit
    if "finterval" in meta:
        scale["T"] = float(meta["finterval"])
        units["T"] = normalize_unit(meta.get("tunit", "s"))
    scale, units, _ = _plausible(scale, units)
    names = None
    labels = meta.get("Labels")
    if "C" in axes and isinstance(labels, (list, tuple)):
        n = shape[axes.index("C")]
        if len(labels) >= n and all(labels[:n]):
            names = [str(x) for x in labels[:n]]
    return scale, units, names


def _plausible(scale: dict, units: dict) -> tuple[dict, dict, None]:
    """Drop X/Y pixel sizes outside 0.1 nm .. 1 mm: no microscope makes them, but writers
    store such values when nothing was calibrated (e.g. 1 pixel per 100 cm, or ImageJ's
    2147483646/5000 resolution)."""
    for ax in "XY":
        if ax in scale:
            um = to_micrometres(scale[ax], units[ax])
            if um is not None and not 1e-4 <= um <= 1e3:
                logger.info("ignoring implausible pixel size %g %s", scale[ax], units[ax])
                scale.pop(ax)
                units.pop(ax)
    if ("X" in scale) != ("Y" in scale):
        scale.pop("X", None), scale.pop("Y", None), units.pop("X", None), units.pop("Y", None)
    return scale, units, None


def _pixel_size(page: Any, tag: str) -> float | None:
    t = page.tags.get(tag)
    if t is None:
        return None
    num, den = t.value
    if not num or not den:
        return None
    return den / num


def _resolution_meta(page: Any) -> tuple[dict, dict, None]:
    """Plain TIFF: pixel size from the resolution tags when the unit is inch or centimetre.

    The common screen defaults (72 or 96 dots per inch) carry no physical meaning and are
    ignored.
    """
    scale: dict[str, float] = {}
    units: dict[str, str] = {}
    unit_tag = page.tags.get("ResolutionUnit")
    unit_code = int(unit_tag.value) if unit_tag is not None else 2
    if unit_code not in (2, 3):
        return scale, units, None
    for ax, tag in (("X", "XResolution"), ("Y", "YResolution")):
        t = page.tags.get(tag)
        if t is None:
            continue
        num, den = t.value
        if not num or not den:
            continue
        per_unit = num / den
        if unit_code == 2 and round(per_unit, 3) in (72.0, 96.0, 1.0):
            continue
        um = (25400.0 if unit_code == 2 else 10000.0) / per_unit
        scale[ax], units[ax] = float(um), "µm"
    return _plausible(scale, units)
