"""Find TIFFs that hold fewer planes than their own metadata declares (a truncated copy).

tifffile opens a cut-off OME-TIFF or ImageJ hyperstack without complaint: it keeps the image
directories it can reach and shows the first plane, or fills the missing ones with zeros. This
module compares what the file says it holds with what is really in it:

- OME-XML ``Pixels`` ``SizeZ``/``SizeC``/``SizeT`` (channels counted per sample, so RGB is one
  plane), ImageJ's ``images=`` or tifffile's ``{"shape": ...}`` in the first page's
  description;
- the first image directory itself: its next-directory pointer or a tag value (tifffile writes
  the OME-XML last) lying beyond the end of the file means the file was cut, even when the
  metadata that said how much is gone; so does the last directory tifffile reached pointing
  to a next one beyond the end (a plain multi-page TIFF cut between planes). Data written
  contiguously before that pointer then gives a lower bound on the plane count.

A file that holds fewer planes is refused with one line naming both numbers, unless the caller
opts in (``allow_partial``): then the complete planes are read (as whole time points where the
axes are known) with a warning. That rescues an interrupted acquisition.
"""

from __future__ import annotations

import logging
import math
import struct
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from .errors import ImageReadError
from .limits import available_memory, plane_plausible

logger = logging.getLogger(__name__)

OPT_IN = "--allow-partial or CELLDENOISE_ALLOW_PARTIAL=1 opens the readable planes"

# TIFF field types -> bytes per value (TIFF 6.0, BigTIFF adds 16-18)
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_TYPE_SIZE.update({16: 8, 17: 8, 18: 8})


@dataclass(frozen=True)
class Shortfall:
    """A TIFF holding fewer planes than it declares.

    Attributes
    ----------
    present
        Complete planes in the file, counted from the first.
    declared
        Planes the metadata declares, or None when that metadata was itself cut off.
    source
        Where ``declared`` comes from (``"its OME-XML (Size*)"``, ...).
    lead
        Axis letters and sizes of the declared planes (outermost first), or None when the
        metadata is lost: the planes then form one stack.
    size, needed
        The file's size and, when the first directory points beyond it, the furthest byte.
    broken
        What is wrong when the planes are there but their directories are not (a loop).
    at_least
        Planes written before the first directory's next-directory pointer (a lower bound
        on what the file held, from a contiguous layout), when more than ``present``.
    """

    present: int
    declared: int | None = None
    source: str = ""
    lead: tuple[tuple[str, int], ...] | None = None
    size: int = 0
    needed: int | None = None
    at_least: int | None = None
    broken: str | None = None

    def problem(self) -> str:
        if self.broken is not None:
            return f"corrupt TIFF: {self.broken}"
        if self.declared is not None:
            return (
                f"truncated file: {self.source} declares {self.declared} image planes but "
                f"only {self.present} are complete in it"
            )
        held = f"at least {self.at_least} image planes were written, " if self.at_least else ""
        return (
            f"truncated file: it has {self.size} bytes but its image directories point to "
            f"byte {self.needed} (metadata cut off); {held}{self.present} complete planes remain"
        )

    def message(self) -> str:
        return f"{self.problem()} ({OPT_IN})"


def find_shortfall(tif: Any, series: Any, fh: IO[bytes], size: int) -> Shortfall | None:
    """The shortfall of ``series`` (tifffile's first series of ``tif``), or None if complete."""
    pages = _known_pages(series)
    key = series.keyframe
    plane_bytes = int(key.nbytes) if key is not None else 0
    declared = _declared(tif)
    overrun = _ifd_overrun(fh, size)
    if overrun is None and declared is None:  # nothing says how many: walk the chain
        n_dirs, last, looped = _walk_chain(fh, size)
        if looped:
            return Shortfall(
                len(pages),
                broken=f"its image directory chain loops back after {n_dirs} directories",
            )
        overrun = _ifd_overrun(fh, size, last)  # a chain cut after a directory
    missing = any(p is None for p in pages)
    if declared is None and overrun is None and not missing:
        return None
    present = _present_planes(pages, key, size, plane_bytes, fh)
    if declared is not None:
        count, source, lead = declared
        if present < count:
            return Shortfall(present, count, source, lead)
        if missing:
            lost = sum(p is None for p in pages)
            return Shortfall(
                present,
                count,
                source,
                lead,
                broken=f"{lost} of the {count} image directories that {source} declares "
                "cannot be reached (a loop or a bad offset)",
            )
    if overrun is None:
        if missing:
            return Shortfall(present, len(pages), "its directory list")
        return None
    furthest, next_ifd = overrun
    start = _data_start(key)
    least = None
    if start is not None and plane_bytes and next_ifd > start:
        written = (next_ifd - start) // plane_bytes
        least = written if written > present else None
    return Shortfall(present, size=size, needed=furthest, at_least=least)


