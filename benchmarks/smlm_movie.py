"""A 10,000-frame SMLM movie end to end: wall time and peak memory, ours against Picasso.

The movie (256x256 px, ~150 blinking emitters per frame, pixel-integrated Gaussians with
Poisson noise, read noise and offset, the camera of ``spots.simulate``) is written as a
BigTIFF (OME) frame by frame, never held in memory. Each run is a fresh process tree whose
resident memory is summed over the tree and sampled every 0.2 s (psutil):

* ours: ``celldenoise spots MOVIE -o LOCS.csv`` (MLE, default settings; the frames stream
  through one worker per core, the localizations go to disk in parts);
* ours from the Spots dock: napari opens the movie lazily, the dock's Run fits it, the layer
  shows a subsample (``--dock``, under Xvfb);
* Picasso: ``python -m picasso localize MOVIE -a mle --drift 0`` in the peer venv
  (benchmarks/.peer-venv), its minimum net gradient chosen on the first 100 frames as the one
  that finds as many spots per frame as there are emitters.

Writes the ``smlm-movie`` section of docs/benchmarks.md.

Usage: python benchmarks/smlm_movie.py [--frames 10000] [--dir DIR] [--no-dock] [--no-picasso]
[--only cli,picasso,dock]

Each tool's row is kept in ``DIR/row-FRAMES-TOOL.json`` as it is measured; ``--only`` measures
the tools named and writes the table with the rows kept of the others (a long benchmark is
redone one tool at a time; ``--only ""`` rewrites the section from the kept rows).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))
from report import machine, write_section  # noqa: E402

PEER = HERE / ".peer-venv" / "bin" / "python"
SIZE = 256
SIGMA = 1.3
BACKGROUND = 20.0  # photons per px
PHOTONS = (1000.0, 5000.0)
PIXEL_NM = 100.0


# ----------------------------------------------------------------------------- the movie
def movie_frames(n_frames: int, *, size: int = SIZE, per_frame: int = 150, seed: int = 0):
    """Frames (uint16 ADU) of blinking emitters, one at a time.

    ``20 * per_frame`` fixed emitter sites; in each frame ``per_frame`` of them, drawn at
    random, are on with a log-uniform brightness in :data:`PHOTONS`.
    """
    from napari_celldenoise.spots.psf import render_spots
    from napari_celldenoise.spots.simulate import Camera, expose

    rng = np.random.default_rng(seed)
    sites = rng.uniform(6, size - 7, (20 * per_frame, 2))
    camera = Camera()
    sig = np.full(per_frame, SIGMA)
    for _ in range(n_frames):
        on = rng.choice(len(sites), per_frame, replace=False)
        photons = np.exp(rng.uniform(np.log(PHOTONS[0]), np.log(PHOTONS[1]), per_frame))
        expected = np.full((size, size), BACKGROUND)
        render_spots(expected, sites[on], photons, sig, sig)
        yield expose(expected, camera, rng)


def write_movie(path: Path, n_frames: int, *, per_frame: int = 150, seed: int = 0) -> dict:
    """Write the movie as an OME BigTIFF frame by frame; returns what it holds. A movie of the
    same parameters already at ``path`` is kept (its ``.json`` says what it holds)."""
    import tifffile

    facts = {"frames": n_frames, "size": SIZE, "per_frame": per_frame, "seed": seed}
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists() and json.loads(meta.read_text()) == facts:
        return facts
    um = PIXEL_NM / 1000.0
    tmp = path.with_name(path.name + ".part")
    tifffile.imwrite(
        tmp,
        movie_frames(n_frames, per_frame=per_frame, seed=seed),
        shape=(n_frames, SIZE, SIZE),
        dtype=np.uint16,
        bigtiff=True,
        ome=True,
        metadata={"axes": "TYX", "PhysicalSizeX": um, "PhysicalSizeY": um},
    )
    os.replace(tmp, path)
    meta.write_text(json.dumps(facts))
    return facts


# ----------------------------------------------------------------------------- measuring
def measure(cmd: list[str], *, env: dict | None = None, cwd: str | None = None) -> dict:
    """Run ``cmd``; wall time, CPU time of the whole tree (user + system, every process
    waited for: less sensitive than wall time to what else the machine runs), peak RSS summed
    over the tree (MB), exit status and the tail of its output."""
    import resource

    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peak = [0]
    lines: list[str] = []

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                rss = 0
                for p in tree:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak[0] = max(peak[0], rss)
            except psutil.Error:
                pass
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        del lines[:-40]
    rc = proc.wait()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    sampler.join()
    out = {"wall_s": wall, "cpu_s": cpu, "peak_mb": peak[0] / 2**20, "rc": rc}
    return {**out, "tail": "".join(lines)}


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    # open lazily as a 10,000-frame movie (1.3 GB, over the 1 GiB default limit) is, whatever
    # the number of frames of this run
    env["CELLDENOISE_LAZY_LIMIT"] = "64MB"
    return env


def run_ours(movie: Path, out: Path) -> dict:
    cmd = [sys.executable, "-m", "napari_celldenoise.cli", "spots", str(movie), "-o", str(out)]
    r = measure([*cmd, "--overwrite"], env=_env())
    if r["rc"] == 0:
        with open(out, encoding="utf-8") as fh:
            r["locs"] = sum(1 for _ in fh) - 1
    return r


DOCK = r"""
import sys, time
from qtpy.QtWidgets import QApplication
import napari
from napari_celldenoise._qt.spots import SpotsWidget

