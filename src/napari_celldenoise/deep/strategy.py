"""Where training computes: a TPU, the GPUs or the CPU, as a ``tf.distribute`` strategy.

:func:`pick` finds a TPU (``TPUClusterResolver(tpu="local")``: a TPU VM or Colab's TPU runtime,
then ``experimental_connect_to_cluster``, ``initialize_tpu_system``, ``TPUStrategy``), else the
GPUs (``MirroredStrategy``), else the CPU (TensorFlow's default strategy). ``CELLDENOISE_DEVICES``
forces one: ``tpu``, ``gpu``, ``cpu``, ``cpu:N`` (``MirroredStrategy`` over N logical CPU
devices: the distributed code paths) or ``xla`` (the CPU with ``jit_compile=True``, which
rejects what a TPU would: dynamic shapes, ops without an XLA kernel).

The trainers build and compile their models inside :func:`scope` and read :func:`jit_compile`;
:func:`distribute_batches` turns a batch generator into a dataset of static shapes under a
strategy. Outside :func:`using` nothing changes: local training is as before.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    """A chosen strategy and how a person reads it (``"TPU (8 cores)"``)."""

    strategy: Any
    kind: str  # "tpu", "gpu" or "cpu"
    description: str
    replicas: int = 1
    jit: bool = False


_CURRENT: list[Placement] = []


def _tpu_present() -> bool:
    """A TPU VM shows /dev/accel* (or vfio); Colab sets COLAB_TPU_ADDR; libtpu ships with it."""
    if os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_NAME"):
        return True
    if any(os.path.exists(f"/dev/accel{i}") for i in range(8)):
        return True
    return importlib.util.find_spec("libtpu") is not None


def _tpu() -> Placement:
    from ._tf import import_tensorflow

    tf = import_tensorflow()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="local")
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    strategy = tf.distribute.TPUStrategy(resolver)
    n = strategy.num_replicas_in_sync
    return Placement(strategy, "tpu", f"TPU ({n} cores)", n, jit=True)


def _gpus() -> Placement | None:
    from ._tf import device_description, gpus, import_tensorflow

    found = gpus()
    if not found:
        return None
    tf = import_tensorflow()
    strategy = tf.distribute.MirroredStrategy()
    n = strategy.num_replicas_in_sync
    text = device_description() if n == 1 else f"{n} GPUs ({device_description()[5:-1]})"
    return Placement(strategy, "gpu", text, n)


def _cpus(n: int) -> Placement:
    from ._tf import import_tensorflow

    tf = import_tensorflow()
    cpu = tf.config.list_physical_devices("CPU")[0]
    configured = tf.config.get_logical_device_configuration(cpu) or []
    if len(configured) < n:  # only before TensorFlow's first computation
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * n
            )
        except RuntimeError as exc:
            raise RuntimeError(
                f"cpu:{n} must be chosen before TensorFlow computes: {exc}"
            ) from None
    devices = [f"/cpu:{i}" for i in range(n)]
    strategy = tf.distribute.MirroredStrategy(devices)
    return Placement(strategy, "cpu", f"CPU, {n} logical devices mirrored", n)


def _xla() -> Placement:
    """The CPU with every training step compiled by XLA, as a TPU compiles it.

    (XLA per replica under ``MirroredStrategy`` over logical CPU devices fails in TensorFlow
    2.21: XLA places every replica's step on CPU:0 and cannot reach the other replica's
    variables, "tfvariable_on_a_different_device". So distribution and XLA are checked apart.)
    """
    from ._tf import device_description, import_tensorflow

    tf = import_tensorflow()
    return Placement(tf.distribute.get_strategy(), "cpu", f"{device_description()}, XLA", jit=True)


def _default() -> Placement:
    from ._tf import device_description, import_tensorflow

    tf = import_tensorflow()
    return Placement(tf.distribute.get_strategy(), "cpu", device_description(), 1)


def pick(choice: str | None = None) -> Placement:
    """The best place to train here, or ``choice`` (see the module docstring).

    Raises
    ------
    RuntimeError
        When ``choice`` asks for a TPU or a GPU that TensorFlow cannot use (with why).
    """
    choice = (choice or os.environ.get("CELLDENOISE_DEVICES") or "auto").lower()
    if choice.startswith("cpu:"):
        return _cpus(int(choice.split(":", 1)[1]))
    if choice == "xla":
        return _xla()
    if choice in ("auto", "tpu") and (_tpu_present() or choice == "tpu"):
        try:
            return _tpu()
        except Exception as exc:  # no TPU after all (or TensorFlow without TPU support)
            if choice == "tpu":
                raise RuntimeError(f"no usable TPU: {exc}") from None
            logger.warning("a TPU seemed present but TensorFlow cannot use it: %s", exc)
    if choice in ("auto", "gpu"):
        found = _gpus()
        if found is not None:
            return found
        if choice == "gpu":
            raise RuntimeError(why_no_gpu())
    return _default()


def why_no_gpu() -> str:
    """Why TensorFlow has no GPU here, and what to install."""
    from ._tf import unusable_gpu

    return unusable_gpu() or (
        "TensorFlow sees no GPU on this machine (no NVIDIA driver: nvidia-smi is missing)"
    )


@contextlib.contextmanager
def using(placement: Placement) -> Iterator[Placement]:
    """Train under ``placement`` inside the block (the trainers read it)."""
    _CURRENT.append(placement)
    try:
        yield placement
    finally:
        _CURRENT.pop()


def current() -> Placement | None:
    return _CURRENT[-1] if _CURRENT else None


def scope() -> contextlib.AbstractContextManager:
    """The strategy's scope for building and compiling a model (nothing outside :func:`using`)."""
    p = current()
    return p.strategy.scope() if p is not None else contextlib.nullcontext()


def jit_compile() -> bool:
    """Whether models are compiled with XLA (a TPU, or the mirrored-CPU check)."""
    p = current()
    return bool(p and p.jit)


def enable_jit(keras_model: Any) -> None:
    """Turn XLA on for an already compiled model when the placement asks for it."""
    if jit_compile():
        keras_model.jit_compile = True


def distribute_batches(batches: Iterator[Any], validation: Any) -> tuple[Any, Any]:
    """Under a strategy, ``(train, validation)`` as datasets of static shapes; else unchanged.

    XLA on a TPU compiles one program per shape: the training batches' shapes are taken from
    the first batch and fixed, the validation set is batched with ``drop_remainder``, in a
    multiple of the replicas.
    """
    p = current()
    if p is None or (p.replicas == 1 and not p.jit):
        return batches, validation
    from ._tf import import_tensorflow

    tf = import_tensorflow()
    first = next(batches)
    batch = len(first[0])

    def again() -> Iterator[Any]:
        yield first
        yield from batches

    signature = tuple(tf.TensorSpec(np.shape(a), tf.float32) for a in first)
    train = tf.data.Dataset.from_generator(again, output_signature=signature)
    vx, vy = validation
    size = max(p.replicas, (min(len(vx), batch) // p.replicas) * p.replicas)
    if len(vx) < size:  # fewer validation patches than replicas: repeat them
        reps = int(np.ceil(size / len(vx)))
        vx, vy = np.concatenate([vx] * reps)[:size], np.concatenate([vy] * reps)[:size]
    val = tf.data.Dataset.from_tensor_slices((vx.astype(np.float32), vy.astype(np.float32)))
    return train, val.batch(size, drop_remainder=True)


__all__ = [
    "Placement",
    "current",
    "distribute_batches",
    "enable_jit",
    "jit_compile",
    "pick",
    "scope",
    "using",
    "why_no_gpu",
]
