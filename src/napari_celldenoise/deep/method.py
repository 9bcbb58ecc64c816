"""What a deep denoising method gives the rest of the package: :class:`DeepMethod`.

One instance per method, defined in its module under ``deep/methods/`` and found by
:mod:`.registry`. Everything here is light: the trainer and predictor import TensorFlow only
when they are called.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import PredictConfig, TrainConfig

if TYPE_CHECKING:
    from ..jobs import Event
    from .model import ModelFolder, ModelInfo

Trainer = Callable[..., "Iterator[Event]"]
"""``train(patches, config, folder, info, *, resume, should_stop, extra)``: a generator of
events that returns ``(info, stopped)``; ``extra`` holds the method's
:attr:`DeepMethod.extra_inputs` by name, as given to :func:`.api.train` (same axes as the noisy
image)."""

PredictorFactory = Callable[..., "Iterator[Event]"]
"""``predictor(folder, info, config, samples, *, should_stop)``: a generator of events (test-time
adaptation on ``samples``, ``S,[Z,]Y,X``) that returns a callable ``window -> denoised window``
in the image's units."""


@dataclass(frozen=True)
class ExportSupport:
    """How a method's model folder becomes a bioimage.io package (:mod:`.export`).

    ``load(folder, info)`` returns ``(keras_model, predictor)``: the network to save as a
    SavedModel (input and output in normalised units) and the predictor whose output on the
    test input is the package's test output. ``title`` names the method in the package's
    description, ``short`` in messages. ``refuse(info)`` says why a folder of this method
    cannot be exported (None: it can). ``readme(info)`` gives the README's training lines.
    """

    title: str
    short: str
    citation: str
    doi: str
    tags: tuple[str, ...]
    load: Callable[[ModelFolder, ModelInfo], tuple[Any, Callable[..., Any]]]
    refuse: Callable[[ModelInfo], str | None] = lambda info: None
    readme: Callable[[ModelInfo], list[str]] = lambda info: []


@dataclass(frozen=True)
class DeepMethod:
    """One self-supervised (or, later, paired/unpaired) denoising method.

    Attributes
    ----------
    name, title, summary
        Registry key (CLI ``--method``, the config's ``method``), label in the dock, one line.
    config
        Its :class:`~.config.TrainConfig` subclass (``method: Literal[name]``).
    train, predictor
        See :data:`Trainer` and :data:`PredictorFactory`.
    receptive_radius
        ``depth -> pixels`` of context a tile needs (a model folder's ``overlap``).
    finish
        ``(folder, info) -> step`` or None: ``step(input_plane, output_plane)`` returns the
        final plane after the tiles are stitched (a whole-plane step, so tiled prediction
        still equals untiled); the factory may return None (nothing to do for that model).
    export
        :class:`ExportSupport`, or None when the model zoo cannot describe its models.
    three_d
        Whether it has a 3D network (else Z slices are trained as separate images).
    dock
        Option groups the Deep dock shows for it: ``"mask"`` (the structN2V mask editor),
        ``"tta"`` (test-time adaptation at prediction), ``"gan"`` (the folded group of its
        own settings, made from its config's fields: :mod:`.._qt.deep_gan`).
    extra_inputs
        Names of images it trains on besides the noisy one (a CycleGAN's target domain):
        given to :func:`.api.train` as ``extra``.
    side_files
        JSON files its model folders hold beside the weights (n2v's network description),
        parsed when a folder is opened so that a damaged one is reported before any work.
    optional_inputs
        Names of images it may train on besides the noisy one (a CycleGAN's clean reference:
        without it the targets are drawn from the measured motif).
    losses
        Names in :attr:`~napari_celldenoise.jobs.Epoch.metrics` that the loss plot draws
        (``loss`` and ``val_loss`` are the epoch's own).
    order
        Position in the CLI's and the dock's lists.
    """

    name: str
    title: str
    summary: str
    config: type[TrainConfig]
    train: Trainer
    predictor: PredictorFactory
    receptive_radius: Callable[[int], int]
    finish: Callable[[ModelFolder, ModelInfo], Callable[..., Any] | None] | None = None
    export: ExportSupport | None = None
    three_d: bool = True
    dock: frozenset[str] = frozenset()
    extra_inputs: tuple[str, ...] = ()
    side_files: tuple[str, ...] = ()
    optional_inputs: tuple[str, ...] = ()
    losses: tuple[str, ...] = ("loss", "val_loss")
    order: int = 100

    def check_extra(self, extra: Mapping[str, Any] | None) -> dict[str, Any]:
        """The method's extra inputs from ``extra``: each required one, optional ones, no others."""
        extra = {n: v for n, v in dict(extra or {}).items() if v is not None}
        missing = [n for n in self.extra_inputs if n not in extra]
        unknown = [n for n in extra if n not in (*self.extra_inputs, *self.optional_inputs)]
        if missing or unknown:
            from .data import DeepInputError

            what = f"needs {', '.join(missing)}" if missing else f"takes no {', '.join(unknown)}"
            raise DeepInputError(f"{self.name} {what} besides the noisy image")
        return extra


__all__ = ["DeepMethod", "ExportSupport", "PredictConfig", "PredictorFactory", "Trainer"]