def main(path):
    viewer = napari.Viewer(show=False)
    viewer.open(path, plugin="napari-celldenoise")
    layer = viewer.layers[0]
    print("layer", type(layer.data).__name__, layer.data.shape, flush=True)
    widget = SpotsWidget(viewer)
    widget.preview_check.setChecked(False)
    widget.layer_combo.setCurrentText(layer.name)
    app = QApplication.instance()
    t0 = time.perf_counter()
    widget.run()
    while widget.jobs.running or widget.state.table is None:
        app.processEvents()
        time.sleep(0.05)
        if widget.jobs.failed:
            raise SystemExit(f"failed: {widget.jobs.failed}")
    for _ in range(20):
        app.processEvents()
    points = widget.points
    print("dock", len(widget.state.table), len(points.data), time.perf_counter() - t0, flush=True)
    print("summary", widget.summary.text(), flush=True)
    viewer.close()

if __name__ == "__main__":
    main(sys.argv[1])
"""


def run_dock(movie: Path, tmp: Path) -> dict:
    script = tmp / "dock_run.py"
    script.write_text(DOCK, encoding="utf-8")
    env = _env()
    env["QT_QPA_PLATFORM"] = "xcb"
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, str(script)]
    r = measure([*cmd, str(movie)], env=env)
    for line in r["tail"].splitlines():
        if line.startswith("dock "):
            _, n, shown, _ = line.split()
            r["locs"], r["shown"] = int(n), int(shown)
    return r


PICASSO_GRADIENT = r"""
import sys, json, numpy as np
from picasso import io, localize
movie, info = io.load_movie(sys.argv[1])
frames = np.asarray([movie[i] for i in range(100)])
target = float(sys.argv[2])
best = None
for g in (150, 250, 400, 700, 1000, 2000):
    ids = localize.identify(frames, float(g), 7, threaded=False, return_info=False)
    ids = ids[0] if isinstance(ids, tuple) else ids
    per_frame = len(ids) / len(frames)
    if best is None or abs(per_frame - target) < abs(best[1] - target):
        best = (g, per_frame)
