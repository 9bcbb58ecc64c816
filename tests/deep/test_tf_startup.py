"""TensorFlow's start-up noise stays off the terminal; real messages still get through."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from napari_celldenoise.deep._tf import STARTUP_NOISE, quiet_startup


def test_quiet_startup_drops_the_noise_and_keeps_the_rest(capfd):
    with quiet_startup():
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on. You may see\n")
        os.write(2, b"E0000 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n")
        os.write(2, b"a real problem\n")
    err = capfd.readouterr().err
    assert err == "a real problem\n"


@pytest.mark.tf
def test_importing_tensorflow_prints_no_startup_noise():
    code = (
        "from napari_celldenoise.deep._tf import device_description, import_tensorflow\n"
        "import_tensorflow()\n"
        "print(device_description())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert done.stdout.startswith(("CPU", "GPU"))
    assert not [line for line in done.stderr.splitlines() if any(n in line for n in STARTUP_NOISE)]
