"""The Colab runner notebook: install, sign in, check the accelerator, run the worker.

Colab takes no parameters from a URL, so the job URL is a form field of the notebook (filled in
when the notebook is written for one job). The notebook installs this package at this version
(with the ``worker`` extra on a TPU runtime, ``gpu`` on a GPU runtime), signs in with
``google.colab.auth`` (outside Colab: the machine's own Google credentials), then asks
TensorFlow in a separate process whether it can use the TPU: TensorFlow on Colab's TPU runtime
has been broken since mid-2025 (TensorFlow issue 96203), and then the notebook says so in one
line and trains on the GPU, or on the CPU with a line telling the user to switch the runtime.
No credential is ever written into it.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import __version__

_INTRO = """# napari-celldenoise: train a remote job in Colab

1. *Runtime > Change runtime type*: choose a **TPU** (v5e-1) or a **GPU** (T4) runtime.
2. Check the job URL below (`celldenoise remote submit` or the Deep dock wrote it).
3. *Runtime > Run all*. Sign in when asked: Colab then reads and writes your bucket as you.

The dock and `celldenoise jobs show JOB --follow` show the training live; Stop there (or
`celldenoise jobs stop JOB`) ends it with the best and last weights kept. Run all again after a
disconnect: the job resumes from its last finished epoch.
"""

_FORM = """JOB_URL = {url!r}  # @param {{type:"string"}}
assert JOB_URL.startswith(("gs://", "file://", "/")), "paste the job URL (gs://...) above"
"""

_INSTALL = """import importlib.metadata, os, subprocess, sys
VERSION = {version!r}
TPU = bool(os.environ.get("COLAB_TPU_ADDR") or os.path.exists("/dev/accel0"))
try:
    installed = importlib.metadata.version("napari-celldenoise")
except importlib.metadata.PackageNotFoundError:
    installed = None
if installed != VERSION:
    extra = "worker" if TPU else "gpu"
    spec = os.environ.get("CELLDENOISE_INSTALL", f"napari-celldenoise[{{extra}}]=={{VERSION}}")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", spec,
                    "-f", "https://storage.googleapis.com/libtpu-releases/index.html"], check=True)
print(f"napari-celldenoise {{VERSION}} ready ({{'TPU' if TPU else 'no TPU'}} runtime)")
"""

_AUTH = """try:
    from google.colab import auth
except ImportError:
    print("not in Colab: using this machine's Google credentials (gcloud / ADC)")
else:
    auth.authenticate_user()
"""

_CHECK = """probe = subprocess.run(
    [sys.executable, "-m", "napari_celldenoise.remote.colab"], capture_output=True, text=True
)
DEVICES = (probe.stdout.strip().splitlines() or ["cpu"])[-1]
for line in probe.stderr.strip().splitlines()[-1:]:
    print(line)
print(f"training on: {DEVICES}")
"""

_RUN = """worker = subprocess.Popen(
    [sys.executable, "-m", "napari_celldenoise.cli", "worker", JOB_URL, "--devices", DEVICES],
    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
)
for line in worker.stdout:
    print(line, end="")
if worker.wait() != 0:
    raise SystemExit(f"the worker failed (exit {worker.returncode}); see the lines above")
"""


def notebook(job_url: str = ""):
    """The runner notebook (an ``nbformat`` v4 notebook) for ``job_url``."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["accelerator"] = "TPU"
    nb.metadata["colab"] = {"provenance": [], "name": "celldenoise-worker.ipynb"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(_INTRO),
        nbformat.v4.new_code_cell(_FORM.format(url=job_url)),
        nbformat.v4.new_code_cell(_INSTALL.format(version=__version__)),
        nbformat.v4.new_code_cell(_AUTH),
        nbformat.v4.new_code_cell(_CHECK),
        nbformat.v4.new_code_cell(_RUN),
    ]
    return nb


def write_notebook(job_url: str, path: str | os.PathLike) -> Path:
    """Write the runner notebook for ``job_url`` to ``path`` (atomically); returns the path."""
    import nbformat

    from ..atomic import atomic_write

    target = Path(path)
    atomic_write(target, nbformat.writes(notebook(job_url)).encode(), overwrite=True)
    return target


def choose_devices() -> tuple[str, str]:
    """``(devices, line)``: what the worker should use here and why, checked by TensorFlow.

    A TPU that TensorFlow cannot initialise gives the GPU (or the CPU) and a line saying so.
    """
    from ..deep import strategy

    tpu = strategy._tpu_present()
    try:
        placement = strategy.pick("auto")
    except Exception as exc:  # TensorFlow itself is broken here
        return "cpu", f"TensorFlow cannot start here ({exc}); training on the CPU"
    if placement.kind == "tpu":
        return "tpu", f"TensorFlow sees the TPU: {placement.description}"
    if tpu:
        where = "the GPU" if placement.kind == "gpu" else "the CPU (slow)"
        return placement.kind, (
            "TensorFlow cannot use Colab's TPU (TensorFlow issue 96203): training on "
            f"{where}; for speed choose Runtime > Change runtime type > T4 GPU"
        )
    if placement.kind == "gpu":
        return "gpu", f"training on {placement.description}"
    return "cpu", (
        "no TPU or GPU in this runtime: training on the CPU (slow); choose Runtime > Change "
        "runtime type > TPU or T4 GPU"
    )


if __name__ == "__main__":  # the notebook's accelerator check, in its own process
    import sys

    devices, line = choose_devices()
    print(line, file=sys.stderr)
    print(devices)
