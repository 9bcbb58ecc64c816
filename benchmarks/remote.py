"""Remote training's cost on this machine: a job folder on a local GCS server against local
training, same image, same config, same run.

Measured, each as a process started from here:

- local: ``celldenoise train`` (the time each ``epoch N:`` line reaches its stderr);
- remote: ``celldenoise worker JOB`` on a job folder in fake-gcs-server (the time each
  ``events/NNNNNN.json`` holding an Epoch appears, polled every 0.1 s).

Reported: time from start to the first epoch, seconds per epoch (from the first to the last
epoch) and their difference, the job folder's per-epoch overhead (a checkpoint upload, the
event objects, the heartbeat). Run: ``nice -n 19 python benchmarks/remote.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from report import machine, write_section  # noqa: E402

EPOCHS, STEPS, PATCH, BATCH = 4, 8, 64, 16
CLI = [sys.executable, "-m", "napari_celldenoise.cli"]


def _image(path: Path) -> None:
    from napari_celldenoise.synthetic import fluorescence_image

    frames = [fluorescence_image((256, 256), seed=s)[0] for s in range(4)]
    tifffile.imwrite(path, np.stack(frames).astype(np.float32), imagej=True,
                     metadata={"axes": "TYX"})  # fmt: skip


def local(image: Path, out: Path) -> list[float]:
    """Seconds from start to each epoch line of ``celldenoise train``."""
    cmd = [*CLI, "train", str(image), "--method", "n2v", "-o", str(out), "--epochs", str(EPOCHS),
           "--steps", str(STEPS), "--patch", str(PATCH), "--batch", str(BATCH)]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    times = []
    for line in proc.stderr:
        if line.startswith("epoch "):
            times.append(time.monotonic() - start)
    proc.wait()
    return times


def remote(image: Path, bucket: str) -> list[float]:
    """Seconds from the worker's start to each Epoch object in the job folder."""
    from napari_celldenoise.deep.config import TrainConfig
    from napari_celldenoise.io import read_image
    from napari_celldenoise.jobs import Epoch
    from napari_celldenoise.jobs.specs import train_spec
    from napari_celldenoise.remote.job_folder import JobFolder

    config = TrainConfig(epochs=EPOCHS, steps=STEPS, patch=PATCH, batch=BATCH)
    url = f"{bucket}/jobs/bench"
    job = JobFolder.create(url, train_spec(str(image), f"{url}/model", config),
                           image=read_image(image))  # fmt: skip
    start = time.monotonic()
    proc = subprocess.Popen([*CLI, "worker", url], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    seen: dict[str, float] = {}
    while proc.poll() is None or not seen:
        for name in job.event_names():
            if name not in seen:
                seen[name] = time.monotonic() - start
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    for name in job.event_names():
        seen.setdefault(name, time.monotonic() - start)
    epochs = []
    for name, t in sorted(seen.items()):
        if isinstance(job.read_event(name), Epoch):
            epochs.append(t)
    return epochs


def folder_io(model: Path, bucket: str, repeats: int = 3) -> tuple[float, float, float]:
    """Median seconds of one epoch's job-folder writes for the model folder ``model``: the
    checkpoint (every file, then last.json), an Epoch and a Preview event; and the MB sent."""
    from napari_celldenoise.jobs import Epoch, Preview
    from napari_celldenoise.remote.job_folder import JobFolder

    job = JobFolder(f"{bucket}/jobs/io")
    checkpoint, events = [], []
    for k in range(repeats):
        t = time.perf_counter()
        job.save_checkpoint(model, k + 1)
        checkpoint.append(time.perf_counter() - t)
        t = time.perf_counter()
        job.write_event(2 * k, Epoch(k + 1, 0.5, 0.4, metrics={"loss": 0.5}))
        job.write_event(2 * k + 1, Preview(np.zeros((PATCH, PATCH), np.float32), "p"))
        events.append(time.perf_counter() - t)
    size = sum(p.stat().st_size for p in model.iterdir() if p.is_file()) / 1e6
    return float(np.median(checkpoint)), float(np.median(events)), size


def main() -> None:
    sys.path.insert(0, str(ROOT / "tests" / "remote"))
    from conftest import GcsServer

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        image = tmp / "noisy.tif"
        _image(image)
        server = GcsServer(tmp / "gcs")
        server.start()
        os.environ.update(server.env)
        try:
            results = {"local": local(image, tmp / "model"),
                       "remote": remote(image, "gs://bucket/bench")}  # fmt: skip
            io = folder_io(tmp / "model", "gs://bucket/bench")
        finally:
            server.stop()
    rows = []
    for name, times in results.items():
        per = (times[-1] - times[0]) / (len(times) - 1)
        rows.append((name, times[0], per, len(times)))
        print(name, [round(t, 1) for t in times], file=sys.stderr)
    overhead = rows[1][2] - rows[0][2]
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    shared = load > 1.5 * cores
    text = (
        f"{machine()}; load average {load:.1f} during the run.\n\n"
        f"N2V (depth 2, 32 features), {EPOCHS} epochs x {STEPS} steps of {BATCH} patches "
        f"of {PATCH} px, 4 frames of 256 x 256; both as processes started in the same run.\n\n"
        "| run | first epoch after (s) | s per epoch | epochs |\n|---|---|---|---|\n"
        + "".join(f"| {n} | {f:.1f} | {p:.2f} | {k} |\n" for n, f, p, k in rows)
        + f"\nJob-folder writes of one epoch, timed alone: the checkpoint of the model folder "
        f"({io[2]:.1f} MB) {io[0]:.2f} s, an Epoch and a Preview event {io[1]:.3f} s (median of "
        "3); the worker makes them while the next epoch trains.\n"
        + (
            f"\nThe machine was shared during the run (load {load:.1f} on {cores} cores): the "
            f"local/remote differences ({rows[1][1] - rows[0][1]:+.1f} s to the first epoch, "
            f"{overhead:+.2f} s per epoch) are contention, not the job folder's cost; the "
            "timed writes above are the better bound.\n"
            if shared
            else f"\nThe job folder adds {rows[1][1] - rows[0][1]:+.1f} s before the first "
            f"epoch (lease, input download) and {overhead:+.2f} s per epoch.\n"
        )
    )
    print(text)
    write_section("remote", "## Remote training: job folder against local training\n\n" + text)


if __name__ == "__main__":
    main()
