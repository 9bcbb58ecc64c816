"""Electron-microscopy formats: DM3/DM4, EMD (Velox, Berkeley), SER (TIA) and MRC.

The instrument formats are read by RosettaSciIO (HyperSpy's reader library), MRC by ``mrcfile``;
both come with the ``em`` extra (``pip install 'napari-celldenoise[em]'``) and are imported only
when such a file is opened. Pixel sizes arrive as RosettaSciIO axes dicts (``scale``, ``units``)
or as MRC voxel sizes in ångström; lengths are given to :class:`ImageData` in nm (napari's unit
registry knows nm, not Å), so an EM image and its outputs carry the same scale as any other.
"""

from __future__ import annotations

import logging
import os
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from .axes import normalize_unit
from .errors import ImageReadError
from .fs import is_remote
from .image import ImageData

logger = logging.getLogger(__name__)

EM_INSTALL = "pip install 'napari-celldenoise[em]'"

# suffix -> (RosettaSciIO module or "mrc", format name)
_FORMATS = {
    ".dm3": ("digitalmicrograph", "dm3"),
    ".dm4": ("digitalmicrograph", "dm4"),
    ".emd": ("emd", "emd"),
    ".ser": ("tia", "ser"),
    ".mrc": ("mrc", "mrc"),
    ".mrcs": ("mrc", "mrc"),
    ".rec": ("mrc", "mrc"),
}
EM_SUFFIXES = tuple(_FORMATS)

# factors to nm for the length units EM files write
_TO_NM = {"nm": 1.0, "Å": 0.1, "pm": 1e-3, "µm": 1e3, "mm": 1e6, "m": 1e9}


def is_em(path: str | os.PathLike) -> bool:
    """Whether the file name says DM3/DM4, EMD, SER or MRC."""
    return PurePosixPath(os.fspath(path)).name.lower().endswith(EM_SUFFIXES)


def read_em(
    path: str | os.PathLike, *, lazy: bool | None = False, lazy_limit: int = 2**30
) -> ImageData:
    """Open an EM file with its pixel size (in nm where the file gives a length).

    ``lazy`` (None: files over ``lazy_limit`` bytes) memory-maps MRC volumes as dask arrays;
    the instrument formats are read whole.

    Raises
    ------
    ImageReadError
        When the reader library is missing (the message says what to install), the file is
        remote, missing or broken, or holds no image (for example only a spectrum).
    """
    path = os.fspath(path)
    if is_remote(path):
        raise ImageReadError(path, "EM formats are read from local files only; copy it first")
    suffix = "." + PurePosixPath(path).name.lower().rsplit(".", 1)[-1]
    module, fmt = _FORMATS[suffix]
    if not os.path.exists(path):
        raise ImageReadError(path, "no such file")
    if os.path.isdir(path):
        raise ImageReadError(path, "is a folder, not a file")
    if os.path.getsize(path) == 0:
        raise ImageReadError(path, "empty file (0 bytes)")
    if module == "mrc":
        size = os.path.getsize(path)
        return _read_mrc(path, lazy=size > lazy_limit if lazy is None else bool(lazy))
    return _read_rsciio(path, module, fmt)


def _read_rsciio(path: str, module: str, fmt: str) -> ImageData:
    import importlib

    try:
        reader = importlib.import_module(f"rsciio.{module}").file_reader
    except ImportError:
        raise ImageReadError(
            path, f"reading .{fmt} files needs rosettasciio: {EM_INSTALL}"
        ) from None
    try:
        signals = reader(path, lazy=False)
    except Exception as exc:  # the readers raise many kinds for a broken file
        raise ImageReadError(path, f"cannot read this .{fmt} file ({_short(exc)})") from None
    images = [s for s in signals if _signal_axes(s) == 2]
    if not images:
        raise ImageReadError(path, f"the .{fmt} file holds no image (only spectra or tables)")
    first = images[0]
    same = [s for s in images if np.shape(s["data"]) == np.shape(first["data"])]
    if len(images) > 1:
        logger.info("%s holds %d images; %d of the first one's shape", path, len(images), len(same))
    return _to_image(path, fmt, same)


