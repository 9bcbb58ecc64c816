"""Write images as OME-TIFF, atomically, keeping axes, physical sizes, channel names and the
provenance (the job spec that made the image, see :mod:`.provenance`)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path, write_error_text
from .axes import CANONICAL
from .errors import ImageWriteError
from .fs import filesystem, is_remote
from .image import ImageData
from .provenance import ome_annotation

_OME_LENGTH = {"µm": "µm", "nm": "nm", "mm": "mm", "cm": "cm", "m": "m", "Å": "Å"}
_OME_TIME = {"s": "s", "ms": "ms", "min": "min", "h": "h"}


def to_canonical(image: ImageData) -> ImageData:
    """Reorder the axes of ``image`` to ``TZCYXS`` order (lazy for dask arrays)."""
    order = sorted(range(len(image.axes)), key=lambda i: CANONICAL.index(image.axes[i]))
    if order == list(range(len(order))):
        return image
    axes = "".join(image.axes[i] for i in order)
    return image.with_data(image.data.transpose(order), axes=axes, lazy=image.lazy)


def write_ome_tiff(
    path: str | os.PathLike,
    image: ImageData,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike] = (),
    provenance: Mapping[str, Any] | None = None,
) -> str:
    """Write ``image`` to ``path`` as OME-TIFF.

    The file appears only when complete (written under a temporary name, then renamed; on
    ``gs://`` uploaded from a local temporary file). Lazy (dask) images are written plane by
    plane in bounded memory.

    Parameters
    ----------
    overwrite
        Replace an existing file at ``path``.
    inputs
        Paths the data was read from; writing over one of them is refused unless
        ``overwrite`` is True (the source of ``image`` is always among them).
    provenance
        What made the image (``spec``, ``history``, ``software``), stored in the OME-XML as
        a ``MapAnnotation`` (see :func:`.provenance.read_provenance`).

    Returns
    -------
    The path written.
    """
    target = os.fspath(path)
    sources = {os.fspath(p) for p in inputs} | ({image.path} if image.path else set())
    if not overwrite and _same_file(target, sources):
        raise ImageWriteError(f"{target}: refusing to overwrite an input file")
    image = to_canonical(image)
    if is_remote(target):
        fs, inner = filesystem(target)
        if fs.exists(inner) and not overwrite:
            raise ImageWriteError(f"{target}: already exists (use overwrite to replace it)")
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "upload.ome.tif"
            _write_local(local, image, provenance)
            fs.put_file(str(local), inner)
        return target
    try:
        with atomic_path(target, overwrite=overwrite) as tmp:
            _write_local(tmp, image, provenance)
    except (FileExistsError, FileNotFoundError, IsADirectoryError) as exc:
        raise ImageWriteError(str(exc)) from None
    except OSError as exc:  # a full disk, a size limit, a read-only folder
        raise ImageWriteError(write_error_text(exc, target)) from None
    return target


def _same_file(target: str, sources: set[str]) -> bool:
    if is_remote(target):
        return target in sources
    t = Path(target).resolve()
    return any(not is_remote(s) and Path(s).resolve() == t for s in sources)


def ome_metadata(image: ImageData, provenance: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The tifffile ``metadata`` dict for an OME-TIFF of ``image`` (axes in canonical order),
    with ``provenance`` as a ``MapAnnotation`` when given."""
    meta: dict[str, Any] = {"axes": image.axes}
    for ax in "XYZ":
        unit = image.units.get(ax)
        if ax in image.scale and unit in _OME_LENGTH:
            meta[f"PhysicalSize{ax}"] = float(image.scale[ax])
            meta[f"PhysicalSize{ax}Unit"] = _OME_LENGTH[unit]
    if "T" in image.scale and image.units.get("T") in _OME_TIME:
        meta["TimeIncrement"] = float(image.scale["T"])
        meta["TimeIncrementUnit"] = _OME_TIME[image.units["T"]]
    if image.channel_names:
        meta["Channel"] = {"Name": list(image.channel_names)}
    if provenance:
        meta["MapAnnotation"] = ome_annotation(provenance)
    return meta


def _planes(data: Any, n_lead: int) -> Iterator[np.ndarray]:
    for index in product(*(range(s) for s in data.shape[:n_lead])):
        yield np.asarray(data[index])


def _write_local(path: Path, image: ImageData, provenance: Mapping[str, Any] | None) -> None:
    import tifffile

    data = image.data
    n_plane = 3 if image.rgb else 2
    n_lead = data.ndim - n_plane
    nbytes = int(np.prod(data.shape, dtype=np.int64)) * np.dtype(data.dtype).itemsize
    options: dict[str, Any] = {
        "ome": True,
        "metadata": ome_metadata(image, provenance),
        "bigtiff": nbytes > 2**32 - 2**25,
        "photometric": "rgb" if image.rgb else "minisblack",
    }
    if image.lazy or hasattr(data, "dask"):
        tifffile.imwrite(path, _planes(data, n_lead), shape=data.shape, dtype=data.dtype, **options)
    else:
        tifffile.imwrite(path, np.asarray(data), **options)


__all__ = ["ImageWriteError", "ome_metadata", "to_canonical", "write_ome_tiff"]
