"""A remote training job as a folder of whole objects at any fsspec URL.

``gs://bucket/prefix/jobs/<id>/`` for users (``file://`` and a local GCS server in tests)::

    job.json              schema, the train spec (the same TrainConfig as local training),
                          package/TensorFlow versions, input URLs, seed
    inputs/image.ome.tif  the layer's data as uploaded (OME-TIFF: axes and pixel size)
    inputs/image.json     its axes, scale, units, shape, dtype and where it came from
    status.json           state, message, attempt, device, worker lease and heartbeat
    events/NNNNNN.json    one event per object (the project's JSON events, :mod:`..jobs.wire`)
    previews/NNNNNN.npy   the image of the Preview event NNNNNN (small float32 NPY)
    checkpoints/last.json the last checkpoint: its epoch, folder and SHA-256 of every file
    checkpoints/NNNNNN/   a model-folder snapshot after epoch NNNNNN (best and last weights)
    model/                the finished model folder (``celldenoise predict`` takes it)
    logs/attempt-N.log    the worker's log of attempt N
    stop                  present: the worker stops within the epoch, keeping best and last

GCS objects cannot be appended to, so the event stream is a sequence of objects and every
other file is rewritten whole (:mod:`.store`). One worker holds the job at a time: its lease is
``status.json``'s ``worker`` and ``heartbeat``, renewed with every heartbeat; a second worker
refuses while the heartbeat is younger than the lease.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..jobs import Preview, wire
from ..jobs.events import Event
from ..jobs.specs import TrainSpec, parse_spec
from .store import Store

SCHEMA = 1
"""Version of the job folder layout; a folder with a higher one is refused."""

KIND = "celldenoise-job"
STATES = ("queued", "starting", "running", "stopping", "done", "failed", "preempted")
FINAL = ("done", "failed")
INPUT = "inputs/image.ome.tif"
PREVIEW_SIDE = 128


class JobFolderError(ValueError):
    """Not a job folder, a newer schema, a corrupt checkpoint, a job held elsewhere."""


class LeaseHeld(JobFolderError):
    """Another worker holds the job (its heartbeat is fresh)."""


def now() -> float:
    return time.time()


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def new_job_id(method: str) -> str:
    """``20261202-193012-n2v-1a2b``: sortable by time, readable, unique."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{method}-{uuid.uuid4().hex[:4]}"


def jobs_url(bucket: str) -> str:
    """``gs://B/PREFIX`` -> ``gs://B/PREFIX/jobs``."""
    return f"{bucket.rstrip('/')}/jobs"


@dataclass(frozen=True)
class JobInfo:
    """What ``job.json`` says."""

    spec: TrainSpec
    versions: dict[str, str]
    inputs: list[str]
    seed: int
    created: str
    launcher: str = "local"
    launch: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA


@dataclass(frozen=True)
class Status:
    """``status.json``: where the job is, who holds it, and since when."""

    state: str = "queued"
    message: str = ""
    attempt: int = 0
    device: str = ""
    worker: str = ""
    host: str = ""
    heartbeat: float = 0.0
    lease_seconds: float = 60.0
    epochs_done: int = 0
    epochs: int = 0
    stopped: bool = False
    updated: str = ""

    def heartbeat_age(self, at: float | None = None) -> float:
        return (at or now()) - self.heartbeat

    def lease_alive(self, at: float | None = None) -> bool:
        """Whether a worker holds the job: it is not finished and its heartbeat is fresh."""
        return (
            bool(self.worker)
            and self.state not in (*FINAL, "preempted")
            and self.heartbeat_age(at) < self.lease_seconds
        )


