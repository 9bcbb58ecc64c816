"""Open a 20 GB stack lazily: time to open, time to read one plane, peak memory.

The stack is written sparse (``tifffile.memmap`` reserves the pixel area without writing it),
so the benchmark needs ~20 GB of *apparent* disk but almost none in reality. Peers measured
in the same run: tifffile's own ``imread(..., aszarr=True)`` + zarr (the bare library path)
and ``imread(key=i)`` of one page. Writes the ``io`` section of docs/benchmarks.md.

Usage: python benchmarks/lazy_open.py [--gb 20] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from report import machine, write_section

CHILD = r"""
import resource, sys, time, json
import numpy as np
path, how = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if how == "celldenoise":
    from napari_celldenoise.io import read_image
    img = read_image(path)
    arr, lazy = img.data, img.lazy
elif how == "tifffile-zarr":
    import tifffile, zarr, dask.array as da
    arr, lazy = da.from_zarr(zarr.open(tifffile.imread(path, aszarr=True), mode="r")), True
t_open = time.perf_counter() - t0
t0 = time.perf_counter()
mid = tuple(s // 2 for s in arr.shape[:-2])
plane = np.asarray(arr[mid])
t_plane = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"open_s": t_open, "plane_s": t_plane, "peak_rss_mb": rss, "lazy": bool(lazy),
                  "shape": list(arr.shape)}))
"""


def make_stack(path: Path, gb: float, ome: bool) -> tuple[int, ...]:
    import tifffile

    plane = 2048 * 2048 * 2
    n = int(gb * 1e9 / plane)
    shape = (n, 2048, 2048)
    kwargs = {"ome": True, "metadata": {"axes": "TYX", "PhysicalSizeX": 0.1,
              "PhysicalSizeY": 0.1}} if ome else {"imagej": True,
              "metadata": {"axes": "TYX", "finterval": 0.1}}  # fmt: skip
    mm = tifffile.memmap(path, shape=shape, dtype=np.uint16, **kwargs)
    mm[0, :8, :8] = 1  # touch one page so the file is a valid, mostly sparse stack
    mm.flush()
    del mm
    return shape


def measure(path: Path, how: str) -> dict:
    import json

    out = subprocess.run([sys.executable, "-c", CHILD, str(path), how], capture_output=True,
                         text=True, check=True)  # fmt: skip
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=20.0)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for flavour, ome in (("ImageJ hyperstack", False), ("OME-TIFF", True)):
            path = Path(tmp) / ("big.ome.tif" if ome else "big.tif")
            t0 = time.perf_counter()
            shape = make_stack(path, args.gb, ome)
            t_make = time.perf_counter() - t0
            size = path.stat().st_size
            for how in ("celldenoise", "tifffile-zarr"):
                r = measure(path, how)
                rows.append((flavour, how, size, shape, r))
                print(flavour, how, f"{size / 1e9:.1f} GB", r, f"(made in {t_make:.1f} s)")
            path.unlink()
    lines = [
        "## Opening a large stack lazily (`benchmarks/lazy_open.py`)",
        "",
        f"Measured on {machine()}; each row in a fresh process. The file is sparse on disk "
        "(the pixel area is reserved, not written), so the numbers are the cost of parsing the "
        "TIFF structure and of reading one plane, not of the disk.",
        "",
        "| file | reader | size | shape | open (s) | read middle plane (s) | peak RSS (MB) "
        "| lazy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for flavour, how, size, shape, r in rows:
        lines.append(
            f"| {flavour} | {how} | {size / 1e9:.1f} GB | {' x '.join(map(str, shape))} | "
            f"{r['open_s']:.2f} | {r['plane_s']:.3f} | {r['peak_rss_mb']:.0f} | {r['lazy']} |"
        )
    write_section("io", "\n".join(lines))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the driver: {rss:.0f} MB")


if __name__ == "__main__":
    main()
