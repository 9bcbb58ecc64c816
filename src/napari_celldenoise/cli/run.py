"""``celldenoise run SPEC``: run a saved job spec (YAML or JSON), e.g. one a dock recorded.

The spec holds its input, settings and output, so the run gives the same result as the job it
describes; ``--output`` writes elsewhere and ``--input`` reads another image with the same
settings.
"""

from __future__ import annotations

import argparse

from .errors import CliError
from .progress import StderrProgress, StopOnInterrupt


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a saved job spec (read, filter, add-noise, train, predict, spots, export)",
        description="Run the job described by SPEC (a YAML or JSON job spec, as saved by "
        "napari-celldenoise or found in an output file's provenance).",
    )
    p.add_argument("spec", metavar="SPEC", help="job spec file (.yaml, .yml or .json)")
    p.add_argument("-i", "--input", metavar="IN", help="read this image instead of the spec's")
    p.add_argument("-o", "--output", metavar="OUT", help="write here instead of the spec's output")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..jobs import run as run_job
    from ..jobs.run_spec import run_spec
    from ..jobs.specs import SpecError, load_spec

    spec = load_spec(args.spec)
    spec = retarget(spec, input=args.input, output=args.output, overwrite=args.overwrite)
    from ..deep.data import DeepInputError
    from ..deep.model import ModelFolderError

    try:
        with StopOnInterrupt() as stop:
            run_job(run_spec(spec, should_stop=stop), on_event=StderrProgress(quiet=args.quiet))
    except (DeepInputError, ModelFolderError) as exc:
        raise CliError(str(exc)) from None
    except SpecError as exc:
        raise CliError(exc.for_cli()) from None
    if stop.requested:
        return 130
    if getattr(spec, "output", None):
        print(spec.output)
    return 0


def retarget(spec, *, input: str | None = None, output: str | None = None, overwrite=False):
    """``spec`` reading ``input`` and writing ``output`` where given (the rest unchanged)."""
    update: dict = {}
    if input is not None:
        if not hasattr(spec, "input"):
            raise CliError(f"--input: a {spec.kind} job reads no image")
        update["input"] = spec.input.model_copy(update={"path": input})
    if output is not None:
        update["output"] = output
    if overwrite and "overwrite" in type(spec).model_fields:
        update["overwrite"] = True
    return spec.model_copy(update=update) if update else spec