def read_partial(
    tif: Any, series: Any, fh: IO[bytes], size: int, short: Shortfall, *, lazy: bool, path: str
) -> tuple[Any, str]:
    """The complete planes of a short file, and their tifffile-style axes.

    Where the declared axes are known, only whole outer blocks are kept (3 of 5 time points,
    not 3 and a half), the next axis shrinking when not even one is complete.
    """
    key = series.keyframe
    plane_shape = tuple(int(s) for s in key.shape)
    plane_axes = key.axes if len(key.axes) == len(plane_shape) else "YXS"[: len(plane_shape)]
    lead = list(short.lead) if short.lead else [("I", short.present)]
    lead_shape = _complete_block([n for _, n in lead], short.present)
    n = math.prod(lead_shape)
    if n == 0:
        raise ImageReadError(path, f"{short.problem()}: none to open")
    available = available_memory()
    if not lazy and available is not None and n * int(key.nbytes) > available:
        raise ImageReadError(path, f"{short.problem()}: they do not fit in memory")
    data = _planes(series, key, fh, size, n, plane_shape, lazy=lazy)
    data = data.reshape(tuple(lead_shape) + plane_shape)
    axes = "".join(a for a, _ in lead) + plane_axes
    logger.warning(
        "%s: %s; opening the first %d planes as %s %s",
        path,
        short.problem(),
        n,
        axes,
        list(data.shape),
    )
    return data, axes


def _complete_block(lead: list[int], available: int) -> list[int]:
    """The largest leading block of shape ``lead`` with whole inner blocks and at most
    ``available`` planes: outer index shrinks first, then (if 0) the next axis."""
    out: list[int] = []
    for i, size in enumerate(lead):
        inner = math.prod(lead[i + 1 :])
        whole = available // inner if inner else 0
        if whole >= 1 or i == len(lead) - 1:
            return [*out, min(size, whole), *lead[i + 1 :]]
        out.append(1)
    return out


def _planes(
    series: Any, key: Any, fh: IO[bytes], size: int, n: int, shape: tuple, *, lazy: bool
) -> Any:
    start = _data_start(key)
    dtype = np.dtype(key.dtype).newbyteorder(key.parent.byteorder)
    plane_bytes = int(key.nbytes)
    pages = _known_pages(series)[:n]
    contiguous = start is not None and _pages_contiguous(pages, start, plane_bytes)
    lock = threading.Lock()  # dask reads blocks from several threads through one handle
    if contiguous:

        def read(i: int, count: int) -> np.ndarray:
            with lock:
                fh.seek(start + i * plane_bytes)
                raw = fh.read(count * plane_bytes)
            return (
                np.frombuffer(raw, dtype).reshape((count, *shape)).astype(dtype.newbyteorder("="))
            )

    else:

        def read(i: int, count: int) -> np.ndarray:
            with lock:
                return np.stack([pages[j].asarray() for j in range(i, i + count)])

    if not lazy:
        return read(0, n)
    import dask
    import dask.array as da

    out_dtype = dtype.newbyteorder("=")
    blocks = [
        da.from_delayed(dask.delayed(read)(i, 1), shape=(1, *shape), dtype=out_dtype)
        for i in range(n)
    ]
    return da.concatenate(blocks, axis=0)


def _known_pages(series: Any) -> list:
    """The series' pages tifffile can load (None for missing ones), up to the first that
    fails: a directory cut in half raises while it is read."""
    pages = []
    try:
        for i in range(len(series.pages)):
            pages.append(series.pages[i])
    except Exception:  # tifffile raises TiffFileError, struct.error, ... on a cut directory
        pass
    return pages


def _pages_contiguous(pages: list, start: int, plane_bytes: int) -> bool:
    """Whether the known pages' data follow each other from ``start`` (uncompressed)."""
    for i, page in enumerate(pages):
        if page is None:
            return False
        offsets = page.dataoffsets
        if not offsets or offsets[0] != start + i * plane_bytes:
            return False
    return True


