"""SIGKILL of ``celldenoise filter`` and ``spots`` at seeded random points: the target holds
the old file or the complete new one, never part of one, and every temporary file left by
the killed process is hidden (``.NAME.*.part``), never taken for a result."""

from __future__ import annotations

import hashlib
import random
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_celldenoise.atomic import is_temporary
from napari_celldenoise.io import read_image
from napari_celldenoise.io.spots_csv import read_spots_csv

from ._procs import cli_command, cli_env, visible_files

pytestmark = pytest.mark.slow

SEED = 25


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_and_kill(args, target: Path, *, delay: float | None, rng: random.Random) -> str:
    """Start the command; SIGKILL it after ``delay`` s, or (None) as soon as its temporary
    file appears plus a random few ms. Returns what happened: killed or finished."""
    proc = subprocess.Popen(
        cli_command(args), env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    start = time.monotonic()
    try:
        while proc.poll() is None and time.monotonic() - start < 120:
            if delay is not None and time.monotonic() - start >= delay:
                break
            if delay is None and any(
                is_temporary(p.name) and p.name.startswith(f".{target.name}.")
                for p in target.parent.iterdir()
            ):
                time.sleep(rng.uniform(0, 0.01))
                break
            time.sleep(0.002)
        if proc.poll() is not None:
            return "finished"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        return "killed"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()


def check_target(target: Path, old: str, is_complete_new) -> str:
    """The target is the old file (same bytes) or a complete new one."""
    assert target.exists(), "the old file was lost"
    if digest(target) == old:
        return "old"
    assert is_complete_new(target), f"{target}: neither the old file nor a complete new one"
    return "new"


def kill_series(tmp_path, name, make_args, old_bytes, is_complete_new, expected_visible):
    """Three kills: one after a seeded random delay (start-up, reading or computing), two
    as soon as the temporary file appears plus a random few ms (writing or renaming)."""
    rng = random.Random(SEED + len(name))
    folder = tmp_path / name
    folder.mkdir()
    target = folder / f"result{Path(name).suffix}"
    outcomes = []
    for delay in [rng.uniform(0.5, 4.0), None, None]:
        target.write_bytes(old_bytes)
        old = digest(target)
        how = run_and_kill(make_args(target), target, delay=delay, rng=rng)
        outcomes.append((how, check_target(target, old, is_complete_new)))
        assert visible_files(folder) in expected_visible, visible_files(folder)
        left = [p.name for p in folder.iterdir() if p.name.startswith(".")]
        assert all(is_temporary(n) for n in left), left
        if left:  # killed mid-write: the old file must have survived
            assert outcomes[-1][1] == "old"
            outcomes[-1] = (*outcomes[-1], "mid-write")
        for n in left:
            (folder / n).unlink()
    print(f"{name}: kills: {outcomes}")
    return outcomes


def test_sigkill_of_filter_leaves_old_or_complete_new(tmp_path):
    src = tmp_path / "in.tif"
    rng = np.random.default_rng(1)
    data = rng.integers(0, 4000, (24, 192, 192), dtype=np.uint16)
    tifffile.imwrite(src, data)
    before = digest(src)
    old = tmp_path / "old.tif"
    tifffile.imwrite(old, np.zeros((2, 8, 8), np.float32))

    def args(target):
        return ["filter", src, "-o", target, "--method", "gaussian", "--overwrite", "-q"]

    def complete(path):
        image = read_image(path)
        return image.shape == data.shape and np.isfinite(np.asarray(image.data)).all()

    outcomes = kill_series(
        tmp_path, "filter.tif", args, old.read_bytes(), complete, [["result.tif"]]
    )
    assert any(o[0] == "killed" for o in outcomes)
    assert digest(src) == before


def test_sigkill_of_spots_leaves_old_or_complete_new(tmp_path):
    from napari_celldenoise.cli.main import main

    src = tmp_path / "spots.tif"
    assert main(["simulate-spots", "-o", str(src), "--frames", "4", "--size", "64", "64"]) == 0
    before = digest(src)
    old_csv = b"x [px],y [px]\n1,2\n"
    reference = tmp_path / "reference.csv"
    assert main(["spots", str(src), "-o", str(reference), "-q"]) == 0
    counts = {len(read_spots_csv(reference))}

    def args(target):
        return ["spots", src, "-o", target, "--overwrite", "-q"]

    def complete(path):
        table = read_spots_csv(path)
        return len(table) in counts and len(table) > 1

    visible = [["result.csv"], ["result.csv", "result.csv.provenance.json"]]
    outcomes = kill_series(tmp_path, "spots.csv", args, old_csv, complete, visible)
    assert any(o[0] == "killed" for o in outcomes)
    assert digest(src) == before
