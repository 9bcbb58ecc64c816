"""The deep denoising methods: name -> :class:`~.method.DeepMethod`.

Used by :mod:`.api` (trainer, predictor, receptive field), :mod:`.export` (export support),
the command line (``celldenoise train --method``) and the "Deep denoise" dock (its method list
and option groups), so that all of them agree, as :mod:`..classical.registry` is for filters.

Adding a method is one module under ``deep/methods/`` (nothing else changes):

1. a config: ``class MyConfig(TrainConfig)`` with ``method: Literal["my-method"] =
   "my-method"`` and the method's own settings and checks; defining it registers it in the
   config union (model folders and job specs then load it);
2. ``METHOD = DeepMethod(name="my-method", config=MyConfig, train=..., predictor=...,
   receptive_radius=..., ...)``: the trainer yields :mod:`~napari_celldenoise.jobs` events
   (``Epoch.metrics`` for several losses, named in ``losses`` for the plot) and returns
   ``(info, stopped)``; images it needs besides the noisy one are named in ``extra_inputs``
   and reach the trainer as ``extra``; ``export`` is None unless the model zoo can describe it.

Heavy imports (TensorFlow) stay inside the trainer and predictor functions.
"""

from __future__ import annotations

import importlib
import pkgutil

from . import methods as _methods
from .config import TrainConfig
from .method import DeepMethod


def _discover() -> dict[str, DeepMethod]:
    found = []
    for info in pkgutil.iter_modules(_methods.__path__):
        module = importlib.import_module(f"{_methods.__name__}.{info.name}")
        method = getattr(module, "METHOD", None)
        if isinstance(method, DeepMethod):
            found.append(method)
    return {m.name: m for m in sorted(found, key=lambda m: (m.order, m.name))}


METHODS: dict[str, DeepMethod] = _discover()
NAMES: tuple[str, ...] = tuple(METHODS)


def get_method(name: str) -> DeepMethod:
    """The method registered as ``name`` (ValueError listing the known ones)."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}: one of {', '.join(NAMES)}") from None


def method_of(config: TrainConfig) -> DeepMethod:
    """The method that ``config`` trains."""
    return get_method(config.method)


def with_dock_option(option: str) -> tuple[str, ...]:
    """Names of the methods whose dock shows ``option`` (``"mask"``, ``"tta"``)."""
    return tuple(name for name, m in METHODS.items() if option in m.dock)


__all__ = ["METHODS", "NAMES", "DeepMethod", "get_method", "method_of", "with_dock_option"]