def _signal_axes(signal: dict[str, Any]) -> int:
    axes = signal.get("axes") or []
    data = np.asarray(signal.get("data"))
    if data.dtype.fields is not None:  # RGB(A) records of DigitalMicrograph: not supported
        return -1
    return sum(1 for a in axes if not a.get("navigate", False))


def _to_image(path: str, fmt: str, signals: list[dict[str, Any]]) -> ImageData:
    """One :class:`ImageData` from image signals of one shape (several become channels)."""
    first = signals[0]
    axes_info = sorted(first["axes"], key=lambda a: a.get("index_in_array", 0))
    data = np.asarray(first["data"])
    if np.iscomplexobj(data):
        logger.info("%s: complex image, showing its modulus", path)
    letters, scale, units = [], {}, {}
    spare = ["Z", "T"]
    for info in axes_info:
        unit = info.get("units")
        unit = "pixel" if not isinstance(unit, str) or unit.startswith("<") else unit
        if not info.get("navigate", False):
            letter = "Y" if "Y" not in letters else "X"  # array order: rows, then columns
        elif unit in ("s", "ms", "min", "h") and "T" in spare:
            letter = "T"
        elif spare:
            letter = spare[0]
        else:
            raise ImageReadError(path, f"too many navigation axes ({len(axes_info)}-D data)")
        if letter in spare:
            spare.remove(letter)
        letters.append(letter)
        value, unit = length_in_nm(float(info.get("scale", 1.0) or 1.0), unit)
        scale[letter], units[letter] = value, unit
    stacked = [np.abs(s["data"]) if np.iscomplexobj(s["data"]) else s["data"] for s in signals]
    names = None
    if len(stacked) > 1:
        data = np.stack([np.asarray(d) for d in stacked], axis=0)
        letters = ["C", *letters]
        names = [str(s.get("metadata", {}).get("General", {}).get("title", "")) for s in signals]
    else:
        data = np.asarray(stacked[0])
    title = first.get("metadata", {}).get("General", {}).get("title", "")
    return ImageData(
        data=data,
        axes="".join(letters),
        scale=scale,
        units=units,
        channel_names=names if names and all(names) else None,
        path=path,
        size_bytes=os.path.getsize(path),
        format=fmt,
        extra={"title": title} if title else {},
    )


def length_in_nm(value: float, unit: str) -> tuple[float, str]:
    """A step in nm when ``unit`` is a length, else unchanged (``1/nm``, ``eV``, ``pixel``)."""
    unit = normalize_unit(unit)
    factor = _TO_NM.get(unit)
    if factor is None:
        return value, unit
    return value * factor, "nm"


def _read_mrc(path: str, *, lazy: bool) -> ImageData:
    try:
        import mrcfile
    except ImportError:
        raise ImageReadError(path, f"reading .mrc files needs mrcfile: {EM_INSTALL}") from None
    try:
        mrc = mrcfile.mmap(path, mode="r", permissive=True) if lazy else mrcfile.open(path)
    except Exception as exc:
        raise ImageReadError(path, f"cannot read this MRC file ({_short(exc)})") from None
    keep = []
    try:
        if mrc.data is None:
            raise ImageReadError(path, "the MRC file holds no data")
        voxel = mrc.voxel_size  # Å, recarray with x, y, z
        data = mrc.data
        if lazy:
            import dask.array as da

            data = da.from_array(data, chunks=(1, *data.shape[1:]) if data.ndim == 3 else -1)
            keep = [mrc]
        else:
            data = np.array(data)
    finally:
        if not keep:
            mrc.close()
    if data.ndim not in (2, 3):
        raise ImageReadError(
            path, f"MRC data with {data.ndim} dimensions is not an image or volume"
        )
    axes = "YX" if data.ndim == 2 else "ZYX"
    scale, units = {}, {}
    for letter in axes:
        step = float(voxel[letter.lower()])
        if step > 0:
            scale[letter], units[letter] = length_in_nm(step, "Å")
    return ImageData(
        data=data,
        axes=axes,
        scale=scale,
        units=units,
        path=path,
        size_bytes=os.path.getsize(path),
        lazy=lazy,
        format="mrc",
        extra={"_keepalive": keep} if keep else {},
    )


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
