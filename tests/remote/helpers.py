"""Shared pieces of the remote tests: a tiny job and the CLI as a process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

from napari_celldenoise.deep.config import TrainConfig
from napari_celldenoise.io import ImageData
from napari_celldenoise.jobs import Epoch
from napari_celldenoise.jobs.specs import train_spec
from napari_celldenoise.remote.job_folder import JobFolder

CLI = [sys.executable, "-m", "napari_celldenoise.cli"]


def tiny_config(epochs: int = 3, steps: int = 3, **changes) -> TrainConfig:
    """An N2V that trains an epoch in about a second on two cores."""
    values = dict(epochs=epochs, steps=steps, patch=32, batch=4, depth=1, features=8)
    return TrainConfig(**{**values, **changes})


def noisy_image() -> ImageData:
    rng = np.random.default_rng(0)
    data = rng.poisson(30, (4, 64, 64)).astype(np.uint16)
    return ImageData(data, "TYX", scale={"Y": 0.1, "X": 0.1}, units={"Y": "µm", "X": "µm"})


def make_job(url: str, config: TrainConfig | None = None) -> JobFolder:
    spec = train_spec("noisy.tif", f"{url}/model", config or tiny_config())
    return JobFolder.create(url, spec, image=noisy_image())


def worker(url: str, *extra: str, log=None) -> subprocess.Popen:
    """``celldenoise worker URL`` as a process (fast heartbeat, short lease)."""
    cmd = [*CLI, "worker", url, "--heartbeat", "0.5", "--lease", "3", *extra]
    out = log if log is not None else subprocess.DEVNULL
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)


def epochs_reported(job: JobFolder) -> list[int]:
    return [e.epoch for _, e in job.events(previews=False) if isinstance(e, Epoch)]


def wait_for(condition, timeout: float, what: str, every: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy()
    )