def _data_start(key: Any) -> int | None:
    """Start of an uncompressed plane whose strips or tiles follow each other, else None."""
    if key is None or key.compression != 1 or not key.dataoffsets:
        return None
    offsets, counts = key.dataoffsets, key.databytecounts
    if any(o + c != nxt for o, c, nxt in zip(offsets, counts, offsets[1:])):
        return None
    if sum(counts) < key.nbytes:
        return None
    return int(offsets[0])


def _present_planes(pages: list, key: Any, size: int, plane_bytes: int, fh: IO[bytes]) -> int:
    """Complete planes from the first: pages whose data lie in the file, extended by the
    contiguous layout past the last directory tifffile could reach when the directories
    were written after the data (tifffile's and ImageJ's layout: the last reachable one
    points past the planes that follow it)."""
    count = 0
    for page in pages:
        if page is None or not page.dataoffsets:
            break
        if max(o + c for o, c in zip(page.dataoffsets, page.databytecounts)) > size:
            break
        if not plane_plausible(page):  # a header claiming a plane its bytes cannot hold
            break
        count += 1
    start = _data_start(key)
    if start is not None and plane_bytes and _pages_contiguous(pages[:count], start, plane_bytes):
        if count and (count == len(pages) or pages[count] is None):
            fits = (size - start) // plane_bytes
            after = _next_pointer(fh, pages[count - 1].offset)
            if fits > count and (after == 0 or after >= start + fits * plane_bytes):
                count = fits
    return count


def _declared(tif: Any) -> tuple[int, str, tuple[tuple[str, int], ...]] | None:
    """Plane count the metadata declares, where from, and the plane axes (outermost first)."""
    if tif.is_ome:
        return _ome_planes(tif.ome_metadata or "")
    if tif.is_imagej:
        meta = tif.imagej_metadata or {}
        try:
            images = int(meta.get("images", 1))
        except (TypeError, ValueError):
            return None
        sizes = []
        for letter, name in (("T", "frames"), ("Z", "slices"), ("C", "channels")):
            try:
                n = int(meta.get(name, 1))
            except (TypeError, ValueError):
                n = 1
            if n > 1:
                sizes.append((letter, n))
        if math.prod(n for _, n in sizes) != images:
            sizes = [("I", images)] if images > 1 else []
        return images, "its ImageJ metadata (images=)", tuple(sizes)
    if tif.is_shaped:
        return _shaped_planes(tif)
    return None


def _shaped_planes(tif: Any) -> tuple[int, str, tuple[tuple[str, int], ...]] | None:
    """tifffile's own ``{"shape": [...]}`` description (a plain, tiled or compressed stack)."""
    import json

    try:
        first = tif.pages.first
        shape = [int(n) for n in json.loads(first.description)["shape"]]
        plane = len(first.shape)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError):
        return None
    lead = shape[:-plane] if len(shape) > plane else []
    if any(n < 0 for n in lead):
        return None
    axes = tuple(("I", n) for n in lead) if len(lead) == 1 else None
    return math.prod(lead), "its tifffile metadata (shape=)", axes


