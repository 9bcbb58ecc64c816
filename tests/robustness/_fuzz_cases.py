"""Reader fuzz worker: build one kind of file, break it in every way listed, read each case.

Run as a script in a child process (``python _fuzz_cases.py SEED KIND...``) so that a hang
or a memory blow-up stays contained (each case also has its own ``signal.alarm``); prints one
JSON summary line per kind. Every case must end in the
reader's one-line error naming the file, or in a read; truncations that leave all pixels must
read correctly, and a read may never produce pixels the file did not hold.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import re
import resource
import signal
import struct
import sys
import tempfile
import time
import traceback
import zlib

import numpy as np

CASE_SECONDS = 10  # per case; a read of these small files takes milliseconds
KINDS = ("ome", "imagej", "plain", "bigtiff", "tiled", "compressed", "png", "csv")


class CaseTimeout(Exception):
    pass


def _peak_rss_kib() -> int:
    """This process's own peak RSS (KiB). ``ru_maxrss`` would not do: Linux keeps it across
    ``exec``, so a worker started from a big pytest process would report the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def pristine(kind: str) -> tuple[bytes, np.ndarray | None]:
    """The intact file of ``kind`` and the pixels it holds (TZCYX 3x4x2 planes for OME and
    ImageJ, 6 planes otherwise; the spot table for CSV)."""
    import tifffile

    rng = np.random.default_rng(7)
    buf = io.BytesIO()
    if kind in ("ome", "imagej"):
        data = rng.integers(0, 60000, (3, 4, 2, 24, 32), dtype=np.uint16)
        if kind == "ome":
            meta = {"axes": "TZCYX", "PhysicalSizeX": 0.1, "PhysicalSizeY": 0.1}
            meta["Channel"] = {"Name": ["DAPI", "GFP"]}
            tifffile.imwrite(buf, data, ome=True, metadata=meta)
        else:
            tifffile.imwrite(buf, data, imagej=True, metadata={"axes": "TZCYX"})
        return buf.getvalue(), data
    data = rng.integers(0, 60000, (6, 48, 64), dtype=np.uint16)
    if kind == "plain":
        tifffile.imwrite(buf, data, metadata=None)
    elif kind == "bigtiff":
        tifffile.imwrite(buf, data, bigtiff=True)
    elif kind == "tiled":
        tifffile.imwrite(buf, data, tile=(16, 16))
    elif kind == "compressed":
        tifffile.imwrite(buf, data, compression="zlib")
    elif kind == "png":
        import imagecodecs

        return imagecodecs.png_encode(data[0]), data[0]
    elif kind == "csv":
        import pandas as pd

        from napari_celldenoise.io.spots_csv import csv_text

        n = 40
        table = pd.DataFrame(
            {
                "frame": rng.integers(0, 5, n),
                "x": rng.uniform(0, 60, n),
                "y": rng.uniform(0, 60, n),
                "sigma": rng.uniform(1, 2, n),
                "photons": rng.uniform(100, 900, n),
                "class": ["good"] * n,
            }
        )
        return csv_text(table, 100.0).encode(), None
    return buf.getvalue(), data


def ifd_ranges(raw: bytes) -> list[tuple[int, int]]:
    """Byte ranges of the header and of every image directory of a TIFF."""
    import tifffile

    ranges = [(0, 16)]
    with tifffile.TiffFile(io.BytesIO(raw)) as tif:
        big = tif.is_bigtiff
        for page in tif.pages:
            n = len(page.tags)
            entry, head, tail = (20, 8, 8) if big else (12, 2, 4)
            ranges.append((page.offset, page.offset + head + n * entry + tail))
    return ranges


def tiff_tag_entries(raw: bytes) -> dict[int, tuple[int, int, int]]:
    """First directory: tag code -> (entry offset, type, count)."""
    order = "<" if raw[:2] == b"II" else ">"
    big = struct.unpack(order + "H", raw[2:4])[0] == 43
    if big:
        first = struct.unpack(order + "Q", raw[8:16])[0]
        (n,) = struct.unpack(order + "Q", raw[first : first + 8])
        start, size, cfmt = first + 8, 20, "Q"
    else:
        first = struct.unpack(order + "I", raw[4:8])[0]
        (n,) = struct.unpack(order + "H", raw[first : first + 2])
        start, size, cfmt = first + 2, 12, "I"
    out = {}
    for i in range(n):
        off = start + i * size
        tag, typ = struct.unpack(order + "HH", raw[off : off + 4])
        (count,) = struct.unpack(order + cfmt, raw[off + 4 : off + 4 + struct.calcsize(cfmt)])
        out[tag] = (off, typ, count)
    return out