class JobFolder:
    """One job folder at ``url`` (see the module docstring for its layout)."""

    def __init__(self, url: str | os.PathLike, *, patience: float = 120.0):
        self.store = Store(url, patience=patience)
        self.url = self.store.url

    def __repr__(self) -> str:
        return f"JobFolder({self.url!r})"

    # ------------------------------------------------------------------------ creation
    @classmethod
    def create(
        cls,
        url: str,
        spec: TrainSpec,
        *,
        launcher: str = "local",
        launch: dict[str, Any] | None = None,
        image: Any = None,
    ) -> JobFolder:
        """Write a new job: ``image`` (ImageData) into ``inputs/``, then ``job.json``, then a
        queued ``status.json``. The spec's input becomes the uploaded copy.

        Raises
        ------
        JobFolderError
            When ``url`` already holds a job.
        """
        job = cls(url)
        if job.store.exists("job.json"):
            raise JobFolderError(f"{job.url}: already holds a job (choose a new job URL)")
        inputs = [spec.input.path]
        if image is not None:
            inputs = [job.upload_input(image, source=spec.input.path)]
            spec = spec.model_copy(
                update={"input": spec.input.model_copy(update={"path": inputs[0], "axes": None})}
            )
        record = {
            "schema": SCHEMA,
            "kind": KIND,
            "spec": spec.to_dict(),
            "versions": versions(),
            "inputs": inputs,
            "seed": spec.config.seed,
            "created": iso(now()),
            "launcher": launcher,
            "launch": dict(launch or {}),
        }
        job.store.put("job.json", _json(record))
        job.write_status(
            Status(state="queued", message="waiting for a worker", epochs=spec.config.epochs)
        )
        return job

    def upload_input(self, image: Any, *, source: str = "") -> str:
        """Write ``image`` as ``inputs/image.ome.tif`` (axes and pixel size kept) and its
        description as ``inputs/image.json``; returns the uploaded image's URL."""
        import tempfile

        from ..io import write_ome_tiff

        with tempfile.TemporaryDirectory(prefix="celldenoise-upload-") as tmp:
            local = Path(tmp) / "image.ome.tif"
            write_ome_tiff(local, image.with_data(np.asarray(image.data)), overwrite=True)
            self.store.upload(local, INPUT)
        described = {
            "axes": image.axes,
            "scale": image.scale,
            "units": image.units,
            "shape": list(np.shape(image.data)),
            "dtype": str(image.data.dtype),
            "source": source,
        }
        self.store.put("inputs/image.json", _json(described))
        return self.store.url_of(INPUT)

    # ----------------------------------------------------------------------- job.json
    def read_job(self) -> JobInfo:
        """``job.json`` checked: a job folder, of a schema this version reads.

        Raises
        ------
        JobFolderError
            Not a job folder (no or foreign ``job.json``), a newer schema, a bad spec.
        """
        raw = self.store.get_or_none("job.json")
        if raw is None:
            raise JobFolderError(f"{self.url}: not a job folder (no job.json)")
        try:
            record = json.loads(raw)
        except ValueError as exc:
            raise JobFolderError(f"{self.url}/job.json: not JSON ({exc})") from None
        if not isinstance(record, dict) or record.get("kind") != KIND:
            raise JobFolderError(f"{self.url}: not a celldenoise job folder (job.json is foreign)")
        schema = record.get("schema")
        if not isinstance(schema, int) or schema > SCHEMA:
            raise JobFolderError(
                f"{self.url}: written by a newer napari-celldenoise (job schema {schema}; this "
                f"version {__version__} reads up to {SCHEMA}): upgrade to open it"
            )
        from ..config import ConfigError

        try:
            spec = parse_spec(record["spec"])
        except (ConfigError, KeyError) as exc:
            raise JobFolderError(f"{self.url}/job.json: {exc}") from None
        if not isinstance(spec, TrainSpec):
            raise JobFolderError(f"{self.url}/job.json: a {spec.kind} spec, not a training")
        return JobInfo(
            spec=spec,
            versions=dict(record.get("versions", {})),
            inputs=list(record.get("inputs", [])),
            seed=int(record.get("seed", spec.config.seed)),
            created=str(record.get("created", "")),
            launcher=str(record.get("launcher", "local")),
            launch=dict(record.get("launch", {})),
            schema=schema,
        )

    # --------------------------------------------------------------------- status.json
    def read_status(self) -> Status:
        raw = self.store.get_or_none("status.json")
        if raw is None:
            return Status()
        data = json.loads(raw)
        known = {k: v for k, v in data.items() if k in Status.__dataclass_fields__}
        return Status(**known)

    def write_status(self, status: Status) -> Status:
        status = replace(status, updated=iso(now()))
        self.store.put("status.json", _json(asdict(status)))
        return status

    # --------------------------------------------------------------------------- lease
    def acquire(self, worker: str, *, lease_seconds: float = 60.0, settle: float = 0.5) -> Status:
        """Take the job for ``worker``: refused while another worker's lease is alive.

        The lease is written, then read back after ``settle`` seconds: of two workers starting
        together, the one whose write landed last holds it and the other refuses.

        Raises
        ------
        LeaseHeld
            Naming the holder, its host and how long ago it beat.
        JobFolderError
            When the job is finished already.
        """
        current = self.read_status()
        if current.state in FINAL:
            raise JobFolderError(f"{self.url}: the job is {current.state} already")
        if current.worker != worker and current.lease_alive():
            raise _held(self.url, current)
        mine = replace(
            current,
            state="starting",
            message="worker starting",
            attempt=current.attempt + 1,
            worker=worker,
            host=socket.gethostname(),
            heartbeat=now(),
            lease_seconds=lease_seconds,
        )
        self.write_status(mine)
        time.sleep(settle)
        check = self.read_status()
        if check.worker != worker:
            raise _held(self.url, check)
        return check

    # -------------------------------------------------------------------------- events
    def event_names(self) -> list[str]:
        return [n for n in self.store.list("events") if n.endswith(".json")]

    def write_event(self, index: int, event: Event) -> None:
        """Write ``event`` as ``events/{index:06d}.json`` (a Preview's image as an NPY object)."""
        if isinstance(event, Preview):
            name = f"previews/{index:06d}.npy"
            self.store.put(name, _npy(small_preview(event.image)))
            event = Preview(
                np.zeros((0, 0), np.float32), event.name, {**event.metadata, "npy": name}
            )
        self.store.put(f"events/{index:06d}.json", wire.dumps(event).encode())

    def read_event(self, name: str) -> Event:
        event = wire.loads(self.store.get(name).decode())
        if isinstance(event, Preview) and "npy" in event.metadata:
            raw = self.store.get_or_none(event.metadata["npy"])
            image = np.load(io.BytesIO(raw)) if raw is not None else event.image
            event = Preview(image, event.name, event.metadata)
        return event

    def events(self, start: int = 0, *, previews: bool = True) -> Iterator[tuple[int, Event]]:
        """``(index, event)`` of the events from ``start`` on, in order.

        Without ``previews`` a Preview's image is not fetched (an empty array stands in).
        """
        for name in self.event_names():
            index = int(Path(name).stem)
            if index < start:
                continue
            if previews:
                yield index, self.read_event(name)
            else:
                yield index, wire.loads(self.store.get(name).decode())

    # --------------------------------------------------------------------------- stop
    def request_stop(self) -> None:
        self.store.put("stop", f"stop requested at {iso(now())}\n".encode())

    def stop_requested(self) -> bool:
        return self.store.get_or_none("stop") is not None

    # -------------------------------------------------------------------- checkpoints
    def save_checkpoint(self, model_dir: str | os.PathLike, epoch: int) -> dict[str, Any]:
        """Upload the model folder ``model_dir`` after ``epoch`` as a checkpoint.

        Files go to a new ``checkpoints/{epoch:06d}-XXXXXX/``; only then
        ``checkpoints/last.json`` names it (with each file's SHA-256), and the previous
        snapshot is deleted. A worker killed
        during the upload leaves the previous checkpoint in force.
        """
        folder = f"checkpoints/{epoch:06d}-{uuid.uuid4().hex[:6]}"  # never rewritten in place
        files = {}
        for path in sorted(Path(model_dir).iterdir()):
            if path.is_file() and not path.name.startswith("."):
                data = path.read_bytes()
                self.store.put(f"{folder}/{path.name}", data)
                files[path.name] = hashlib.sha256(data).hexdigest()
        previous = self.last_checkpoint()
        record = {"epoch": epoch, "folder": folder, "files": files, "written": iso(now())}
        self.store.put("checkpoints/last.json", _json(record))
        if previous and previous["folder"] != folder:
            self.store.delete(previous["folder"], recursive=True)
        return record

    def last_checkpoint(self) -> dict[str, Any] | None:
        raw = self.store.get_or_none("checkpoints/last.json")
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise JobFolderError(
                f"{self.url}/checkpoints/last.json is corrupt (not JSON); nothing was overwritten"
            ) from None

    def restore_checkpoint(self, model_dir: str | os.PathLike) -> dict[str, Any] | None:
        """Download the last checkpoint into ``model_dir`` (new or empty); None without one.

        Every file is checked against its SHA-256 before anything is written.

        Raises
        ------
        JobFolderError
            A file missing or changed (a corrupt checkpoint); ``model_dir`` stays untouched.
        """
        record = self.last_checkpoint()
        if record is None:
            return None
        blobs = {}
        for name, digest in record["files"].items():
            where = f"{record['folder']}/{name}"
            data = self.store.get_or_none(where)
            if data is None or hashlib.sha256(data).hexdigest() != digest:
                problem = "missing" if data is None else "corrupt (its checksum differs)"
                raise JobFolderError(
                    f"{self.url}/{where} is {problem}: the checkpoint of epoch "
                    f"{record['epoch']} cannot be resumed; nothing was overwritten"
                )
            blobs[name] = data
        target = Path(model_dir)
        target.mkdir(parents=True, exist_ok=True)
        for name, data in blobs.items():
            (target / name).write_bytes(data)
        return record

    # -------------------------------------------------------------------------- model
    def publish_model(self, model_dir: str | os.PathLike) -> str:
        """Upload the finished model folder as ``model/`` (its info file last)."""
        from ..deep.model import INFO

        paths = sorted(p for p in Path(model_dir).iterdir() if p.is_file())
        for path in sorted(paths, key=lambda p: p.name == INFO):
            self.store.upload(path, f"model/{path.name}")
        return self.store.url_of("model")

    def pull_model(self, out: str | os.PathLike) -> Path:
        """Download ``model/`` into the new or empty local folder ``out``.

        Raises
        ------
        JobFolderError
            When the job has no finished model yet, or ``out`` holds files.
        """
        from ..deep.model import INFO

        names = self.store.list("model")
        if f"model/{INFO}" not in names:
            status = self.read_status()
            raise JobFolderError(
                f"{self.url}: no model yet (the job is {status.state}); pull it when it is done"
            )
        target = Path(out)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise JobFolderError(f"{target}: already exists and is not empty")
        import shutil
        import tempfile

        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            for name in names:
                (tmp / Path(name).name).write_bytes(self.store.get(name))
            if target.exists():
                target.rmdir()
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    # ---------------------------------------------------------------------------- logs
    def write_log(self, attempt: int, text: str) -> None:
        self.store.put(f"logs/attempt-{attempt}.log", text.encode())

    def logs(self) -> str:
        parts = []
        names = sorted(self.store.list("logs"), key=lambda n: int(n.rsplit("-", 1)[-1][:-4] or 0))
        for name in names:
            parts.append(f"--- {Path(name).name}\n{self.store.get(name).decode(errors='replace')}")
        return "\n".join(parts)

    def delete(self) -> None:
        """Remove the whole job folder (after checking it is one)."""
        self.read_job()
        self.store.delete("", recursive=True)


