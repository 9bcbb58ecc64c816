"""Batch throughput: a classical + spots recipe on N files, on a dask LocalCluster of 1 and 2
worker processes, against a plain serial loop of the same steps in one process.

The recipe filters (Gaussian, sigma 1) and then finds and fits spots on the filtered image.
Files are simulated spot movies. Each way runs the same files into its own output folder;
the cluster's start is timed apart from the run. Writes the ``batch`` section of
docs/benchmarks.md.

Usage: nice -n 10 python benchmarks/batch.py [--files 24] [--frames 5] [--size 256]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from report import machine, write_section


def make_files(folder: Path, n: int, frames: int, size: int) -> list[str]:
    from napari_celldenoise.io import ImageData, write_ome_tiff
    from napari_celldenoise.spots.simulate import simulate_spots

    paths = []
    for i in range(n):
        data, _ = simulate_spots(frames, (size, size), n_spots=30, seed=i)
        path = folder / "in" / f"movie_{i:03d}.ome.tif"
        path.parent.mkdir(parents=True, exist_ok=True)
        um = {"Y": "µm", "X": "µm"}
        write_ome_tiff(path, ImageData(data, "TYX", scale={"Y": 0.1, "X": 0.1}, units=um))
        paths.append(str(path))
    return paths


def make_recipe():
    from napari_celldenoise.batch.recipe import recipe_from_specs
    from napari_celldenoise.jobs.specs import classical_spec, spots_spec
    from napari_celldenoise.spots.config import SpotsConfig

    return recipe_from_specs(
        [
            classical_spec("x.ome.tif", "x.filtered.ome.tif", "gaussian", {"sigma": 1.0}),
            spots_spec("x.filtered.ome.tif", "x.spots.csv", SpotsConfig(fit="lsq")),
        ]
    )


def warm_specs(recipe, warm: str, out: Path) -> list[dict]:
    """The recipe planned on the warm-up file (imports and numba's compiles, not timed)."""
    out.mkdir(parents=True, exist_ok=True)
    return [s.to_dict() for s in recipe.plan(warm, str(out / "warm"))]


def serial(recipe, files: list[str], out: Path, warm: str) -> float:
    from napari_celldenoise.batch.task import process_file

    out.mkdir(parents=True)
    process_file(warm_specs(recipe, warm, out / "warm"), {"input": warm})
    from napari_celldenoise.jobs import run
    from napari_celldenoise.jobs.run_spec import run_spec

    start = time.perf_counter()
    for f in files:
        for spec in recipe.plan(f, str(out / Path(f).name.split(".")[0])):
            run(run_spec(spec))
    return time.perf_counter() - start


def on_cluster(
    recipe, folder: Path, out: Path, workers: int, warm: str
) -> tuple[float, float, int]:
    """(seconds to start the cluster, seconds for the batch, files done)."""
    from distributed import Client, LocalCluster

    from napari_celldenoise.batch.run import run_batch
    from napari_celldenoise.jobs import run

    t0 = time.perf_counter()
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    started = time.perf_counter() - t0
    from napari_celldenoise.batch.task import process_file

    for i, address in enumerate(client.scheduler_info()["workers"]):  # each worker warms up
        specs = warm_specs(recipe, warm, out.parent / f"warm-{workers}-{i}")
        client.run(process_file, specs, {"input": warm}, workers=[address])
    try:
        t0 = time.perf_counter()
        result = run(run_batch(recipe, [str(folder)], str(out), client=client))
        return started, time.perf_counter() - t0, result.done
    finally:
        client.close()
        cluster.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--no-write", action="store_true", help="print, do not write the doc")
    args = parser.parse_args()
    recipe = make_recipe()
    with tempfile.TemporaryDirectory(prefix="celldenoise-bench-batch-") as tmp:
        root = Path(tmp)
        files = make_files(root, args.files, args.frames, args.size)
        warm = make_files(root / "warm", 1, args.frames, args.size)[0]
        n = len(files)
        rows = []
        t = serial(recipe, files, root / "serial", warm)
        rows.append(("serial loop, this process", "", t, n))
        for workers in (1, 2):
            started, t, done = on_cluster(
                recipe, root / "in", root / f"dask{workers}", workers, warm
            )
            rows.append((f"dask LocalCluster, {workers} worker(s)", f"{started:.1f}", t, done))
    base = rows[0][2]
    lines = [
        "## Batch runs on dask (`benchmarks/batch.py`)",
        "",
        f"Measured on {machine()}, a machine shared with other work (run under `nice`). "
        f"{n} simulated spot movies of {args.frames} x {args.size} x {args.size} px; recipe: "
        "Gaussian filter (sigma 1), then spot detection and least-squares fitting on the "
        "filtered image. Each way does the same files; the cluster's start (worker processes "
        "up, the package imported there) is timed apart from the batch; every process first "
        "runs the recipe on one more file, untimed (imports, numba's compiles).",
        "",
        "| way | cluster start (s) | batch (s) | files done | files/s | vs serial | "
        "overhead per file (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for way, started, t, done in rows:
        overhead = "" if not started else f"{1000 * (t - base) / n:+.0f}"
        lines.append(
            f"| {way} | {started} | {t:.1f} | {done} | {done / t:.2f} | {base / t:.2f}x | "
            f"{overhead} |"
        )
    two = base / rows[2][2]
    one = base / rows[1][2]
    lines += [
        "",
        f"2 workers against 1: {rows[1][2] / rows[2][2]:.2f}x. The overhead per file is the "
        "batch's time above the serial loop's, divided by the files (scheduling, the manifest, "
        f"the per-file summary that reads each output again); 1 worker ran at {one:.2f}x and "
        f"2 workers at {two:.2f}x the serial loop's speed. A negative overhead means the "
        "worker was faster than the loop: dask limits each worker's numeric libraries to its "
        "threads, the loop's process is not limited, and the shared machine's load varies "
        "within a run.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        print(f"wrote {write_section('batch', text)}")


if __name__ == "__main__":
    main()