print(json.dumps({"gradient": best[0], "per_frame": best[1]}))
"""

PICASSO_COUNT = r"""
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    print(len(f["locs"]))
"""


def run_picasso(movie: Path, per_frame: int) -> dict:
    out = subprocess.run(
        [str(PEER), "-c", PICASSO_GRADIENT, str(movie), str(per_frame)],
        capture_output=True,
        text=True,
        check=True,
    )
    choice = json.loads(out.stdout.strip().splitlines()[-1])
    cmd = [str(PEER), "-m", "picasso", "localize", str(movie), "-a", "mle", "-b", "7"]
    cmd += ["-g", str(choice["gradient"]), "-bl", "100", "-s", "0.5", "-ga", "1", "-qe", "1"]
    cmd += ["--drift", "0"]
    r = measure(cmd, cwd=str(movie.parent))
    r["gradient"], r["calibrated_per_frame"] = choice["gradient"], choice["per_frame"]
    locs = movie.with_name(os.path.splitext(movie.name)[0] + "_locs.hdf5")
    if r["rc"] == 0 and locs.exists():
        count = subprocess.run(
            [str(PEER), "-c", PICASSO_COUNT, str(locs)], capture_output=True, text=True
        )
        r["locs"] = int(count.stdout.strip() or 0)
    return r


def peer_version() -> str:
    out = subprocess.run(
        [str(PEER), "-c", "import picasso; print(picasso.__version__)"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or "?"


# ----------------------------------------------------------------------------- the table
def main(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark (``argv``: its options; None: the defaults, for benchmarks/smlm.py)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--per-frame", type=int, default=150, help="emitters on per frame")
    parser.add_argument(
        "--dir", default=str(Path(tempfile.gettempdir()) / "celldenoise-smlm-movie")
    )
    parser.add_argument("--no-dock", action="store_true", help="skip the Spots dock run")
    parser.add_argument("--no-picasso", action="store_true")
    parser.add_argument("--no-doc", action="store_true", help="print, do not write the docs")
    parser.add_argument(
        "--only",
        help="measure only these (comma-separated: cli, picasso, dock; empty: none), the "
        "others' rows as kept from earlier runs",
    )
    parser.add_argument(
        "--order", default="one after the other", help="how the runs overlapped, for the text"
    )
    parser.add_argument("--note", default="", help="a closing paragraph (what the run was)")
    args = parser.parse_args([] if argv is None else argv)
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    movie = folder / f"movie{args.frames}.ome.tif"
    t0 = time.perf_counter()
    facts = write_movie(movie, args.frames, per_frame=args.per_frame)
    print(
        f"movie {movie} ({movie.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t0:.0f} s"
    )
    only = set(args.only.split(",")) if args.only is not None else {"cli", "picasso", "dock"}
    emitted = args.frames * args.per_frame
    cli = "ours: `celldenoise spots` (MLE)"
    runs = [("cli", cli, lambda: run_ours(movie, folder / "ours.csv"))]
    if not args.no_picasso and PEER.exists():
        name = f"Picasso {peer_version()} `localize` (MLE)"
        runs.append(("picasso", name, lambda: run_picasso(movie, args.per_frame)))
    if not args.no_dock and shutil.which("xvfb-run"):
        dock = "ours: the Spots dock in napari (MLE)"
        runs.append(("dock", dock, lambda: run_dock(movie, folder)))

    def kept(key: str) -> Path:
        return folder / f"row-{args.frames}-{key}.json"

    for key, tool, fn in runs:
        if key not in only:
            continue
        r = {"tool": tool, **fn()}
        print(tool, {k: v for k, v in r.items() if k != "tail"}, flush=True)
        if r["rc"] != 0:
            print(r["tail"], flush=True)
        kept(key).write_text(json.dumps(r))
        if not args.no_doc:  # after each run: a long benchmark cut short keeps what it measured
            write_section("smlm-movie", _markdown(_rows(runs, kept), facts, args, emitted))
    rows = _rows(runs, kept)
    if not args.no_doc:
        write_section("smlm-movie", _markdown(rows, facts, args, emitted))
    return rows


def _rows(runs: list, kept) -> list[dict]:
    """The rows measured so far, this run's and the kept ones of earlier runs, in order."""
    return [json.loads(kept(k).read_text()) for k, _, _ in runs if kept(k).exists()]


def _markdown(rows: list[dict], facts: dict, args, emitted: int) -> str:
    lines = [
        "## A long SMLM movie end to end (`benchmarks/smlm_movie.py`)",
        "",
        f"Measured on {machine()}, a machine shared with other work (wall times vary with its "
        f"load). The movie: {facts['frames']:,} frames of {facts['size']}x{facts['size']} px, "
        f"{facts['per_frame']} blinking emitters per frame ({emitted:,} in all; "
        f"{PHOTONS[0]:.0f}-{PHOTONS[1]:.0f} photons, sigma {SIGMA} px, {BACKGROUND:.0f} "
        "photons/px background), an OME BigTIFF written frame by frame. Each tool runs as a "
        f"fresh process tree, {args.order}; CPU time is user + system over the whole tree "
        "(it depends less than wall time on what else the machine runs); peak memory is the "
        "resident memory summed over the tree, sampled every 0.2 s.",
        "",
        "| tool | localizations | wall (s) | frames/s | CPU time (s) | CPU per frame (ms) "
        "| peak memory (MB) | |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        n = r.get("locs")
        note = "ok" if r["rc"] == 0 else f"failed (exit {r['rc']})"
        if "gradient" in r:
            note += (
                f", min net gradient {r['gradient']} ({r['calibrated_per_frame']:.0f} spots per "
                "frame on the first 100 frames)"
            )
        if "shown" in r:
            note += f", {r['shown']:,} shown as points"
        rate = f"{facts['frames'] / r['wall_s']:.1f}" if n is not None else "-"
        lines.append(
            f"| {r['tool']} | {'-' if n is None else f'{n:,}'} | {r['wall_s']:.0f} | {rate} "
            f"| {r['cpu_s']:.0f} | {1000 * r['cpu_s'] / facts['frames']:.1f} "
            f"| {r['peak_mb']:.0f} | {note} |"
        )
    lines += [
        "",
        "Ours reads the movie lazily (the reader's lazy limit set to 64 MB, so that a shorter "
        "movie is read as the 10,000-frame one, 1.3 GB, is by default) and fits chunks of 16 "
        "frames in one worker process per "
        "core (`spots/stream.py`); each chunk's localizations go to a part on disk and the CSV "
        "is written part by part at the end, so memory does not grow with the movie. The dock "
        "holds the whole table once (for its histograms, filters and export; pandas' "
        "copy-on-write shares its columns with the run's result) and shows an evenly spaced "
        "subsample of at most 200,000 as a points layer. CPU per frame includes each tool's "
        "start (imports, numba's compiled kernels loaded, Picasso's calibration is not "
        "counted).",
        *(["", args.note] if args.note else []),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main(sys.argv[1:])
