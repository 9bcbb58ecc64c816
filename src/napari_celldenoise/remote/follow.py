"""Follow a remote job as a job generator: the same events as a local training, from the bucket.

:func:`follow` polls a job folder and yields its events in order (the worker's ``Epoch``,
``Preview``, ``Log``, ``Progress``...), so that the dock's loss plot, preview layer and Stop, and
``celldenoise jobs show --follow``, treat a remote job as a local one. ``should_stop`` turning
true writes the job's ``stop`` object once; following goes on until the worker has kept its
best and last weights and finished. :func:`submit` checks the bucket, uploads the image and the
spec, starts a launcher and then follows. Network failures are retried by the store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..jobs import Done, Event, Log, Preview, ShouldStop, never_stop, wire
from ..jobs.specs import TrainSpec
from .job_folder import FINAL, JobFolder, jobs_url, new_job_id


class RemoteJobFailed(RuntimeError):
    """The worker reported a failure (its message)."""


def follow(
    url: str,
    *,
    should_stop: ShouldStop = never_stop,
    interval: float = 2.0,
    start: int = 0,
    pull_to: str | None = None,
) -> Iterator[Event]:
    """Yield ``url``'s events from ``start`` on until the job ends; ``Done`` last.

    Only the newest Preview of each poll has its image fetched. With ``pull_to`` the finished
    model folder is downloaded there (new or empty) and ``Done`` carries its ``ModelInfo``.

    Raises
    ------
    RemoteJobFailed
        When the job failed (the worker's message).
    """
    job = JobFolder(url)
    job.read_job()
    index, asked, state, final, silent = start, False, "", None, False
    while True:
        if should_stop() and not asked:
            job.request_stop()
            asked = True
            yield Log("stop requested: the worker stops within its epoch, keeping best and last")
        status = job.read_status()
        if status.state != state:
            state = status.state
            where = f" on {status.device}" if status.device else ""
            yield Log(f"remote job {state}{where}: {status.message}".rstrip(": "))
        names = [n for n in job.event_names() if int(Path(n).stem) >= index]
        events = [(n, wire.loads(job.store.get(n).decode())) for n in names]
        previews = [n for n, e in events if isinstance(e, Preview)]
        for name, event in events:
            index = int(Path(name).stem) + 1
            if isinstance(event, Done):
                final = event
                continue
            if isinstance(event, Preview):
                if name != previews[-1]:
                    continue
                event = job.read_event(name)
            yield event
        if status.state in FINAL:
            break
        if not status.lease_alive() and status.state in ("starting", "running", "stopping"):
            if not silent:
                silent = True
                yield Log(
                    f"no heartbeat from the worker for {status.heartbeat_age():.0f} s: it is "
                    f"gone; run `celldenoise worker {url}` (or relaunch it) and it resumes"
                )
        else:
            silent = False
        if asked and not status.lease_alive():
            break  # no worker to wait for: the stop object stops the next one at once
        _sleep(interval, should_stop, asked)
    if status.state == "failed":
        raise RemoteJobFailed(f"remote job failed: {status.message}")
    result: Any = final.result if final is not None else None
    if pull_to is not None and result is not None:
        from ..deep.model import ModelFolder

        yield Log(f"downloading the model into {pull_to}")
        job.pull_model(pull_to)
        result = ModelFolder(pull_to).read_info()
    yield Done(result, stopped=status.stopped or status.state not in FINAL)


def _sleep(interval: float, should_stop: ShouldStop, asked: bool) -> None:
    """Wait ``interval`` seconds, waking early when Stop is pressed."""
    deadline = time.monotonic() + interval
    while time.monotonic() < deadline:
        if should_stop() and not asked:
            return
        time.sleep(min(0.2, interval))


def submit(
    spec: TrainSpec,
    image: Any,
    bucket: str,
    launcher: Any,
    *,
    should_stop: ShouldStop = never_stop,
    notebook: str | None = None,
    interval: float = 2.0,
    pull_to: str | None = None,
) -> Iterator[Event]:
    """Check ``bucket``, upload ``image`` and ``spec`` as a new job, launch it, follow it.

    ``launcher`` is a :mod:`.launchers` launcher, or None for Colab (the runner notebook is
    written to ``notebook`` and the user runs it). The first Log names the job URL.
    """
    from .store import Store

    url = f"{jobs_url(bucket)}/{new_job_id(spec.config.method)}"
    yield Log(f"checking {bucket}")
    Store(bucket).check_writable()
    if launcher is not None and hasattr(launcher, "preflight"):
        launcher.preflight()
    yield Log(f"uploading the image to {url}")
    settings = launcher.settings() if hasattr(launcher, "settings") else {}
    name = "colab" if launcher is None else launcher.name
    spec = spec.model_copy(update={"output": f"{url}/model"})
    job = JobFolder.create(url, spec, image=image, launcher=name, launch=settings)
    yield Log(f"job {job.url}")
    if launcher is None:
        from .colab import write_notebook

        path = write_notebook(job.url, notebook or "celldenoise-colab.ipynb")
        yield Log(f"open {path} in Colab, choose a TPU or GPU runtime and run all cells")
    else:
        yield Log(f"starting the worker ({launcher.name})")
        launcher.launch(job.url)
    yield from follow(job.url, should_stop=should_stop, interval=interval, pull_to=pull_to)


__all__ = ["RemoteJobFailed", "follow", "submit"]
