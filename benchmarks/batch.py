"""Batch throughput and memory: a classical + spots recipe on N files, on a dask LocalCluster of
1 and 2 worker processes, against a serial loop in one process, a
``concurrent.futures.ProcessPoolExecutor`` of 2 processes and a shell-style loop of the CLI (one
``celldenoise run`` per step and file); then the peak memory of one worker (memory limit 1 GB)
on one 2 GB stack.

The recipe filters (Gaussian, sigma 1) and then finds and fits spots on the filtered image
(threshold :data:`SMOOTHED_THRESHOLD`).
Files are simulated spot movies. Every way runs the same files into its own output folder with
the same work per file (:func:`~napari_celldenoise.batch.task.process_file`: the steps and the
per-file summary) and one numeric thread per process; every process first runs the recipe on
one more file, untimed (imports, numba's cached compiles); the cluster's and the pool's start
is timed apart. The CLI loop runs on the first ``--cli-files`` files only (it pays the imports
twice per file) and is reported per file. Writes the ``batch`` section of docs/benchmarks.md.

Usage: nice -n 10 python benchmarks/batch.py [--files 200] [--planes 10] [--size 512]
       [--cli-files 20] [--stack-gb 2] [--memory-limit 1GB] [--memory-size 1024] [--quick]
       [--no-write]
The run prints its expected length first (one file timed, scaled by the ways and the stack).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from report import machine, write_section

ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "CELLDENOISE_SPOT_WORKERS": "1",
}
"""What dask's workers get (one thread each), given to every other way too."""

SPOTS_PER_PLANE = 10

SMOOTHED_THRESHOLD = "3*noise(F)"
"""The spot threshold of the recipe. The wavelet default (0.7 x the local noise of the first
wavelet plane) is calibrated on raw camera frames; a Gaussian filter removes most of that
plane's noise and not the detection plane's, so on the filtered movies the default passes
about 5,000 candidates a 512 x 512 plane and keeps 131 spots where 100 were simulated, about
40x slower; 3 x the robust noise of the detection plane keeps 101. A user who tunes the
detection on the filtered image in the Spots dock sets a threshold like this one."""


def write_movie(path: Path, planes: int, size: int, seed: int, repeat: int = 1) -> str:
    """A simulated spot movie (100 nm pixels); ``repeat`` tiles its planes (big stacks)."""
    import numpy as np

    from napari_celldenoise.io import ImageData, write_ome_tiff
    from napari_celldenoise.spots.simulate import simulate_spots

    data, _ = simulate_spots(planes, (size, size), n_spots=SPOTS_PER_PLANE, seed=seed)
    if repeat > 1:
        data = np.concatenate([data] * repeat)
    path.parent.mkdir(parents=True, exist_ok=True)
    um = {"Y": "µm", "X": "µm"}
    write_ome_tiff(path, ImageData(data, "TYX", scale={"Y": 0.1, "X": 0.1}, units=um))
    return str(path)


def make_files(folder: Path, n: int, planes: int, size: int) -> list[str]:
    return [write_movie(folder / f"movie_{i:03d}.ome.tif", planes, size, i) for i in range(n)]


def make_recipe():
    from napari_celldenoise.batch.recipe import recipe_from_specs
    from napari_celldenoise.jobs.specs import classical_spec, spots_spec
    from napari_celldenoise.spots.config import SpotsConfig

    return recipe_from_specs(
        [
            classical_spec("x.ome.tif", "x.filtered.ome.tif", "gaussian", {"sigma": 1.0}),
            spots_spec(
                "x.filtered.ome.tif",
                "x.spots.csv",
                SpotsConfig(fit="lsq", threshold=SMOOTHED_THRESHOLD),
            ),
        ]
    )


def specs_for(recipe, path: str, out: Path) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    return [s.to_dict() for s in recipe.plan(path, str(out / Path(path).name.split(".")[0]))]


def one_thread() -> None:
    """This process: one numeric thread, as a dask worker of one thread."""
    os.environ.update(ONE_THREAD)
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(1)
    threadpool_limits(1)


def _work(recipe, path: str, out: str) -> dict:
    from napari_celldenoise.batch.task import process_file

    return process_file(specs_for(recipe, path, Path(out)), {"input": path})


def _warm_process(recipe, warm: str, out: str) -> None:
    one_thread()
    _work(recipe, warm, out)


