"""``celldenoise worker JOB_URL`` and ``celldenoise remote submit|watch``: remote training.

``remote submit IN --method M --bucket gs://B/PREFIX --launcher {tpu-vm,colab,local}`` checks
the input and the training options as ``train`` does, checks the bucket (login, permission)
before anything is uploaded, writes the job folder, starts the launcher and prints the job URL.
``--dry-run`` prints every command it would run and changes nothing.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from .errors import CliError

TRAIN_ONLY = {"input", "output", "resume", "help", "target"}  # a reference stays here


def register(sub: argparse._SubParsersAction) -> None:
    w = sub.add_parser(
        "worker",
        help="train a job folder (gs://... or a folder): on a TPU VM, in Colab or here",
        description="Train the job in JOB_URL: picks a TPU, else the GPUs, else the CPU (says "
        "which), writes events, heartbeat and checkpoints into the job folder, honours its "
        "stop object and resumes from the last finished epoch when run again.",
    )
    w.add_argument("job", metavar="JOB_URL")
    w.add_argument(
        "--devices",
        default=None,
        help="auto (default), tpu, gpu, cpu, or cpu:N (N mirrored logical CPUs with XLA)",
    )
    w.add_argument("--heartbeat", type=float, default=10.0, help="seconds between heartbeats")
    w.add_argument(
        "--lease", type=float, default=60.0, help="seconds a silent worker keeps the job"
    )
    w.set_defaults(func=run_worker)

    r = sub.add_parser("remote", help="train on a Cloud TPU VM, in Colab or on a lab machine")
    rsub = r.add_subparsers(dest="remote_command", required=True, metavar="ACTION")
    s = rsub.add_parser(
        "submit",
        help="upload IN and its training spec as a job and start a worker",
        description="Upload IN into a new job folder under BUCKET/jobs/, start a worker with "
        "the launcher and print the job URL (follow it with `celldenoise jobs show URL "
        "--follow`).",
    )
    s.add_argument("input", metavar="IN", help="noisy TIFF/PNG stack")
    s.add_argument("--bucket", required=True, metavar="gs://B/PREFIX")
    s.add_argument("--launcher", required=True, choices=["tpu-vm", "colab", "local"])
    s.add_argument("--zone", default=None, help="TPU VM zone (default us-central1-a)")
    s.add_argument("--accelerator", default=None, help="TPU type (default v5litepod-1)")
    s.add_argument("--runtime", default=None, help="TPU VM software version (default by type)")
    s.add_argument("--project", default=None, help="Google Cloud project (default gcloud's)")
    s.add_argument("--spot", action="store_true", help="spot TPU: cheaper, can be preempted")
    s.add_argument("--dry-run", action="store_true", help="print every command, change nothing")
    s.add_argument("--notebook", metavar="PATH", help="colab: where to write the runner notebook")
    _add_train_options(s)
    s.set_defaults(func=run_submit)

    wd = rsub.add_parser("watch", help="the TPU VM watchdog of a job (submit starts it)")
    wd.add_argument("job", metavar="JOB_URL")
    wd.add_argument("--interval", type=float, default=60.0, help="seconds between checks")
    wd.set_defaults(func=run_watch)


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``celldenoise train`` (but IN, -o and --resume), as they are there."""
    from . import deep

    probe = argparse.ArgumentParser(add_help=False).add_subparsers()
    deep.register(probe)
    for action in probe.choices["train"]._actions:
        if action.dest in TRAIN_ONLY:
            continue
        parser._add_action(action)


def run_worker(args: argparse.Namespace) -> int:
    from ..remote.job_folder import JobFolderError
    from ..remote.store import StoreError
    from ..remote.worker import run_worker as work

    try:
        status = work(args.job, devices=args.devices, heartbeat=args.heartbeat, lease=args.lease)
    except (JobFolderError, StoreError) as exc:
        raise CliError(str(exc)) from None
    print(f"{args.job}: {status.state}{' (stopped)' if status.stopped else ''}")
    return 0


