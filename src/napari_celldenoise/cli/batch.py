"""``celldenoise batch RECIPE INPUTS... -o OUTDIR``: a recipe on many files with dask."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch",
        help="run a recipe on many files (dask.distributed: local workers or a cluster)",
        description="Run RECIPE on every image named by INPUTS (files, globs, folders, gs:// "
        "prefixes), one task per file, writing the outputs under OUTDIR with the input tree's "
        "layout, a manifest (manifest.csv, manifest.jsonl), a summary per file (summary.csv) "
        "and, for spot recipes, all spots in one table (spots.csv).",
    )
    p.add_argument("recipe", metavar="RECIPE", help="recipe YAML (celldenoise recipe from ...)")
    p.add_argument("inputs", metavar="INPUTS", nargs="+", help="files, globs, folders, gs://...")
    p.add_argument("-o", "--outdir", metavar="OUTDIR", required=True, help="output folder or URL")
    p.add_argument(
        "--scheduler", metavar="ADDRESS", help="a running dask scheduler (default: local workers)"
    )
    p.add_argument("--workers", type=int, metavar="N", help="local worker processes")
    p.add_argument("--threads-per-worker", type=int, default=1, metavar="K")
    p.add_argument("--memory-limit", metavar="M", help="per local worker, e.g. 2GB")
    p.add_argument(
        "--resume", action="store_true", help="skip files done before with the same recipe"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..batch.recipe import load_recipe
    from ..batch.run import ClusterOptions, run_batch
    from ..jobs import Log
    from ..jobs import run as run_job
    from .errors import CliError
    from .progress import StderrProgress, StopOnInterrupt

    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers: {args.workers} is not a positive number")
    if args.threads_per_worker < 1:
        raise CliError(f"--threads-per-worker: {args.threads_per_worker} is not positive")
    if args.scheduler and (args.workers or args.memory_limit):
        raise CliError(
            "--workers and --memory-limit size local workers: drop them with --scheduler"
        )
    recipe = load_recipe(args.recipe)
    options = ClusterOptions(
        scheduler=args.scheduler,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        memory_limit=args.memory_limit,
    )
    progress = StderrProgress(quiet=args.quiet)

    def show(event) -> None:
        if isinstance(event, Log) and event.message.startswith("dask dashboard"):
            print(event.message, file=sys.stderr)  # even with --quiet: where to watch
            return
        progress(event)

    with StopOnInterrupt() as stop:
        jobs = run_batch(
            recipe, args.inputs, args.outdir, options=options, resume=args.resume, should_stop=stop
        )
        result = run_job(jobs, on_event=show)
    print(
        f"{result.done} done, {result.failed} failed, {result.skipped} skipped, "
        f"{result.cancelled} cancelled in {result.seconds:.1f} s -> {result.manifest}"
    )
    if stop.requested:
        return 130
    return 1 if result.failed else 0