def serial(recipe, files: list[str], out: Path, warm: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for the files."""
    one_thread()
    _work(recipe, warm, str(out / "warm"))
    start, cpu = time.perf_counter(), time.process_time()
    for f in files:
        _work(recipe, f, str(out))
    return time.perf_counter() - start, time.process_time() - cpu


def process_pool(recipe, files, out: Path, warm: str, workers: int) -> tuple[float, float]:
    """(seconds to start the pool and warm each process, seconds for the files)."""
    import multiprocessing

    t0 = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")  # as dask's workers start
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        warmups = [
            pool.submit(_warm_process, recipe, warm, str(out / f"warm{i}")) for i in range(workers)
        ]
        for w in warmups:
            w.result()
        started = time.perf_counter() - t0
        t0 = time.perf_counter()
        for r in [pool.submit(_work, recipe, f, str(out)) for f in files]:
            r.result()
        return started, time.perf_counter() - t0


def on_cluster(recipe, folder: Path, out: Path, workers: int, warm: str):
    """(seconds to start the cluster, seconds for the batch, files done); the cluster is the
    one ``celldenoise batch --workers N`` starts."""
    from napari_celldenoise.batch.run import ClusterOptions, make_client, run_batch
    from napari_celldenoise.jobs import run

    t0 = time.perf_counter()
    client, cluster = make_client(ClusterOptions(workers=workers, threads_per_worker=1))
    for i, address in enumerate(client.scheduler_info()["workers"]):  # each worker warms up
        client.submit(_work, recipe, warm, str(out.parent / f"warm-{workers}-{i}"),
                      workers=[address], pure=False).result()  # fmt: skip
    started = time.perf_counter() - t0
    try:
        cpu0 = sum(client.run(time.process_time).values())
        t0 = time.perf_counter()
        result = run(run_batch(recipe, [str(folder)], str(out), client=client))
        wall = time.perf_counter() - t0
        cpu = sum(client.run(time.process_time).values()) - cpu0
        return started, wall, result.done, cpu
    finally:
        client.close()
        cluster.close()


def cli_loop(recipe, files: list[str], out: Path) -> float:
    """A user's shell loop: ``celldenoise run STEP.json -i IN -o OUT`` per step and file."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    steps = []
    for k, spec in enumerate(recipe.plan(files[0], str(out / "template"))):
        path = out / f"step{k}.json"
        path.write_text(json.dumps(spec.to_dict()), encoding="utf-8")
        steps.append((path, spec.output[len(str(out / "template")) :]))
    env = {**os.environ, **ONE_THREAD}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[1] / "src"), env.get("PYTHONPATH", "")]
    )
    start = time.perf_counter()
    for f in files:
        source = f
        for path, suffix in steps:
            target = str(out / Path(f).name.split(".")[0]) + suffix
            cmd = [sys.executable, "-m", "napari_celldenoise.cli", "run", str(path)]
            subprocess.run([*cmd, "-i", source, "-o", target, "-q"], env=env, check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            source = target
    return time.perf_counter() - start


def _peak_rss_mb() -> float:
    """This process's peak RSS in MB since its start or :func:`_reset_peak_rss`.

    Linux's ``VmHWM``, not ``getrusage``'s ``ru_maxrss``: a worker is forked from the process
    that started the cluster and then execs, and ``ru_maxrss`` keeps the high-water mark of the
    forked copy, so it reports the parent's size at the fork (here, the benchmark holding the
    big stack it just wrote) instead of the worker's own."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss() -> None:
    """Start a new peak RSS measure (Linux: ``5`` written to ``/proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def memory_run(recipe, root: Path, gb: float, limit: str, size: int = 1024):
    """(stack MB, the worker's peak RSS in MB before and after the stack, the file's record)."""
    from napari_celldenoise.batch.run import ClusterOptions, make_client, run_batch
    from napari_celldenoise.jobs import run

    planes = 16
    repeat = max(1, round(gb * 1e9 / (planes * size * size * 2)))
    big = write_movie(root / "big" / "stack.ome.tif", planes, size, 99, repeat=repeat)
    warm = write_movie(root / "bigwarm" / "warm.ome.tif", 2, size, 98)
    mb = os.path.getsize(big) / 1e6
    options = ClusterOptions(workers=1, threads_per_worker=1, memory_limit=limit)
    client, cluster = make_client(options)
    try:
        client.submit(_work, recipe, warm, str(root / "bigwarm-out"), pure=False).result()
        before = max(client.run(_peak_rss_mb).values())
        client.run(_reset_peak_rss)
        done = run(run_batch(recipe, [str(root / "big")], str(root / "big-out"), client=client))
        after = max(client.run(_peak_rss_mb).values())
        return mb, before, after, done.records[0]
    finally:
        client.close()
        cluster.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--planes", type=int, default=10)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--cli-files", type=int, default=20)
    parser.add_argument("--stack-gb", type=float, default=2.0)
    parser.add_argument("--memory-limit", default="1GB")
    parser.add_argument("--memory-size", type=int, default=1024, help="planes of the big stack")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a check that every way runs (a few minutes): 6 files of 4 x 256 x 256, 2 by "
        "the CLI, a 32 MB stack of 512 x 512 planes",
    )
    parser.add_argument("--no-write", action="store_true", help="print, do not write the doc")
    args = parser.parse_args()
    if args.quick:
        args.files, args.planes, args.size, args.cli_files = 6, 4, 256, 2
        args.stack_gb, args.memory_size = 0.03, 512
    command = "nice -n 10 python benchmarks/batch.py " + " ".join(sys.argv[1:])
    print(command, flush=True)
    recipe = make_recipe()
    load0 = os.getloadavg()[0]
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="celldenoise-bench-batch-") as tmp:
        root = Path(tmp)
        files = make_files(root / "in", args.files, args.planes, args.size)
        warm = make_files(root / "warm", 1, args.planes, args.size)[0]
        n = len(files)
        n_cli = min(args.cli_files, n)
        estimate(recipe, args, n, n_cli, warm, root / "estimate")
        t_serial, cpu_serial = serial_in_child(recipe, files, root / "serial", warm)
        print(f"serial {t_serial:.1f} s ({cpu_serial:.1f} CPU s)", flush=True)
        pool_start, t_pool = process_pool(recipe, files, root / "pool", warm, 2)
        print(f"pool {t_pool:.1f} s", flush=True)
        dask = {}
        for workers in (1, 2):
            dask[workers] = on_cluster(recipe, root / "in", root / f"dask{workers}", workers, warm)
            print(f"dask {workers}: {dask[workers][1]:.1f} s ({dask[workers][3]:.1f} CPU s)")
        t_cli = cli_loop(recipe, files[:n_cli], root / "cli") if n_cli else None
        print(f"cli {t_cli} s", flush=True)
        mem = None
        if args.stack_gb:
            mem = memory_run(recipe, root, args.stack_gb, args.memory_limit, args.memory_size)
    load1 = os.getloadavg()[0]
    minutes = (time.perf_counter() - t_all) / 60
    lines = _report(args, n, n_cli, (t_serial, cpu_serial), (pool_start, t_pool), dask, t_cli, mem)
    lines.insert(
        2,
        f"Measured on {machine()}; load average {load0:.1f} at the start, {load1:.1f} at the end "
        f"({minutes:.1f} min in all). Command: `{command}`.\n",
    )
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        print(f"wrote {write_section('batch', text)}")


