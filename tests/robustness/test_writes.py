"""Writes under faults: file modes follow the umask, a full disk, a read-only folder, an output
that is a folder or the input itself. Each ends in one clear line (exit 2) and leaves nothing
half-written; the input is untouched."""

from __future__ import annotations

import hashlib
import os
import stat

import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_celldenoise.atomic import atomic_write
from napari_celldenoise.cli.main import main
from napari_celldenoise.config import ReaderConfig
from napari_celldenoise.deep.model import ModelFolder
from napari_celldenoise.io import ImageData, ImageWriteError, write_ome_tiff
from napari_celldenoise.io.spots_csv import write_spots_csv

from ._procs import can_drop_root_override, drop_root_file_override, file_size_limit, run_cli


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def all_names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def write_each_kind(folder) -> dict[str, object]:
    """One output of each kind the project writes: OME-TIFF, spot CSV, YAML, model file."""
    image = ImageData(np.zeros((2, 8, 8), np.float32), "ZYX")
    table = pd.DataFrame({"frame": [0], "x": [1.0], "y": [2.0], "class": ["good"]})
    (folder / "model").mkdir()
    out = {
        "ome-tiff": folder / "a.ome.tif",
        "csv": folder / "a.csv",
        "yaml": folder / "a.yaml",
        "model file": folder / "model" / "history.json",
    }
    write_ome_tiff(out["ome-tiff"], image, overwrite=True)
    write_spots_csv(out["csv"], table, overwrite=True)
    ReaderConfig().to_yaml(out["yaml"])
    ModelFolder(folder / "model").write_history([{"epoch": 1, "loss": 0.5}])
    return out


@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_the_umask_mode(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        written = write_each_kind(tmp_path)
    finally:
        os.umask(old)
    for kind, path in written.items():
        assert mode(path) == expected, f"{kind}: {oct(mode(path))}"
    assert not [n for n in all_names(tmp_path) if n.startswith(".")]


def test_a_replaced_file_keeps_its_mode(tmp_path):
    old = os.umask(0o022)
    try:
        written = write_each_kind(tmp_path)
        for path in written.values():
            os.chmod(path, 0o640)
        (tmp_path / "model").rename(tmp_path / "model-old")  # write_each_kind makes it anew
        (tmp_path / "model").mkdir()
        (tmp_path / "model" / "history.json").write_text("[]")
        os.chmod(tmp_path / "model" / "history.json", 0o640)
        (tmp_path / "model-old").joinpath("history.json").unlink()
        (tmp_path / "model-old").rmdir()
        image = ImageData(np.ones((2, 8, 8), np.float32), "ZYX")
        write_ome_tiff(written["ome-tiff"], image, overwrite=True)
        write_spots_csv(written["csv"], pd.DataFrame({"x": [3.0], "y": [4.0]}), overwrite=True)
        ReaderConfig(lazy_limit=5).to_yaml(written["yaml"])
        ModelFolder(tmp_path / "model").write_history([{"epoch": 2}])
        atomic_write(tmp_path / "plain.bin", b"x")
        os.chmod(tmp_path / "plain.bin", 0o604)
        atomic_write(tmp_path / "plain.bin", b"y", overwrite=True)
    finally:
        os.umask(old)
    for kind, path in written.items():
        assert mode(path) == 0o640, f"{kind}: {oct(mode(path))}"
    assert tifffile.imread(written["ome-tiff"]).max() == 1
    assert mode(tmp_path / "plain.bin") == 0o604


def test_cli_output_is_readable_by_the_group_under_umask_022(tmp_path):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, np.arange(2 * 16 * 16, dtype=np.uint16).reshape(2, 16, 16))
    old = os.umask(0o022)
    try:
        assert (
            main(["filter", str(src), "-o", str(tmp_path / "o.tif"), "--method", "median", "-q"])
            == 0
        )
    finally:
        os.umask(old)
    assert mode(tmp_path / "o.tif") == 0o644


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A 24-plane uint16 stack (245 kB); ``filter`` writes it back as float32 (490 kB)."""
    path = tmp_path_factory.mktemp("writes") / "stack.tif"
    rng = np.random.default_rng(0)
    tifffile.imwrite(path, rng.integers(0, 4000, (24, 64, 80), dtype=np.uint16))
    return path


def _one_clear_line(proc, *words):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.slow
def test_full_disk_during_filter_and_spots(stack, tmp_path):
    before = digest(stack)
    out = tmp_path / "out"
    out.mkdir()
    # filter: the 490 kB result cannot be written past a 300 kB file size limit
    proc = run_cli(
        ["filter", stack, "-o", out / "f.ome.tif", "--method", "gaussian", "-q"],
        preexec=file_size_limit(300_000),
    )
    _one_clear_line(proc, "f.ome.tif", "cannot write", "nothing was written")
    # spots: a CSV of a few hundred spots past a 2 kB limit
    spots_in = tmp_path / "spots.tif"
    assert main(["simulate-spots", "-o", str(spots_in), "--frames", "3", "--size", "64", "64"]) == 0
    # a first run here fills numba's cache, which the limited run could not write
    assert main(["spots", str(spots_in), "-o", str(tmp_path / "warm.csv"), "-q"]) == 0
    proc = run_cli(["spots", spots_in, "-o", out / "s.csv", "-q"], preexec=file_size_limit(2000))
    _one_clear_line(proc, "cannot write", "file too large")
    assert all_names(out) == []  # no partial file, no temporary left
    assert digest(stack) == before


@pytest.mark.skipif(not can_drop_root_override(), reason="cannot drop root's file override")
def test_read_only_output_folder(stack, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        proc = run_cli(
            ["filter", stack, "-o", ro / "f.tif", "--method", "median", "-q"],
            preexec=drop_root_file_override,
        )
        _one_clear_line(proc, str(ro), "not writable")
        assert all_names(ro) == []
    finally:
        os.chmod(ro, 0o755)


def test_output_that_is_a_folder(stack, tmp_path, capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    for extra in ([], ["--overwrite"]):
        argv = ["filter", str(stack), "-o", str(folder), "--method", "median", "-q", *extra]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "is a folder" in err and err.count("\n") == 1
    assert main(["spots", str(stack), "-o", str(folder), "-q", "--overwrite"]) == 2
    assert "is a folder" in capsys.readouterr().err
    with pytest.raises(ImageWriteError, match="is a folder"):
        write_ome_tiff(folder, ImageData(np.zeros((4, 4)), "YX"), overwrite=True)
    assert all_names(folder) == []


def test_output_equal_to_the_input_is_refused_unless_asked(tmp_path, capsys):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, np.arange(256, dtype=np.uint16).reshape(16, 16))
    before = digest(src)
    for cmd in (
        ["filter", "--method", "median"],
        ["add-noise", "--kind", "gaussian", "--sigma", "5"],
    ):
        assert main([cmd[0], str(src), "-o", str(src), *cmd[1:]]) == 2, cmd
        err = capsys.readouterr().err
        assert "is the input file" in err and "--overwrite" in err, err
    assert digest(src) == before
    # asked for: replaced, with its mode kept
    os.chmod(src, 0o640)
    assert (
        main(["filter", str(src), "-o", str(src), "--method", "median", "--overwrite", "-q"]) == 0
    )
    assert digest(src) != before and mode(src) == 0o640
    assert all_names(tmp_path) == ["in.tif"]