def set_tag_long(raw: bytes, tag: int, value: int) -> bytes:
    """Set a one-value SHORT/LONG tag of the first directory (as LONG) to ``value``."""
    order = "<" if raw[:2] == b"II" else ">"
    big = struct.unpack(order + "H", raw[2:4])[0] == 43
    entries = tiff_tag_entries(raw)
    if tag not in entries:
        return raw
    off, _, _ = entries[tag]
    b = bytearray(raw)
    if big:
        b[off + 2 : off + 20] = struct.pack(order + "HQQ", 16, 1, value)
    else:
        b[off + 2 : off + 12] = struct.pack(order + "HII", 4, 1, value)
    return bytes(b)


def next_ifd_pointer_offsets(raw: bytes) -> list[int]:
    """Where each directory's next-directory pointer is stored."""
    import tifffile

    out = []
    with tifffile.TiffFile(io.BytesIO(raw)) as tif:
        big = tif.is_bigtiff
        for page in tif.pages:
            entry, head = (20, 8) if big else (12, 2)
            out.append(page.offset + head + len(page.tags) * entry)
        return out, big, tif.byteorder


def replace_same_length(raw: bytes, old: bytes, new: bytes) -> bytes | None:
    """Replace ``old`` by ``new`` padded with spaces to the same length (keeps offsets)."""
    if old not in raw or len(new) > len(old):
        return None
    return raw.replace(old, new.ljust(len(old)), 1)