def estimate(recipe, args, n: int, n_cli: int, warm: str, out: Path) -> float:
    """Print the run's expected length, from one file of the recipe timed in a child of one
    thread (after an untimed one) and a plane of the big stack scaled by its pixels."""
    import multiprocessing

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        per_file = pool.submit(serial, recipe, [warm], out, warm).result()[0]
    # serial + pool of 2 + 1 worker + 2 workers; CLI: two interpreters a file; big stack
    files = per_file * (n + n / 2 + n + n / 2) + n_cli * (per_file + 2 * 8.0)
    planes = args.stack_gb * 1e9 / (2 * args.memory_size**2)
    stack = per_file / args.planes * planes * (args.memory_size / args.size) ** 2
    total = files + stack + 4 * 30.0  # starts and warm-ups
    print(
        f"estimate: {per_file:.1f} s a file of {args.planes} x {args.size} x {args.size}; "
        f"the run ~{total / 60:.0f} min ({files / 60:.0f} min of files, "
        f"{stack / 60:.0f} min for the {args.stack_gb:g} GB stack)",
        flush=True,
    )
    return total


def serial_in_child(recipe, files, out: Path, warm: str) -> tuple[float, float]:
    """The serial loop in a fresh process of one thread (this one has other work's state)."""
    import multiprocessing

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(serial, recipe, files, out, warm).result()


