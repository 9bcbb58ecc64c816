"""Long-running work as generators of typed events (pure: no Qt, no napari, no TensorFlow).

Every long computation in napari-celldenoise is a generator that yields :mod:`events <.events>`
and ends with a :class:`~.events.Done` carrying its result. Scripts and the CLI drain it with
:func:`run`; the napari docks wrap the same generator in a thread worker (``_qt/jobs.py``);
work that must not share the viewer's process (TensorFlow) runs through :func:`run_in_process`.
Events and results travel between machines as JSON through :mod:`.wire`.
"""

from . import wire
from .errors import Cancelled, ChildProcessFailed, JobError
from .events import (
    Calibration,
    Device,
    Done,
    Epoch,
    Event,
    Log,
    Preview,
    Progress,
    ShouldStop,
    Timing,
    never_stop,
)
from .process import ProcessJob, run_in_process
from .run import run

__all__ = [
    "Calibration",
    "Cancelled",
    "ChildProcessFailed",
    "Device",
    "Done",
    "Epoch",
    "Event",
    "JobError",
    "Log",
    "Preview",
    "ProcessJob",
    "Progress",
    "ShouldStop",
    "Timing",
    "never_stop",
    "run",
    "run_in_process",
    "wire",
]
