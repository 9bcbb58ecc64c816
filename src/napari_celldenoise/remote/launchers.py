"""Start a worker for a job folder: on this computer, or on a Cloud TPU VM through gcloud.

Every launcher first says what it will run (:meth:`plan`: the command lines, printed by
``--dry-run``), then :meth:`launch` runs them. The TPU VM launcher builds the Cloud SDK's
command lines (``gcloud compute tpus tpu-vm create NAME --zone=Z --accelerator-type=T
--version=RUNTIME [--spot] --metadata-from-file=startup-script=FILE --scopes=...
--labels=...``, ``describe``, ``delete NAME --zone=Z --quiet``); the startup script installs
this package's ``worker`` extra at this version and runs ``celldenoise worker JOB_URL``. Its
:func:`watch` loop is the watchdog: a node that is preempted (a spot TPU cannot be restarted,
only deleted and created again) is recreated and the job resumes from its checkpoint; the
node is deleted once the job is done, stopped or failed, so no TPU is left billing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

from .. import __version__
from .job_folder import FINAL, JobFolder

logger = logging.getLogger(__name__)

SCOPES = "https://www.googleapis.com/auth/cloud-platform"
LIBTPU_INDEX = "https://storage.googleapis.com/libtpu-releases/index.html"
DEFAULT_ZONE = "us-central1-a"
DEFAULT_ACCELERATOR = "v5litepod-1"
RUNTIMES = {"v5litepod": "v2-alpha-tpuv5-lite", "v6e": "v2-alpha-tpuv6e", "v5p": "v2-alpha-tpuv5"}
"""TPU VM base images per generation (TensorFlow is installed by the startup script)."""
DEFAULT_RUNTIME = "tpu-ubuntu2204-base"


class LaunchError(RuntimeError):
    """A launcher cannot start (gcloud missing, not logged in, a refused command): one line."""


def worker_command(job_url: str) -> list[str]:
    """This Python running ``celldenoise worker JOB_URL``."""
    return [sys.executable, "-m", "napari_celldenoise.cli", "worker", job_url]


def install_spec() -> str:
    """What the remote machine installs: this version's worker extra (or the override
    ``CELLDENOISE_INSTALL``, e.g. a wheel's URL, for a development version)."""
    return os.environ.get("CELLDENOISE_INSTALL") or f"napari-celldenoise[worker]=={__version__}"


# ------------------------------------------------------------------------------ local
@dataclass
class LocalLauncher:
    """The worker as a process on this computer (tests; a lab GPU machine seeing the bucket)."""

    name = "local"

    def plan(self, job_url: str) -> list[list[str]]:
        return [worker_command(job_url)]

    def launch(self, job_url: str, *, log: str | os.PathLike | None = None) -> subprocess.Popen:
        """Start the worker detached (it outlives this command); its output goes to ``log``."""
        return detached(worker_command(job_url), log)


def detached(cmd: list[str], log: str | os.PathLike | None = None) -> subprocess.Popen:
    """Start ``cmd`` in its own session (it outlives this command), output to ``log``."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        if log:
            out.close()


# ----------------------------------------------------------------------------- TPU VM
def node_name(job_url: str) -> str:
    """A TPU node name for the job: lower case letters, digits and dashes, at most 63."""
    job_id = job_url.rstrip("/").rsplit("/", 1)[-1].lower()
    name = re.sub(r"[^a-z0-9-]+", "-", f"celldenoise-{job_id}").strip("-")
    return name[:63].rstrip("-")


def runtime_for(accelerator: str) -> str:
    generation = accelerator.split("-", 1)[0]
    return RUNTIMES.get(generation, DEFAULT_RUNTIME)


def startup_script(job_url: str) -> str:
    """The TPU VM's startup script: install the worker extra, then run the worker.

    The worker section is delimited so that it can also run on its own (the tests run it as a
    local process); ``CELLDENOISE`` names the command (``celldenoise`` on the VM).
    """
    spec = shlex.quote(install_spec())
    url = shlex.quote(job_url)
    return f"""#!/bin/bash
# napari-celldenoise {__version__}: TPU VM worker for {job_url}
set -euo pipefail
# --- install ---
if [ ! -x /opt/celldenoise/bin/celldenoise ]; then
  python3 -m venv /opt/celldenoise
  /opt/celldenoise/bin/pip install --quiet {spec} -f {LIBTPU_INDEX}
