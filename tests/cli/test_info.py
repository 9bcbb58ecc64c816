"""``celldenoise info``: facts, JSON, and the exit-2-one-line contract."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_celldenoise.cli import main


def _ome(path):
    tifffile.imwrite(
        path,
        np.zeros((2, 3, 8, 9), np.uint16),
        ome=True,
        metadata={
            "axes": "TCYX",
            "PhysicalSizeX": 0.1,
            "PhysicalSizeY": 0.1,
            "TimeIncrement": 5.0,
            "Channel": {"Name": ["a", "b", "c"]},
        },
    )
    return path


def test_info_json(tmp_path, capsys):
    path = _ome(tmp_path / "x.ome.tif")
    assert main(["info", str(path), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["shape"] == [2, 3, 8, 9] and facts["axes"] == "TCYX"
    assert facts["dtype"] == "uint16" and facts["channels"] == ["a", "b", "c"]
    assert facts["scale"]["X"] == {"value": 0.1, "unit": "µm"}
    assert facts["scale"]["T"] == {"value": 5.0, "unit": "s"}
    assert facts["size_bytes"] == path.stat().st_size and facts["lazy"] is False


def test_info_text_and_lazy_limit(tmp_path, capsys):
    path = _ome(tmp_path / "x.ome.tif")
    assert main(["info", str(path), "--lazy-limit", "1kB"]) == 0
    out = capsys.readouterr().out
    assert "TCYX" in out and "X 0.1 µm" in out and "yes (dask" in out


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing.tif", None, "no such file"),
        ("table.csv", b"a,b\n", "not a TIFF or PNG"),
        ("empty.tif", b"", "empty file"),
        ("bad.tif", b"II*\x00\xff\xff\xff\x7f", "not a readable TIFF"),
    ],
)
def test_bad_files_exit_2_with_one_line_and_no_traceback(tmp_path, name, content, expected):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    proc = subprocess.run(
        [sys.executable, "-m", "napari_celldenoise.cli", "info", str(path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and name in lines[0]
    assert proc.stdout == ""


def test_truncated_tiff_exits_2_with_one_line(tmp_path):
    path = tmp_path / "t.tif"
    tifffile.imwrite(path, np.ones((3, 32, 32), np.uint16), photometric="minisblack")
    path.write_bytes(path.read_bytes()[:3000])
    proc = subprocess.run(
        [sys.executable, "-m", "napari_celldenoise.cli", "info", str(path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "truncated file" in lines[0], proc.stderr


def test_every_subcommand_has_help():
    import argparse

    from napari_celldenoise.cli.main import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert "info" in sub.choices
    for name in sub.choices:
        proc = subprocess.run(
            [sys.executable, "-m", "napari_celldenoise.cli", name, "--help"],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0 and "usage:" in proc.stdout, name
