"""The one place that knows how to import TensorFlow and n2v on this stack.

Facts (checked on these machines, see DESIGN.md):

- n2v 0.3.3 trains on TensorFlow >= 2.16 only with the legacy Keras 2 (``tf-keras``), which
  TensorFlow selects when ``TF_USE_LEGACY_KERAS=1`` is set *before* TensorFlow is first imported
  in the process.
- n2v calls ``numpy.product``, removed in NumPy 2: alias it to ``numpy.prod`` before importing n2v.
- TensorFlow must never be imported in the napari process (it segfaults beside a viewer on
  software OpenGL): every caller here runs in a child process started by
  :func:`napari_celldenoise.jobs.run_in_process`, or in a CLI/test process without a viewer.

Nothing in this module imports TensorFlow at import time.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

logger = logging.getLogger(__name__)


# TensorFlow's C++ start-up lines that tell a user nothing (they are printed before absl's
# logging is set up, so TF_CPP_MIN_LOG_LEVEL does not hide them); "failed call to cuInit" is
# what a machine without a GPU says when TensorFlow looks for one
STARTUP_NOISE = (
    "All log messages before absl::InitializeLog()",
    "oneDNN custom operations are on",
    "Could not find cuda drivers",
    "failed call to cuInit",
    "This TensorFlow binary is optimized",
    "To enable the following instructions",
    "TF-TRT Warning",
    "Unable to register cu",
)


@contextlib.contextmanager
def quiet_startup() -> Iterator[None]:
    """Hold back file descriptor 2 for the block; then print every line but the noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines(keepends=True)
            kept = [line for line in lines if not any(n in line for n in STARTUP_NOISE)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class LegacyKerasError(RuntimeError):
    """TensorFlow was imported before the legacy-Keras switch could be set."""


def import_tensorflow() -> Any:
    """Import TensorFlow with the legacy Keras (tf-keras) selected; returns the module."""
    if "tensorflow" not in sys.modules:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    elif os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        raise LegacyKerasError(
            "TensorFlow was imported before TF_USE_LEGACY_KERAS=1 was set; n2v needs the legacy "
            "Keras: import napari_celldenoise.deep._tf.import_tensorflow() first"
        )
    first = "tensorflow" not in sys.modules
    with quiet_startup() if first else contextlib.nullcontext():
        import tensorflow as tf

        if first:
            gpus()  # the device look-up's own noise, once, now

    tf.get_logger().setLevel(logging.ERROR)
    return tf


@functools.cache
def gpus() -> tuple:
    """TensorFlow's GPUs (looked up once, without the start-up noise of a GPU-less machine)."""
    tf = import_tensorflow()
    with quiet_startup():
        return tuple(tf.config.list_physical_devices("GPU"))


def keras() -> Any:
    """The Keras 2 API that n2v uses (``tf.keras`` under ``TF_USE_LEGACY_KERAS=1``)."""
    tf = import_tensorflow()
    return tf.keras


def import_n2v() -> SimpleNamespace:
    """n2v's config, model, data wrapper, value manipulators and utilities."""
    import numpy as np

    if not hasattr(np, "product"):
        # removed in NumPy 2, used by n2v; setattr so that linters do not "fix" it
        setattr(np, "product", np.prod)  # noqa: B010
    tf = import_tensorflow()
    with contextlib.redirect_stdout(io.StringIO()), quiet_startup():
        from n2v.internals import N2V_DataWrapper as wrapper_module
        from n2v.models import N2V, N2VConfig
        from n2v.utils import n2v_utils

        from .upsampling import use_in_n2v

        use_in_n2v(tf)  # its U-Net then compiles with XLA on the CPU too
    return SimpleNamespace(
        N2V=N2V,
        N2VConfig=N2VConfig,
        N2V_DataWrapper=wrapper_module.N2V_DataWrapper,
        utils=n2v_utils,
        manipulator=lambda name, radius: getattr(n2v_utils, f"pm_{name}")(radius),
    )


def device_description() -> str:
    """``"GPU (name)"`` when TensorFlow sees a GPU, else ``"CPU (n cores)"``."""
    tf = import_tensorflow()
    found = gpus()
    if found:
        try:
            name = tf.config.experimental.get_device_details(found[0]).get("device_name", "")
        except Exception:  # details are optional
            name = ""
        return f"GPU ({name or found[0].name})"
    return f"CPU ({os.cpu_count()} cores)"


def unusable_gpu() -> str:
    """Why an NVIDIA GPU that this machine has is not used, and what to install ("" when
    TensorFlow uses it, or when there is none: ``nvidia-smi`` and ``/dev/nvidia0`` are absent)."""
    import shutil

    if not (shutil.which("nvidia-smi") or os.path.exists("/dev/nvidia0")) or gpus():
        return ""
    return (
        "an NVIDIA GPU is present but TensorFlow cannot use it (no CUDA libraries it loads): "
        "pip install 'napari-celldenoise[gpu]' (tensorflow[and-cuda], no system CUDA needed)"
    )


BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_model_and_flags(cpuinfo: str = "/proc/cpuinfo") -> tuple[str, set[str]]:
    """The first CPU's model name and instruction flags from ``cpuinfo`` (empty off Linux)."""
    model, flags = "", set()
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not model:
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:  # not Linux
        pass
    return model, flags


def cpu_has_bfloat16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU has bfloat16 instructions (AVX512-BF16 or AMX-BF16), from ``cpuinfo``."""
    return bool(BFLOAT16_FLAGS & cpu_model_and_flags(cpuinfo)[1])


def compute_precision(setting: str = "auto") -> str:
    """The Keras dtype policy for a config's ``precision``: ``float32`` or ``mixed_bfloat16``.

    ``auto`` picks bfloat16 only on a CPU that computes it natively and with no GPU in use
    (oneDNN then runs the convolutions in bfloat16: 418 against 627 CPU-ms per PG step on an
    AMD EPYC with AVX512-BF16; without those instructions bfloat16 is emulated and slower).
    """
    if setting == "bfloat16":
        return "mixed_bfloat16"
    if setting == "float32":
        return "float32"
    if gpus() or not cpu_has_bfloat16():
        return "float32"
    return "mixed_bfloat16"


def quiet_stdout() -> contextlib.AbstractContextManager:
    """Swallow the prints of n2v/csbdeep (they would corrupt the CLI's stdout)."""
    return contextlib.redirect_stdout(io.StringIO())
