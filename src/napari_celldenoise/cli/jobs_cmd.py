"""``celldenoise jobs list|show|logs|stop|pull|delete``: remote jobs in a bucket.

``jobs show JOB --follow`` streams the job's events as a local training shows its progress,
until the job ends; ``jobs pull JOB -o DIR`` downloads the finished model folder, ready for
``celldenoise predict DIR ...``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .errors import CliError


def register(sub: argparse._SubParsersAction) -> None:
    j = sub.add_parser("jobs", help="list, follow, stop and pull remote training jobs")
    jsub = j.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    ls = jsub.add_parser("list", help="the jobs in a bucket, newest first, with their status")
    ls.add_argument("bucket", metavar="BUCKET", help="gs://B/PREFIX as given to remote submit")
    ls.set_defaults(func=run_list)
    show = jsub.add_parser("show", help="a job's status and events")
    show.add_argument("job", metavar="JOB")
    show.add_argument("--json", action="store_true", help="status and events as JSON lines")
    show.add_argument("--follow", action="store_true", help="stream the events to the end")
    show.add_argument("--interval", type=float, default=5.0, help="seconds between polls")
    show.set_defaults(func=run_show)
    for name, func, text in (
        ("logs", run_logs, "the worker's log of every attempt"),
        ("stop", run_stop, "ask the worker to stop (best and last weights are kept)"),
        ("delete", run_delete, "delete the job folder (and everything in it)"),
    ):
        p = jsub.add_parser(name, help=text)
        p.add_argument("job", metavar="JOB")
        p.set_defaults(func=func)
    pull = jsub.add_parser("pull", help="download the finished model folder")
    pull.add_argument("job", metavar="JOB")
    pull.add_argument("-o", "--output", required=True, metavar="DIR", help="new model folder")
    pull.set_defaults(func=run_pull)


def _guard(fn):
    """Job folder and bucket errors as one line (exit 2)."""
    from ..remote.job_folder import JobFolderError
    from ..remote.store import StoreError, describe_error

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (JobFolderError, StoreError) as exc:
            raise CliError(str(exc)) from None
        except (OSError, ImportError) as exc:
            where = getattr(args, "job", getattr(args, "bucket", ""))
            raise CliError(describe_error(exc, where)) from None

    return wrapped


@_guard
def run_list(args: argparse.Namespace) -> int:
    from ..remote.job_folder import list_jobs

    for url, status, info in list_jobs(args.bucket):
        if status is None or info is None:
            print(f"{url}\t(not a readable job)")
            continue
        method = info.spec.config.method
        epochs = f"{status.epochs_done}/{info.spec.config.epochs}"
        print(f"{url}\t{status.state}\t{method}\tepochs {epochs}\t{status.device or '-'}")
    return 0


def _status_line(status) -> str:
    age = f", heartbeat {status.heartbeat_age():.0f} s ago" if status.heartbeat else ""
    device = f" on {status.device}" if status.device else ""
    text = f"{status.state}{device}: epochs {status.epochs_done}/{status.epochs}"
    return f"{text}, attempt {status.attempt}{age}" + (
        f" ({status.message})" if status.message else ""
    )


@_guard
def run_show(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ..jobs import wire
    from ..remote.job_folder import FINAL, JobFolder
    from .progress import StderrProgress

    job = JobFolder(args.job)
    info = job.read_job()
    show = StderrProgress(stream=sys.stdout, interval=0)
    if args.follow and not args.json:  # as a local training shows its progress
        from ..remote.follow import RemoteJobFailed, follow

        print(f"{job.url}\n{_status_line(job.read_status())}")
        try:
            for event in follow(job.url, interval=args.interval):
                show(event)
                sys.stdout.flush()
        except RemoteJobFailed as exc:
            print(exc, file=sys.stderr)
            return 1
        print(_status_line(job.read_status()))
        return 0
    start = 0
    while True:
        status = job.read_status()
        if args.json and start == 0:
            print(json.dumps({"status": asdict(status), "job": info.spec.to_dict()}))
        elif start == 0:
            print(f"{job.url}\n{_status_line(status)}")
        for index, event in job.events(start, previews=False):
            start = index + 1
            if args.json:
                print(wire.dumps(event))
            else:
                show(event)
        sys.stdout.flush()
        if not args.follow or status.state in FINAL:
            return 0 if status.state != "failed" else 1
        time.sleep(args.interval)


@_guard
def run_logs(args: argparse.Namespace) -> int:
    from ..remote.job_folder import JobFolder

    job = JobFolder(args.job)
    job.read_job()
    print(job.logs() or "(no logs yet)")
    return 0


@_guard
def run_stop(args: argparse.Namespace) -> int:
    from ..remote.job_folder import JobFolder

    job = JobFolder(args.job)
    job.read_job()
    job.request_stop()
    print(f"{job.url}: stop requested (the worker stops within its epoch)")
    return 0


@_guard
def run_pull(args: argparse.Namespace) -> int:
    from ..remote.job_folder import JobFolder

    job = JobFolder(args.job)
    job.read_job()
    print(job.pull_model(args.output))
    return 0


@_guard
def run_delete(args: argparse.Namespace) -> int:
    from ..remote.job_folder import JobFolder

    job = JobFolder(args.job)
    status = job.read_status()
    if status.lease_alive():
        raise CliError(f"{job.url}: a worker is training it; `jobs stop` it first")
    job.delete()
    print(f"{job.url}: deleted")
    return 0