fi
export PATH=/opt/celldenoise/bin:$PATH
# --- worker ---
export TF_USE_LEGACY_KERAS=1
LOG="${{CELLDENOISE_LOG:-/var/log/celldenoise-worker.log}}"
"${{CELLDENOISE:-celldenoise}}" worker {url} >> "$LOG" 2>&1
# --- end ---
"""


@dataclass
class TpuVmLauncher:
    """A Cloud TPU VM per job, created with gcloud and watched until the job ends."""

    zone: str = DEFAULT_ZONE
    accelerator: str = DEFAULT_ACCELERATOR
    runtime: str | None = None
    spot: bool = False
    project: str | None = None
    gcloud: str = "gcloud"

    name = "tpu-vm"

    @classmethod
    def from_job(cls, job: JobFolder) -> TpuVmLauncher:
        launch = job.read_job().launch
        return cls(
            zone=launch.get("zone", DEFAULT_ZONE),
            accelerator=launch.get("accelerator", DEFAULT_ACCELERATOR),
            runtime=launch.get("runtime"),
            spot=bool(launch.get("spot", False)),
            project=launch.get("project"),
        )

    def settings(self) -> dict[str, object]:
        """What ``job.json`` records of the launch (no credential: none is needed)."""
        return {
            "zone": self.zone,
            "accelerator": self.accelerator,
            "runtime": self.runtime or runtime_for(self.accelerator),
            "spot": self.spot,
            "project": self.project,
        }

    def _base(self, *verb: str) -> list[str]:
        cmd = [self.gcloud, "compute", "tpus", "tpu-vm", *verb]
        return cmd

    def _tail(self) -> list[str]:
        tail = [f"--zone={self.zone}"]
        return tail + ([f"--project={self.project}"] if self.project else [])

    def create_command(self, job_url: str, script: str) -> list[str]:
        cmd = self._base("create", node_name(job_url), *self._tail())
        cmd += [
            f"--accelerator-type={self.accelerator}",
            f"--version={self.runtime or runtime_for(self.accelerator)}",
        ]
        if self.spot:
            cmd.append("--spot")
        label = node_name(job_url).removeprefix("celldenoise-")
        cmd += [
            f"--metadata-from-file=startup-script={script}",
            f"--scopes={SCOPES}",
            f"--labels=app=celldenoise,celldenoise-job={label}",
        ]
        return cmd

    def describe_command(self, job_url: str) -> list[str]:
        return self._base("describe", node_name(job_url), *self._tail(), "--format=json")

    def delete_command(self, job_url: str) -> list[str]:
        return self._base("delete", node_name(job_url), *self._tail(), "--quiet")

    def list_command(self) -> list[str]:
        return self._base("list", *self._tail(), "--format=json")

    def plan(self, job_url: str, script: str = "STARTUP_SCRIPT") -> list[list[str]]:
        """Every command a launch runs: create, then the watchdog's describe and delete."""
        return [
            self.create_command(job_url, script),
            self.describe_command(job_url),
            self.delete_command(job_url),
        ]

    # ------------------------------------------------------------------- running
    def run(self, cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
        logger.info("running %s", shlex.join(cmd))
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        except FileNotFoundError:
            raise LaunchError(
                f"{self.gcloud}: not found; install the Google Cloud SDK "
                "(https://cloud.google.com/sdk/docs/install) and run `gcloud auth login`"
            ) from None
        if check and done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise LaunchError(
                f"{shlex.join(cmd[:5])} failed: {lines[-1] if lines else done.returncode}"
            )
        return done

    def preflight(self) -> None:
        """gcloud is installed and logged in (before anything is uploaded)."""
        if shutil.which(self.gcloud) is None:
            raise LaunchError(
                f"{self.gcloud}: not found; install the Google Cloud SDK "
                "(https://cloud.google.com/sdk/docs/install) and run `gcloud auth login`"
            )
        account = self.run([self.gcloud, "config", "get-value", "account"], check=False)
        if account.returncode != 0 or not account.stdout.strip():
            raise LaunchError("gcloud is not logged in: run `gcloud auth login`")

    def create(self, job_url: str) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
            f.write(startup_script(job_url))
            script = f.name
        try:
            self.run(self.create_command(job_url, script))
        finally:
            os.unlink(script)

    def state(self, job_url: str) -> str:
        """The node's state (``READY``, ``CREATING``, ``PREEMPTED``...), ``NOT_FOUND``."""
        done = self.run(self.describe_command(job_url), check=False)
        if done.returncode != 0:
            if "NOT_FOUND" in done.stderr or "not found" in done.stderr.lower():
                return "NOT_FOUND"
            raise LaunchError(f"describe failed: {done.stderr.strip().splitlines()[-1:]}")
        return str(json.loads(done.stdout or "{}").get("state", "UNKNOWN"))

    def delete(self, job_url: str) -> None:
        self.run(self.delete_command(job_url), check=False)

    def launch(self, job_url: str, *, log: str | os.PathLike | None = None) -> subprocess.Popen:
        """Create the node, then start the watchdog here (detached) to the job's end."""
        self.create(job_url)
        cmd = [sys.executable, "-m", "napari_celldenoise.cli", "remote", "watch", job_url]
        return detached(cmd, log)


def watch(
    job_url: str,
    launcher: TpuVmLauncher,
    *,
    interval: float = 60.0,
    max_recreations: int = 10,
    say: Callable[[str], None] = print,
) -> str:
    """The watchdog: recreate a preempted node, delete the node when the job ends.

    Returns the job's final state. A node that disappears or is preempted while the job is
    not finished is deleted and created again (the worker resumes from the last checkpoint);
    after ``max_recreations`` the job is marked failed and the node deleted.
    """
    from dataclasses import replace

    job = JobFolder(job_url)
    recreated = 0
    while True:
        status = job.read_status()
        if status.state in FINAL:
            launcher.delete(job_url)
            say(f"job {status.state}: TPU node {node_name(job_url)} deleted")
            return status.state
        state = launcher.state(job_url)
        if state in ("PREEMPTED", "TERMINATED", "NOT_FOUND", "STOPPED"):
            if recreated >= max_recreations:
                job.write_status(
                    replace(status, state="failed", message=f"preempted {recreated} times")
                )
                launcher.delete(job_url)
                return "failed"
            recreated += 1
            say(f"TPU node {state.lower()}: recreating it ({recreated}); the job resumes")
            job.write_status(
                replace(status, state="preempted", message=f"node {state}, recreating")
            )
            if state != "NOT_FOUND":
                launcher.delete(job_url)
            launcher.create(job_url)
        time.sleep(interval)


def launcher_named(name: str, **options: object) -> LocalLauncher | TpuVmLauncher:
    if name == "local":
        return LocalLauncher()
    if name == "tpu-vm":
        return TpuVmLauncher(**{k: v for k, v in options.items() if v is not None})
    raise ValueError(f"unknown launcher {name!r}")


__all__ = [
    "LaunchError",
    "LocalLauncher",
    "TpuVmLauncher",
    "install_spec",
    "launcher_named",
    "node_name",
    "startup_script",
    "watch",
    "worker_command",
]