def _job_spec(args: argparse.Namespace, job_url: str):
    from ..deep.data import DeepInputError
    from ..jobs.specs import train_spec
    from .deep import _read, _strip_singleton_channel, train_config

    image = _read(args.input, args.axes)
    data, axes = _strip_singleton_channel(image)
    args.resume, args.output = False, f"{job_url}/model"
    try:
        config = train_config(args, data, axes)
    except DeepInputError as exc:
        raise CliError(str(exc)) from None
    return image, train_spec(args.input, args.output, config, axes=args.axes)


def run_submit(args: argparse.Namespace) -> int:
    from ..remote.colab import write_notebook
    from ..remote.job_folder import JobFolder, jobs_url, new_job_id
    from ..remote.launchers import LaunchError, launcher_named
    from ..remote.pricing import cost_line
    from ..remote.store import Store, StoreError

    bucket = args.bucket.rstrip("/")
    if args.launcher != "local" and not bucket.startswith("gs://"):
        raise CliError(f"--bucket: a {args.launcher} worker reads gs:// buckets, not {bucket}")
    if args.notebook and args.launcher != "colab":
        raise CliError("--notebook is for --launcher colab")
    job_url = f"{jobs_url(bucket)}/{new_job_id(args.method)}"
    image, spec = _job_spec(args, job_url)
    launcher = None
    if args.launcher != "colab":
        launcher = launcher_named(
            args.launcher,
            zone=args.zone,
            accelerator=args.accelerator,
            runtime=args.runtime,
            spot=args.spot,
            project=args.project,
        )
    if launcher is not None and launcher.name == "tpu-vm":
        print(cost_line(launcher.accelerator, spot=launcher.spot), file=sys.stderr)
    if args.dry_run:
        print(f"would upload {args.input} to {job_url}/inputs/image.ome.tif", file=sys.stderr)
        print(f"would write {job_url}/job.json and status.json", file=sys.stderr)
        commands = launcher.plan(job_url) if launcher is not None else []
        for cmd in commands:
            print(shlex.join(cmd))
        if args.launcher == "colab":
            print(f"would write the runner notebook {args.notebook or 'celldenoise-colab.ipynb'}")
        print(job_url)
        return 0
    try:
        Store(bucket).check_writable()
        if launcher is not None and hasattr(launcher, "preflight"):
            launcher.preflight()
    except (StoreError, LaunchError) as exc:
        raise CliError(str(exc)) from None
    settings = launcher.settings() if hasattr(launcher, "settings") else {}
    try:
        job = JobFolder.create(job_url, spec, image=image, launcher=args.launcher, launch=settings)
    except (StoreError, ValueError) as exc:
        raise CliError(str(exc)) from None
    if args.launcher == "colab":
        path = write_notebook(job.url, args.notebook or "celldenoise-colab.ipynb")
        print(
            f"open {path} in Colab (File > Upload notebook), choose a TPU or GPU runtime and "
            "run all cells",
            file=sys.stderr,
        )
    else:
        import tempfile
        from pathlib import Path

        log = Path(tempfile.gettempdir()) / f"celldenoise-{job.url.rsplit('/', 1)[-1]}.log"
        what = "worker" if args.launcher == "local" else "watchdog"
        print(f"the {what} runs here in the background; its output: {log}", file=sys.stderr)
        try:
            launcher.launch(job.url, log=log)
        except LaunchError as exc:
            raise CliError(f"{exc} (the job folder {job.url} stays, queued)") from None
    print(job.url)
    return 0


def run_watch(args: argparse.Namespace) -> int:
    from ..remote.job_folder import JobFolder, JobFolderError
    from ..remote.launchers import LaunchError, TpuVmLauncher, watch

    try:
        launcher = TpuVmLauncher.from_job(JobFolder(args.job))
        state = watch(args.job, launcher, interval=args.interval)
    except (JobFolderError, LaunchError) as exc:
        raise CliError(str(exc)) from None
    print(f"{args.job}: {state}")
    return 0
