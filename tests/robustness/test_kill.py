"""SIGKILL of ``celldenoise filter`` and ``spots`` at seeded random points: the target holds
the old file or the complete new one, never part of one, and every temporary file left by
the killed process is hidden (``.NAME.*.part``), never taken for a result."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_celldenoise.io import read_image
from napari_celldenoise.io.spots_csv import read_spots_csv

from ._procs import digest, kill_series

pytestmark = pytest.mark.slow

SEED = 25


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
    # big enough that the run (about 3 s of work after start-up) outlasts the delayed kill on
    # a fast machine too: with 4 small frames every kill came after the end
    simulate = ["simulate-spots", "-o", str(src), "--frames", "40", "--size", "256", "256"]
    assert main(simulate) == 0
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
    outcomes = kill_series(
        tmp_path, "spots.csv", args, old_csv, complete, visible, delays=(0.5, 3.0)
    )
    assert any(o[0] == "killed" for o in outcomes)
    assert digest(src) == before