def cases(kind: str, raw: bytes, rng: random.Random):
    """(fault, bytes, intact) for every case: ``intact`` when all pixels remain."""
    n = len(raw)
    # truncation at many offsets: fixed edges and random points
    points = sorted({0, 1, 4, 7, 8, 12, 16, n // 2, n - 1, *rng.sample(range(1, n), 40)})
    for cut in points:
        yield f"truncate@{cut}", raw[:cut]
    # flipped bytes in the header and directories (TIFF), header chunks (PNG), anywhere (CSV)
    if kind == "png":
        regions = [(0, 64)]
    elif kind == "csv":
        regions = [(0, n)]
    else:
        regions = ifd_ranges(raw)
    for i in range(50):
        b = bytearray(raw)
        lo, hi = regions[0] if i < 10 else rng.choice(regions)
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(lo, min(hi, n))
            b[pos] ^= rng.randint(1, 255)
        yield f"flip#{i}", bytes(b)
    # wrong magic
    for magic in (b"II*\x01", b"XX*\x00", b"\x00\x00\x00\x00", b"MM\x00*", b"\x89PNX"):
        yield f"magic={magic!r}", magic + raw[4:]
    if kind == "csv":
        yield "not-utf8", raw.replace(b"good", b"g\xe9\xff", 3)
        yield "empty", b""
        yield "header-only", raw.split(b"\n", 1)[0] + b"\n"
        yield "no-xy", raw.replace(b"x [px]", b"u [px]", 1).replace(b"x [nm]", b"u [nm]", 1)
        yield "text-in-numbers", re.sub(rb"\n(\d)", rb"\nabc", raw, count=5)
        yield "nan-frame", re.sub(rb"\n(\d+),(\d+),", rb"\n\1,nan,", raw, count=3)
        yield "ragged", raw.replace(b"\n", b",1,2,3\n", 4)
        yield "huge-numbers", re.sub(rb",(\d+)\.", rb",1e308\1.", raw, count=10)
        yield "nul-bytes", raw[:50] + b"\x00" * 100 + raw[50:]
        yield "utf16", raw.decode().encode("utf-16")
        return
    if kind == "png":
        for w, h in ((100000, 100000), (0, 48), (64, 0), (2**31 - 1, 2**31 - 1)):
            b = bytearray(raw)
            b[16:24] = struct.pack(">II", w, h)
            yield f"ihdr={w}x{h}", bytes(b)
        return
    # IFD loops: a directory pointing to itself, the last one back to the first
    ptrs, big, order = next_ifd_pointer_offsets(raw)
    fmt = order + ("Q" if big else "I")
    first = struct.unpack(fmt, raw[8:16] if big else raw[4:8])[0]
    size = 8 if big else 4
    for name, at, target in (
        ("loop-self", ptrs[0], first),
        ("loop-last-to-first", ptrs[-1], first),
        ("loop-second-to-self", ptrs[min(1, len(ptrs) - 1)], first),
    ):
        b = bytearray(raw)
        b[at : at + size] = struct.pack(fmt, target)
        yield name, bytes(b)
    # declared sizes far beyond the file, and zero-sized axes
    for w, h in ((100000, 100000), (0, 48), (64, 0), (2**31, 3)):
        yield f"size={w}x{h}", set_tag_long(set_tag_long(raw, 256, w), 257, h)
    yield "strip-bytecount=2**31", set_tag_long(raw, 279, 2**31)
    yield "strip-offset-beyond", set_tag_long(raw, 273, 2**31)
    for name, old, new in (
        ("claims-1000-planes", b"images=24", b"images=1000"),
        ("claims-0-planes", b"images=24", b"images=0"),
    ):
        if kind == "imagej":
            b = replace_same_length(raw, old, new[: len(old)])
            if name == "claims-1000-planes":  # 'images=1000' is longer: rewrite the line
                b = raw.replace(b"images=24\n", b"images=1000", 1)
                b = set_tag_long(set_tag_long(b, 256, 100000), 257, 100000)
            if b is not None:
                yield name, b
    if kind == "ome":
        xml_edits = [
            ("ome-sizez-0", b'SizeZ="4"', b'SizeZ="0"'),
            ("ome-sizez-9", b'SizeZ="4"', b'SizeZ="9"'),
            ("ome-sizet-1", b'SizeT="3"', b'SizeT="1"'),
            ("ome-sizec-7", b'SizeC="2"', b'SizeC="7"'),
            ("ome-sizex-99", b'SizeX="32"', b'SizeX="99"'),
            ("ome-type-uint8", b'Type="uint16"', b'Type="uint8"'),
            ("ome-type-float", b'Type="uint16"', b'Type="float"'),
            ("ome-order", b'DimensionOrder="XYCZT"', b'DimensionOrder="XYTZC"'),
            ("ome-huge", b'SizeZ="4"', b'SizeZ="9999999"'[:9]),
            ("ome-not-utf8", b'Name="DAPI"', b'Name="D\xe9\xffI"'),
            ("ome-bad-xml", b"<Pixels", b"<Pix<ls"),
            ("ome-latin1-decl", b'encoding="UTF-8"', b'encoding="latin-1"'),
        ]
        for name, old, new in xml_edits:
            b = replace_same_length(raw, old, new)
            if b is not None:
                yield name, b
    if kind == "imagej":
        for name, old, new in (
            ("ij-channels-5", b"channels=2", b"channels=5"),
            ("ij-slices-9", b"slices=4", b"slices=9"),
            ("ij-frames-1", b"frames=3", b"frames=1"),
            ("ij-frames-0", b"frames=3", b"frames=0"),
            ("ij-images-99", b"images=24", b"images=99"),
            ("ij-images-1", b"images=24", b"images=1"),
            ("ij-not-hyperstack", b"hyperstack=true", b"hyperstack=xyz!"),
            ("ij-not-utf8", b"ImageJ=1.11a", b"ImageJ=\xff\xfe\xe9"),
        ):
            b = replace_same_length(raw, old, new)
            if b is not None:
                yield name, b


def check_read(kind: str, path: str, fault: str, truth, lazy: bool):
    """Read one case: ('error', msg) | ('correct', ...) | ('read', shape) | raises."""
    from napari_celldenoise.config import ReaderConfig
    from napari_celldenoise.io import ImageReadError, read_image
    from napari_celldenoise.io.spots_csv import SpotTableError, read_spots_csv

    try:
        if kind == "csv":
            table = read_spots_csv(path)
            return "read", [len(table), len(table.columns)]
        image = read_image(path, lazy=lazy, config=ReaderConfig(allow_partial=False))
        data = np.asarray(image.data)
        image.close()
    except (ImageReadError, SpotTableError) as exc:
        text = str(exc)
        if path not in text or "\n" in text:
            raise AssertionError(f"error not one line naming the file: {text!r}") from None
        return "error", text
    same = truth is not None and data.size == truth.size
    if same and np.array_equal(data.reshape(truth.shape), truth):
        return "correct", list(data.shape)
    if truth is not None and fault.startswith("truncate"):
        raise AssertionError(f"truncated file read as other pixels: shape {data.shape}")
    if truth is not None and data.size > 4 * truth.size:
        raise AssertionError(f"read {data.size} pixels from a file holding {truth.size}")
    return "read", list(data.shape)


def main(kind: str, seed: int) -> dict:
    logging.disable(logging.CRITICAL)  # tifffile logs every oddity; we judge outcomes
    import warnings

    warnings.simplefilter("ignore")
    # a safety net for the machine; the RSS check below is the test
    if resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))

    def on_alarm(signum, frame):
        raise CaseTimeout()

    signal.signal(signal.SIGALRM, on_alarm)
    raw, truth = pristine(kind)
    rng = random.Random(seed * 1000 + zlib.crc32(kind.encode()))
    suffix = {"png": ".png", "csv": ".csv", "ome": ".ome.tif"}.get(kind, ".tif")
    counts = {"cases": 0, "errors": 0, "correct": 0, "reads": 0}
    failures = []
    slowest = 0.0
    rss0 = _peak_rss_kib()
    with tempfile.TemporaryDirectory() as scratch:
        cwd_before = sorted(os.listdir("."))
        intact = os.path.join(scratch, f"intact{suffix}")
        with open(intact, "wb") as f:  # the intact file reads back exactly (and warms imports)
            f.write(raw)
        for lazy in (False, True):
            outcome, _ = check_read(kind, intact, "truncate@end", truth, lazy)
            assert outcome in ("correct", "read"), outcome
        os.unlink(intact)
        for i, (fault, blob) in enumerate(cases(kind, raw, rng)):
            path = os.path.join(scratch, f"case{i}{suffix}")
            with open(path, "wb") as f:
                f.write(blob)
            for lazy in (
                (False, True) if fault.startswith("truncate") and kind != "csv" else (False,)
            ):
                counts["cases"] += 1
                t0 = time.monotonic()
                signal.alarm(CASE_SECONDS)
                try:
                    outcome, _ = check_read(kind, path, fault, truth, lazy)
                    counts[{"error": "errors", "correct": "correct", "read": "reads"}[outcome]] += 1
                except CaseTimeout:
                    failures.append(f"{fault} lazy={lazy}: no answer within {CASE_SECONDS} s")
                except BaseException as exc:  # every other outcome is a failure
                    tb = traceback.extract_tb(exc.__traceback__)[-1]
                    failures.append(
                        f"{fault} lazy={lazy}: {type(exc).__name__}: {str(exc)[:160]} "
                        f"({os.path.basename(tb.filename)}:{tb.lineno})"
                    )
                finally:
                    signal.alarm(0)
                slowest = max(slowest, time.monotonic() - t0)
            os.unlink(path)
            if os.listdir(scratch):
                failures.append(f"{fault}: files written: {os.listdir(scratch)}")
                for name in os.listdir(scratch):
                    os.unlink(os.path.join(scratch, name))
        if sorted(os.listdir(".")) != cwd_before:
            failures.append("files written in the working folder")
    rss = _peak_rss_kib()
    return {
        "kind": kind,
        **counts,
        "failures": failures,
        "slowest_s": round(slowest, 3),
        "rss_growth_mb": round((rss - rss0) / 1024, 1),
        "peak_rss_mb": round(rss / 1024, 1),
    }


if __name__ == "__main__":  # python _fuzz_cases.py SEED KIND [KIND ...]: one line per kind
    for name in sys.argv[2:]:
        print(json.dumps(main(name, int(sys.argv[1]))), flush=True)
