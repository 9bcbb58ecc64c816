"""Truncated OME-TIFF and ImageJ hyperstacks: refused with both plane counts, or opened
partially (the complete planes, with a warning) only when asked.

The repro of the defect: a TZCYX 3x4x2x64x80 uint16 stack written by tifffile, cut at many
points. Before the fix these opened silently as a single 64x80 plane.
"""

from __future__ import annotations

import io
import logging
import re
from functools import lru_cache

import numpy as np
import pytest
import tifffile

from napari_celldenoise.cli.main import main
from napari_celldenoise.config import ReaderConfig
from napari_celldenoise.io import ImageReadError, read_image

SHAPE = (3, 4, 2, 64, 80)  # T Z C Y X
PLANE = 64 * 80 * 2
N_PLANES = 24
CUTS = [0.05, 0.1, 0.2, 1 / 3, 0.4, 0.5, 0.6, 2 / 3, 0.75, 0.8, 0.9, 0.95, 0.98]


def stack() -> np.ndarray:
    return (np.arange(np.prod(SHAPE)) % 65521).astype(np.uint16).reshape(SHAPE)


@lru_cache
def full_file(kind: str) -> bytes:
    buf = io.BytesIO()
    if kind == "ome":
        tifffile.imwrite(buf, stack(), ome=True, metadata={"axes": "TZCYX"})
    elif kind == "imagej":
        tifffile.imwrite(buf, stack(), imagej=True, metadata={"axes": "TZCYX"})
    else:  # OME-XML in the first directory, as Bio-Formats and Micro-Manager write it
        xml = tifffile.TiffFile(io.BytesIO(full_file("ome"))).ome_metadata
        with tifffile.TiffWriter(buf) as w:
            for i, plane in enumerate(stack().reshape(-1, 64, 80)):
                w.write(plane, description=xml if i == 0 else None, metadata=None)
    return buf.getvalue()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("trunc")
    out = {}
    for kind in ("ome", "imagej", "ome-first"):
        raw = full_file(kind)
        for frac in CUTS:
            path = root / f"{kind}-{frac:.3f}.tif"
            path.write_bytes(raw[: int(len(raw) * frac)])
            out[kind, frac] = path
    return out


def _planes_in(path, kind) -> int:
    """Complete planes in the cut file: data start from the intact file's layout."""
    t = tifffile.TiffFile(io.BytesIO(full_file(kind)))
    offsets = [p.dataoffsets[0] for p in t.pages]
    size = path.stat().st_size
    return sum(1 for o in offsets if o + PLANE <= size)


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
@pytest.mark.parametrize("kind", ["ome", "imagej", "ome-first"])
def test_truncated_hyperstack_is_refused_naming_both_counts(files, kind, lazy):
    for frac in CUTS:
        path = files[kind, frac]
        with pytest.raises(ImageReadError, match="truncated") as err:
            read_image(path, lazy=lazy, config=ReaderConfig(allow_partial=False))
        text = str(err.value)
        assert str(path) in text and "\n" not in text
        present = _planes_in(path, kind)
        assert (
            f"{present} complete planes remain" in text or f"only {present} are complete" in text
        ), text
        if kind == "ome":  # tifffile writes the OME-XML last: the count is a lower bound
            assert f"at least {N_PLANES} image planes" in text, text
        else:
            assert f"declares {N_PLANES} image planes" in text, text


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
@pytest.mark.parametrize("kind", ["ome", "imagej", "ome-first"])
def test_allow_partial_opens_the_complete_planes_with_a_warning(files, kind, lazy, caplog):
    planes = stack().reshape(N_PLANES, 64, 80)
    for frac in CUTS:
        path = files[kind, frac]
        present = _planes_in(path, kind)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            image = read_image(path, lazy=lazy, config=ReaderConfig(allow_partial=True))
        assert any("truncated" in r.getMessage() for r in caplog.records)
        data = np.asarray(image.data)
        assert image.extra["partial"]["present"] == present
        n = int(np.prod(data.shape[:-2]))
        assert 1 <= n <= present
        np.testing.assert_array_equal(data.reshape(n, 64, 80), planes[:n])
        if kind != "ome":  # axes known: whole time points, else whole z-slices
            assert image.axes == "TZCYX"
            lead = (present // 8, 4, 2) if present >= 8 else (1, present // 2, 2)
            assert data.shape[:3] == (lead if present >= 2 else (1, 1, 1))
        else:  # metadata lost: one stack of planes
            assert data.shape == (present, 64, 80)
        image.close()


def test_complete_files_still_open_whole(tmp_path):
    for kind in ("ome", "imagej", "ome-first"):
        path = tmp_path / f"{kind}.tif"
        path.write_bytes(full_file(kind))
        for lazy in (False, True):
            image = read_image(path, lazy=lazy, config=ReaderConfig(allow_partial=False))
            assert image.shape == SHAPE and image.axes == "TZCYX", (kind, image.shape)
            np.testing.assert_array_equal(np.asarray(image.data), stack())
            image.close()


def test_env_var_sets_the_reader_default(monkeypatch):
    monkeypatch.delenv("CELLDENOISE_ALLOW_PARTIAL", raising=False)
    assert ReaderConfig().allow_partial is False
    monkeypatch.setenv("CELLDENOISE_ALLOW_PARTIAL", "1")
    assert ReaderConfig().allow_partial is True


def test_cli_exit_2_then_allow_partial(files, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CELLDENOISE_ALLOW_PARTIAL", raising=False)
    path = files["imagej", 1 / 3]
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert re.search(r"declares 24 image planes but only 8 are complete", err)
    assert "--allow-partial" in err and err.count("\n") == 1
    # nothing is written from a partial read without the opt-in
    out = tmp_path / "out.ome.tif"
    assert main(["filter", str(path), "-o", str(out), "--method", "gaussian", "-q"]) == 2
    assert not out.exists()
    for argv in (
        ["--allow-partial", "info", str(path), "--json"],
        ["info", str(path), "--json", "--allow-partial"],
    ):
        assert main(argv) == 0
        assert '"shape": [1, 4, 2, 64, 80]' in capsys.readouterr().out
    assert "CELLDENOISE_ALLOW_PARTIAL" not in __import__("os").environ
    argv = ["filter", str(path), "-o", str(out), "--method", "gaussian", "-q", "--allow-partial"]
    assert main(argv) == 0
    assert read_image(out).shape[-4:] == (4, 2, 64, 80)