def _ome_planes(xml: str) -> tuple[int, str, tuple[tuple[str, int], ...]] | None:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    pixels = next((el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return None
    attrs = pixels.attrib
    try:
        sizes = {ax: int(attrs.get(f"Size{ax}", 1)) for ax in "ZCT"}
    except ValueError:
        return None
    channels = [ch for ch in pixels if ch.tag.rsplit("}", 1)[-1] == "Channel"]
    try:
        samples = int(channels[0].attrib.get("SamplesPerPixel", 1)) if channels else 1
    except ValueError:
        samples = 1
    if samples > 1 and sizes["C"] % samples == 0:
        sizes["C"] //= samples
    order = attrs.get("DimensionOrder", "XYZCT").upper()
    if sorted(order[2:]) != ["C", "T", "Z"]:
        order = "XYZCT"
    lead = tuple((ax, sizes[ax]) for ax in reversed(order[2:]) if sizes[ax] > 1)
    if any(n < 0 for n in sizes.values()):
        return None
    return math.prod(sizes.values()), "its OME-XML (Size*)", lead


def _next_pointer(fh: IO[bytes], at: int) -> int:
    """The next-directory offset stored by the directory at ``at`` (0 if unreadable)."""
    fh.seek(0)
    head = fh.read(16)
    order = "<" if head[:2] == b"II" else ">"
    try:
        big = struct.unpack(order + "H", head[2:4])[0] == 43
        cfmt, entry, ofmt = ("Q", 20, "Q") if big else ("H", 12, "I")
        fh.seek(at)
        (count,) = struct.unpack(order + cfmt, fh.read(struct.calcsize(cfmt)))
        fh.seek(at + struct.calcsize(cfmt) + count * entry)
        (after,) = struct.unpack(order + ofmt, fh.read(struct.calcsize(ofmt)))
    except (struct.error, OSError, ValueError):
        after = 0
    fh.seek(0)
    return int(after)


def _walk_chain(fh: IO[bytes], size: int, limit: int = 1 << 20) -> tuple[int, int, bool]:
    """Follow the next-directory pointers from the header: the number of directories, the
    offset of the last one inside the file, and whether the chain loops back."""
    fh.seek(0)
    head = fh.read(16)
    order = "<" if head[:2] == b"II" else ">"
    try:
        big = struct.unpack(order + "H", head[2:4])[0] == 43
        cfmt, entry, ofmt = ("Q", 20, "Q") if big else ("H", 12, "I")
        offset = struct.unpack(order + ofmt, head[8:16] if big else head[4:8])[0]
    except struct.error:
        return 0, 0, False
    seen: set[int] = set()
    last = 0
    while 0 < offset < size and len(seen) < limit:
        if offset in seen:
            fh.seek(0)
            return len(seen), last, True
        seen.add(offset)
        last = offset
        fh.seek(offset)
        raw = fh.read(struct.calcsize(cfmt))
        if len(raw) < struct.calcsize(cfmt):
            break
        (count,) = struct.unpack(order + cfmt, raw)
        fh.seek(offset + len(raw) + count * entry)
        raw = fh.read(struct.calcsize(ofmt))
        if len(raw) < struct.calcsize(ofmt):
            break
        (offset,) = struct.unpack(order + ofmt, raw)
    fh.seek(0)
    return len(seen), last, False


def _ifd_overrun(fh: IO[bytes], size: int, at: int | None = None) -> tuple[int, int] | None:
    """The furthest byte an image directory points to beyond ``size`` and its
    next-directory offset, or None when it points nowhere beyond.

    Reads the header and one directory (the first, or the one at offset ``at``): its
    entries' out-of-line values and the offset of the next directory.
    """
    fh.seek(0)
    head = fh.read(16)
    fh.seek(0)
    if len(head) < 8:
        return None
    order = "<" if head[:2] == b"II" else ">"
    big = struct.unpack(order + "H", head[2:4])[0] == 43
    try:
        if big:
            first = struct.unpack(order + "Q", head[8:16])[0]
            count_fmt, entry_size, value_size, off_fmt = "Q", 20, 8, "Q"
        else:
            first = struct.unpack(order + "I", head[4:8])[0]
            count_fmt, entry_size, value_size, off_fmt = "H", 12, 4, "I"
        first = first if at is None else at
        if first >= size:
            return None  # no directory at all: tifffile reports that itself
        fh.seek(first)
        raw = fh.read(struct.calcsize(count_fmt))
        (count,) = struct.unpack(order + count_fmt, raw)
    except struct.error:
        return None
    table_end = first + len(raw) + count * entry_size + value_size
    if table_end > size:  # checked before reading: a flipped count may claim petabytes
        return table_end, 0
    table = fh.read(count * entry_size + value_size)
    fh.seek(0)
    furthest = 0
    for i in range(count):
        entry = table[i * entry_size : (i + 1) * entry_size]
        tag_type = struct.unpack(order + "H", entry[2:4])[0]
        n = struct.unpack(order + off_fmt, entry[4 : 4 + value_size])[0]
        nbytes = n * _TYPE_SIZE.get(tag_type, 1)
        if nbytes > value_size:
            offset = struct.unpack(order + off_fmt, entry[4 + value_size :])[0]
            furthest = max(furthest, offset + nbytes)
    (next_ifd,) = struct.unpack(order + off_fmt, table[count * entry_size :])
    furthest = max(furthest, next_ifd)
    return (furthest, next_ifd) if furthest > size else None
