"""Where a job runs: in the calling process or in a spawned child. Decided here only.

TensorFlow and a napari viewer segfault in one process on software OpenGL, and a spawned child
is also what lets Stop end a training for real and frees its memory. So every kind of job that
imports TensorFlow names its placement in :data:`PLACEMENT`, and every caller (the docks,
:func:`~.run_spec.run_spec`, the sub-jobs of export and of centroid training) runs it through
:func:`place`, which asks :func:`runs_in_child`:

``"child"``
    always in a fresh child (the bioimage.io check needs an interpreter where the legacy-Keras
    switch was never set; the centroid network keeps TensorFlow out of its caller).
``"away-from-viewer"``
    in a child when this process has imported napari (a viewer may be open); otherwise here,
    so that the command line and scripts keep their errors' types and start at once.

Nothing is sent further away from inside a job child: the child is already isolated.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any, Literal

from .events import Event, ShouldStop, never_stop

Placement = Literal["here", "child", "away-from-viewer"]

PLACEMENT: dict[str, Placement] = {
    "train": "away-from-viewer",
    "predict": "away-from-viewer",
    "centroid-mlp": "child",
    "bioimageio-export": "child",
    "bioimageio-check": "child",
}
"""Job kind -> where it runs; a kind not listed runs here (numpy/scipy work)."""

GRACE: dict[str, float] = {
    "train": 60.0,
    "predict": 30.0,
    "bioimageio-export": 30.0,
    "bioimageio-check": 30.0,
}
"""Seconds a stopped child gets to save and finish before it is killed (default 10)."""

EXTRA: dict[str, tuple[str, str]] = {
    "train": ("deep", "training a network"),
    "predict": ("deep", "denoising with a network"),
    "export": ("deep", "bioimage.io export"),
    "bioimageio-export": ("deep", "bioimage.io export"),
    "bioimageio-check": ("deep", "bioimage.io export"),
    "centroid-mlp": ("deep", "the centroid network (mlp)"),
}
"""Job kind -> the extra of the install it needs and what for (:mod:`...extras`), checked
before the job starts, here or in a child (and by the subcommands of the same names)."""


def require_extra(kind: str) -> None:
    """Raise :class:`~napari_celldenoise.extras.MissingExtra` if ``kind`` needs a missing extra."""
    if kind in EXTRA:
        from ..extras import require

        require(*EXTRA[kind])


def kinds_of(spec: Any) -> tuple[str, ...]:
    """The kinds a spec's job will run: its own, then those of the sub-jobs it starts."""
    kinds = [spec.kind]
    if spec.kind == "export":
        kinds += ["bioimageio-export", "bioimageio-check"]
    training = getattr(spec, "train_centroid", None)
    if training is not None and training.kind == "mlp":
        kinds.append("centroid-mlp")
    return tuple(kinds)


def viewer_possible() -> bool:
    """Whether a napari viewer may exist in this process (napari has been imported)."""
    return "napari" in sys.modules


def runs_in_child(kind: str) -> bool:
    """Whether a job of ``kind`` started from this process runs in a spawned child."""
    from .process import in_job_child

    where = PLACEMENT.get(kind, "here")
    if where == "here" or in_job_child():
        return False
    return where == "child" or viewer_possible()


def place(
    kind: str,
    target: Callable[..., Iterator[Event]],
    *args: Any,
    should_stop: ShouldStop = never_stop,
    **kwargs: Any,
) -> Iterator[Event]:
    """Run the job generator ``target(*args, should_stop=..., **kwargs)`` where ``kind`` runs.

    In a child, ``target`` must be a module-level function and its arguments picklable. A kind
    that needs an extra which is not installed fails at once with
    :class:`~napari_celldenoise.extras.MissingExtra`, before any work or child starts.
    """
    require_extra(kind)
    if runs_in_child(kind):
        from .process import run_in_process

        grace = GRACE.get(kind, 10.0)
        yield from run_in_process(target, *args, should_stop=should_stop, grace=grace, **kwargs)
    else:
        yield from target(*args, should_stop=should_stop, **kwargs)


__all__ = [
    "EXTRA",
    "GRACE",
    "PLACEMENT",
    "kinds_of",
    "place",
    "require_extra",
    "runs_in_child",
    "viewer_possible",
]
