"""``celldenoise worker JOB_URL``: train the job folder's spec wherever this runs.

The one entry point for a TPU VM, Colab, a GPU machine or this computer. The worker

1. reads ``job.json`` (refusing a folder that is not a job or is of a newer schema) and takes
   the job's lease (refused while another worker's heartbeat is fresh);
2. restores the last checkpoint, checked by its checksums, into a local model folder, and
   writes the epochs a killed attempt finished but could not report (so the event history has
   every epoch exactly once);
3. picks a TPU, else the GPUs, else the CPU (:mod:`..deep.strategy`) and says which (a
   :class:`Device` event), then trains the remaining epochs under that strategy;
4. writes every event as an object, uploads a checkpoint after every finished epoch (before
   its :class:`Epoch` event, so an epoch reported is an epoch kept), renews the lease with a
   heartbeat and looks for the ``stop`` object, which stops training within the epoch with
   the best and last weights kept;
5. publishes the model folder as ``model/`` and marks the job done (or failed, with why).

Network failures are retried with backoff (:mod:`.store`); the training thread goes on.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from ..jobs import Device, Done, Epoch, Log, Progress
from ..jobs.events import Event
from .job_folder import JobFolder, JobFolderError, Status

logger = logging.getLogger(__name__)

PROGRESS_EVERY = 5.0
"""Seconds between Progress objects (a batch each would flood the bucket)."""
STOP_EVERY = 2.0
"""Seconds between looks for the ``stop`` object (one small read)."""


class Worker:
    """One attempt at a job: lease, heartbeat, events, checkpoints (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        devices: str | None = None,
        heartbeat: float = 10.0,
        lease: float = 60.0,
        stream: TextIO | None = None,
    ):
        self.job = JobFolder(url)
        self.devices = devices
        self.heartbeat = heartbeat
        self.lease = lease
        self.stream = stream or sys.stderr
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._status = Status()
        self._log: list[str] = []
        self._index = 0
        self._last_progress = 0.0
        self._beating = threading.Event()

    # -------------------------------------------------------------------- bookkeeping
    def say(self, line: str) -> None:
        stamp = time.strftime("%H:%M:%S", time.gmtime())
        self._log.append(f"{stamp} {line}")
        self.stream.write(line + "\n")
        self.stream.flush()

    def update(self, **changes: object) -> None:
        with self._lock:
            self._status = replace(self._status, **changes, heartbeat=time.time())
            self._status = self.job.write_status(self._status)

    def emit(self, event: Event) -> None:
        self.job.write_event(self._index, event)
        self._index += 1

    def flush_log(self) -> None:
        self.job.write_log(self._status.attempt, "\n".join(self._log) + "\n")

    def _beat(self) -> None:
        """Look for ``stop`` every ``STOP_EVERY`` s (at most), renew the lease every heartbeat."""
        last = time.monotonic()
        while not self._beating.wait(min(self.heartbeat, STOP_EVERY)):
            try:
                if not self.stop.is_set() and self.job.stop_requested():
                    self.stop.set()
                    self.say("stop requested: finishing this batch, keeping best and last weights")
                    self.update(state="stopping", message="stop requested")
                    last = time.monotonic()
                elif time.monotonic() - last >= self.heartbeat:
                    self.update()
                    last = time.monotonic()
            except Exception as exc:  # the next beat retries; the lease has slack
                logger.warning("heartbeat failed: %s", exc)

    # --------------------------------------------------------------------------- run
    def run(self) -> Status:
        """Train the job to its end (or its stop); returns the final status."""
        info = self.job.read_job()
        self._status = self.job.acquire(self.id, lease_seconds=self.lease)
        self._index = self._next_index()
        beat = threading.Thread(target=self._beat, name="celldenoise-heartbeat", daemon=True)
        beat.start()
        try:
            return self._train(info)
        except BaseException as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            self.say(f"failed: {message}")
            self._safely(lambda: self.update(state="failed", message=message))
            self._safely(self.flush_log)
            raise
        finally:
            self._beating.set()
            beat.join(timeout=5)

    def _safely(self, fn) -> None:
        try:
            fn()
        except Exception as exc:
            logger.warning("could not record the failure: %s", exc)

    def _next_index(self) -> int:
        names = self.job.event_names()
        return int(Path(names[-1]).stem) + 1 if names else 0

    def _train(self, info) -> Status:
        from ..deep.model import ModelFolder

        total = info.spec.config.epochs
        self.say(f"worker {self.id}, attempt {self._status.attempt} of {self.job.url}")
        with tempfile.TemporaryDirectory(prefix="celldenoise-worker-") as scratch:
            model_dir = Path(scratch) / "model"
            record = self.job.restore_checkpoint(model_dir)
            done = 0
            if record is not None:
                folder = ModelFolder(model_dir)
                done = folder.read_info().epochs_done
                self.say(f"resuming after epoch {done} of {total} (checkpoint {record['folder']})")
                self._report_missing_epochs(folder.read_history(), done)
            self.update(state="starting", message="starting TensorFlow", epochs_done=done)
            stopped = self.job.stop_requested()
            if stopped:
                self.stop.set()
            if done < total and not stopped:
                stopped = self._fit(info, model_dir, done, total, resume=record is not None)
            elif done >= total and not stopped:
                self._report_done(model_dir)
            if not ModelFolder(model_dir).has_weights():
                self.update(state="done", stopped=True, message="stopped before any epoch")
                self.flush_log()
                return self._status
            url = self.job.publish_model(model_dir)
            epochs = ModelFolder(model_dir).read_info().epochs_done
            what = "stopped" if stopped else "done"
            self.say(f"{what}: {epochs} epochs; model at {url}")
            self.update(state="done", stopped=stopped, epochs_done=epochs, message=f"{what}")
            self.flush_log()
            return self._status

    def _report_done(self, model_dir: Path) -> None:
        """The training's ``Done``, when a worker was killed after its last epoch's checkpoint
        and before that event: the job's reader waits for one (and gets it once)."""
        from ..deep.model import ModelFolder

        if not any(isinstance(e, Done) for _, e in self.job.events(previews=False)):
            self.emit(Done(ModelFolder(model_dir).read_info()))

    def _report_missing_epochs(self, history: list[dict], done: int) -> None:
        """Epochs the checkpoint has but the events miss (killed between the two writes)."""
        reported = {
            e.epoch
            for _, e in self.job.events(previews=False)
            if isinstance(e, Epoch) and not e.partial
        }
        for rec in history:
            epoch = int(rec["epoch"])
            if epoch <= done and epoch not in reported and not rec.get("partial"):
                self.emit(
                    Epoch(
                        epoch,
                        float(rec["loss"]),
                        rec.get("val_loss"),
                        rec.get("learning_rate"),
                        rec.get("seconds"),
                        None,
                        {"loss": float(rec["loss"])},
                        rec.get("steps"),
                        rec.get("steps"),
                    )
                )

    def _fit(self, info, model_dir: Path, done: int, total: int, *, resume: bool) -> bool:
        from ..deep import strategy
        from ..deep._tf import unusable_gpu
        from ..deep.file_job import run_train_spec

        config = info.spec.config.model_copy(update={"epochs": total - done})
        spec = info.spec.model_copy(
            update={"config": config, "output": str(model_dir), "resume": resume}
        )
        placement = strategy.pick(self.devices)
        self.say(f"training on {placement.description}")
        note = unusable_gpu() if placement.kind == "cpu" else ""
        if note:
            self.say(note)
        if placement.kind == "tpu" and config.batch % (8 * placement.replicas):
            self.say(
                f"batch {config.batch} is not a multiple of 8 per TPU core "
                f"({8 * placement.replicas} for {placement.replicas} cores): the TPU runs below "
                "its speed"
            )
        self.emit(Device(placement.description, note=note))
        self.update(state="running", message="training", device=placement.description)
        stopped = False
        with strategy.using(placement):
            for event in run_train_spec(spec, should_stop=self.stop.is_set):
                stopped = self._handle(event, model_dir) or stopped
        return stopped

    def _handle(self, event: Event, model_dir: Path) -> bool:
        if isinstance(event, Progress):
            now = time.monotonic()
            final = event.total and event.done >= event.total
            if now - self._last_progress < PROGRESS_EVERY and not final:
                return False
            self._last_progress = now
        elif isinstance(event, Device):
            return False  # the placement's Device was sent
        elif isinstance(event, Log):
            self.say(event.message)
        elif isinstance(event, Epoch):
            if not event.partial:
                self.job.save_checkpoint(model_dir, event.epoch)
            self.emit(event)
            val = f", val_loss {event.val_loss:.5g}" if event.val_loss is not None else ""
            self.say(f"epoch {event.epoch}: loss {event.loss:.5g}{val}")
            self.update(
                state="stopping" if self.stop.is_set() else "running",
                epochs_done=event.epoch if not event.partial else event.epoch - 1,
            )
            self.flush_log()
            return False
        elif isinstance(event, Done):
            if event.stopped:
                self.job.save_checkpoint(model_dir, event.result.epochs_done)
            self.emit(event)
            return event.stopped
        self.emit(event)
        return False


def run_worker(url: str, **options: object) -> Status:
    """Run a :class:`Worker` on ``url`` to the end; returns its final status.

    Raises
    ------
    JobFolderError
        Not a job, a newer schema, held by another worker, a corrupt checkpoint.
    """
    return Worker(url, **options).run()


__all__ = ["JobFolderError", "Worker", "run_worker"]