def _report(args, n, n_cli, serial, pool, dask, t_cli, mem) -> list[str]:
    per = 1000 / n
    t_serial, cpu_serial = serial
    (s1, t1, d1, c1), (s2, t2, d2, c2) = dask[1], dask[2]
    lines = [
        "## Batch runs on dask (`benchmarks/batch.py`)",
        "",
        f"{n} simulated spot movies of {args.planes} x {args.size} x {args.size} px "
        f"({SPOTS_PER_PLANE} spots a plane); recipe: Gaussian filter (sigma 1), then spot "
        f"detection (threshold `{SMOOTHED_THRESHOLD}`, the detection plane's robust noise: the "
        "wavelet default assumes raw camera noise and floods a smoothed image with candidates) "
        "and least-squares fitting on the filtered image, with the per-file summary. "
        "One numeric thread per process in every way; each process first runs the recipe on "
        "one more file, untimed; starts (processes up, imports, that first file) are timed "
        "apart.",
        "",
        "| way | start (s) | files (s) | files done | files/s | per file (ms) "
        "| CPU per file (ms) |",
        "|---|---|---|---|---|---|---|",
        f"| serial loop, one process | | {t_serial:.1f} | {n} | {n / t_serial:.2f} | "
        f"{t_serial * per:.0f} | {cpu_serial * per:.0f} |",
        f"| ProcessPoolExecutor, 2 processes | {pool[0]:.1f} | {pool[1]:.1f} | {n} | "
        f"{n / pool[1]:.2f} | {pool[1] * per:.0f} | |",
        f"| dask LocalCluster of `celldenoise batch`, 1 worker | {s1:.1f} | {t1:.1f} | {d1} | "
        f"{d1 / t1:.2f} | "
        f"{t1 * per:.0f} | {c1 * per:.0f} |",
        f"| dask LocalCluster of `celldenoise batch`, 2 workers | {s2:.1f} | {t2:.1f} | {d2} | "
        f"{d2 / t2:.2f} | "
        f"{t2 * per:.0f} | {c2 * per:.0f} |",
    ]
    if t_cli is not None:
        lines.append(
            f"| CLI loop, `celldenoise run` per step (first {n_cli} files only: compare per "
            f"file) | | {t_cli:.1f} | {n_cli} | {n_cli / t_cli:.2f} | "
            f"{1000 * t_cli / n_cli:.0f} | |"
        )
    lines += [
        "",
        f"- 2 workers against 1: **{t1 / t2:.2f}x** (goal >= 1.8x on 2 cores).",
        f"- Overhead per file of the dask path: 1 worker against the serial loop "
        f"{(t1 - t_serial) * per:+.0f} ms; 2 workers against the pool of 2 processes "
        f"{(t2 - pool[1]) * per:+.0f} ms (wall time, divided by the files).",
        "- CPU per file: the processes' own CPU seconds (the serial child's, the workers' "
        "summed), divided by the files; a wall time well above it means the machine was "
        "busy with other work while that way ran, and its row does not compare.",
        "- The local workers start with `batch.run.WORKER_MALLOC` (glibc's mmap threshold 4 "
        "MiB, trim threshold 16 MiB) instead of dask's `MALLOC_TRIM_THRESHOLD_=65536`, under "
        "which glibc maps and faults in every array over 128 KiB afresh: see docs/batch.md.",
        f"- The machine's own scaling on this recipe: the serial loop against the pool of 2 "
        f"processes, {t_serial / pool[1]:.2f}x.",
    ]
    if t_cli is not None:
        lines.append(
            f"- The CLI loop costs {1000 * t_cli / n_cli - t_serial * per:+.0f} ms a file "
            f"more than the serial loop (two interpreters started, imports, numba's cache "
            f"loaded, per file; measured on the first {n_cli} files)."
        )
    if mem is not None:
        mb, before, after, rec = mem
        lines += [
            "",
            f"Memory: one worker with `memory_limit={args.memory_limit}` ran the recipe on one "
            f"stack of {mb:,.0f} MB (uint16, {args.memory_size} x {args.memory_size} planes): "
            f"status **{rec['status']}** "
            f"in {rec.get('seconds') or 0:.0f} s{', ' + rec['error'] if rec.get('error') else ''}. "
            f"The worker's peak RSS (Linux `VmHWM`): {before:,.0f} MB over its start and a "
            f"warm-up file, **{after:,.0f} MB** while it did the stack (files over 1/8 of the "
            "limit open lazily in a worker; the filter and the spot fit then go plane by plane "
            "and chunk by chunk).",
        ]
    return lines


if __name__ == "__main__":
    main()
