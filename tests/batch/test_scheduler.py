"""``celldenoise batch --scheduler ADDRESS`` on a scheduler and two workers started as separate
processes with dask's own ``dask scheduler`` and ``dask worker`` commands, on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from napari_celldenoise.cli import main

from .conftest import SRC, make_tree, same_image

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def scheduler():
    """``tcp://127.0.0.1:PORT`` of a scheduler with two single-thread workers."""
    pytest.importorskip("distributed")
    dask = Path(sys.executable).with_name("dask")
    if not dask.exists():
        pytest.skip(f"no dask command beside {sys.executable}")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    procs = [
        subprocess.Popen(
            [str(dask), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            **quiet,
        )
    ]
    for name in ("w1", "w2"):
        procs.append(
            subprocess.Popen(
                [
                    str(dask),
                    "worker",
                    address,
                    "--nthreads",
                    "1",
                    "--name",
                    name,
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                ],
                **quiet,
            )
        )
    from distributed import Client

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout="5s") as c:
                    c.wait_for_workers(2, timeout=60)
                    workers = set(c.scheduler_info()["workers"])
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield address, workers
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def test_cli_batch_on_a_separately_started_scheduler(scheduler, example, tmp_path, capsys):
    address, workers = scheduler
    _, _, table = example
    recipe = tmp_path / "recipe.yaml"
    assert main(["recipe", "from", str(table), "-o", str(recipe)]) == 0
    src = make_tree(tmp_path / "in", n=3)
    out = tmp_path / "out"
    capsys.readouterr()
    code = main(
        [
            "batch",
            str(recipe),
            str(src / "*" / "*.ome.tif"),
            "-o",
            str(out),
            "--scheduler",
            address,
            "-q",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "3 done, 0 failed, 0 skipped, 0 cancelled" in captured.out
    m = pd.read_csv(out / "manifest.csv")
    assert set(m["status"]) == {"done"} and set(m["worker"]) <= workers
    # the same recipe in this process, step by step, gives the same image
    from napari_celldenoise.batch import load_recipe
    from napari_celldenoise.jobs import run
    from napari_celldenoise.jobs.run_spec import run_spec

    for spec in load_recipe(recipe).plan(str(src / "a" / "cell_0.ome.tif"), str(tmp_path / "r")):
        run(run_spec(spec))
    assert same_image(out / "a" / "cell_0.filtered.ome.tif", tmp_path / "r.filtered.ome.tif")