def list_jobs(bucket: str) -> list[tuple[str, Status | None, JobInfo | None]]:
    """The jobs under ``bucket``'s ``jobs/``: ``(url, status, info)``, newest first.

    A folder that is not a readable job has ``None`` for both.
    """
    store = Store(jobs_url(bucket))
    found = []
    for name in reversed(store.list("")):
        job = JobFolder(store.url_of(name))
        try:
            info = job.read_job()
            status = job.read_status()
        except JobFolderError:
            info = status = None
        found.append((job.url, status, info))
    return found


def versions() -> dict[str, str]:
    """This package's, Python's and (when installed) TensorFlow's versions, without importing
    TensorFlow."""
    from importlib import metadata

    found = {"napari-celldenoise": __version__, "python": platform.python_version()}
    for dist in ("tensorflow", "tensorflow-tpu", "tf-keras"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return found


def small_preview(image: np.ndarray, side: int = PREVIEW_SIDE) -> np.ndarray:
    """A 2D float32 preview no larger than ``side`` pixels (the middle plane, strided)."""
    img = np.asarray(image, np.float32)
    while img.ndim > 2:
        img = img[img.shape[0] // 2]
    step = max(1, int(np.ceil(max(img.shape) / side)))
    return np.ascontiguousarray(img[::step, ::step])


def _held(url: str, status: Status) -> LeaseHeld:
    age = status.heartbeat_age()
    left = max(status.lease_seconds - age, 0)
    return LeaseHeld(
        f"{url}: held by worker {status.worker} on {status.host} (heartbeat {age:.0f} s ago; "
        f"the lease runs out in {left:.0f} s): one worker at a time"
    )


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=1) + "\n").encode()


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


__all__ = [
    "FINAL",
    "SCHEMA",
    "STATES",
    "JobFolder",
    "JobFolderError",
    "JobInfo",
    "LeaseHeld",
    "Status",
    "jobs_url",
    "list_jobs",
    "new_job_id",
    "versions",
]
