"""Every method on tiny blocks: a result of the block's shape, or ImageTooSmall before any work.

BM3D and BM4D crash the whole process on a block of exactly their block size, so they are
only ever called at or above their minimum, and then in a child process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_celldenoise.classical.apply import denoise
from napari_celldenoise.classical.params import ImageTooSmall, ParamError
from napari_celldenoise.classical.registry import (
    BM3D_MIN_SIDE,
    BM4D_MIN_SIDE,
    METHODS,
    get_method,
)
from napari_celldenoise.cli import main

TINY = [
    (1, 1),
    (1, 9),
    (9, 1),
    (2, 2),
    (3, 3),
    (5, 5),
    (2, 40),
    (1, 1, 1),
    (1, 8, 8),
    (8, 8, 1),
    (8, 1, 8),
    (2, 2, 2),
    (5, 5, 5),
]
LIGHT = [name for name in METHODS if name != "bm3d"]


def _noisy(shape, seed=0):
    return np.random.default_rng(seed).normal(100.0, 5.0, shape).astype(np.float32)


@pytest.mark.parametrize("shape", TINY, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", LIGHT)
def test_every_method_keeps_the_shape_of_a_tiny_block_or_refuses_it(name, shape):
    m = get_method(name)
    params = m.resolve({}, sigma=5.0)
    try:
        out = m(_noisy(shape), params, noise_sigma=5.0)
    except ImageTooSmall as exc:
        if name == "bragg":  # a lattice is measured from each plane's FFT
            assert min(shape[-2:]) < 16 and "16 x 16" in str(exc)
            return
        assert name in ("kde-lof", "gridlof") and int(np.prod(shape)) <= params["k"]
        assert "k=20" in str(exc) and "x".join(map(str, shape)).replace("x", " x ") in str(exc)
        return
    assert out.shape == shape and np.all(np.isfinite(out))


@pytest.mark.parametrize("name", ["kde-lof", "gridlof"])
def test_impulse_repair_of_a_flat_or_sparse_image_finds_no_outlier_instead_of_failing(name):
    m = get_method(name)
    flat = np.full((32, 32), 7.0, np.float32)
    sparse = np.random.default_rng(1).poisson(0.05, (32, 32)).astype(np.float32)
    for x in (flat, sparse):
        out = m(x, m.resolve({}))
        assert out.shape == x.shape
    assert np.array_equal(m(flat, m.resolve({})), flat)
    with pytest.raises(ImageTooSmall, match="lower k"):
        m(_noisy((4, 5)), m.resolve({"k": 20}))
    assert m(_noisy((4, 5)), m.resolve({"k": 5})).shape == (4, 5)


def test_bm3d_refuses_blocks_below_its_minimum_without_calling_the_library(monkeypatch):
    import bm3d as _bm3d
    import bm4d as _bm4d

    def boom(*args, **kwargs):
        raise AssertionError("the library must not be called on a block this small")

    monkeypatch.setattr(_bm3d, "bm3d", boom)
    monkeypatch.setattr(_bm4d, "bm4d", boom)
    m = get_method("bm3d")
    for profile, side in BM3D_MIN_SIDE.items():
        for shape in [(side - 1, 64), (64, side - 1), (1, 1), (2, 40)]:
            with pytest.raises(ImageTooSmall, match=f"at least {side} px"):
                m(_noisy(shape), m.resolve({"profile": profile}))
    for shape in [(5, 5, 5), (8, 8, 1), (2, 64, 64), (64, 64, 5), (1, 1, 1)]:
        with pytest.raises(ImageTooSmall, match=f"at least {BM4D_MIN_SIDE} px.*plane by plane"):
            m(_noisy(shape), m.resolve({}))
    with pytest.raises(ParamError, match="not one of"):  # bm3d 4 has no "lc" profile
        m.resolve({"profile": "lc"})


_CHILD = """
import json, sys
import numpy as np
from napari_celldenoise.classical.registry import get_method
m = get_method("bm3d")
out = []
for shape, profile in json.loads(sys.argv[1]):
    x = np.random.default_rng(0).normal(100.0, 5.0, shape).astype(np.float32)
    y = m(x, m.resolve({"profile": profile}, sigma=5.0))
    out.append([list(y.shape), bool(np.isfinite(y).all())])
print(json.dumps(out))
"""


@pytest.mark.slow
def test_bm3d_and_bm4d_run_at_their_minimum_size():
    """In a child: were a minimum too low, the library would crash the test process."""
    cases = [[[BM3D_MIN_SIDE[p]] * 2, p] for p in ("np", "vn")]  # "high" shares np's blocks
    cases += [[[BM4D_MIN_SIDE] * 3, "vn"]]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    shapes = json.loads(done.stdout.strip().splitlines()[-1])
    assert shapes == [[shape, True] for shape, _ in cases]


def test_denoise_refuses_before_the_first_block():
    stack = _noisy((3, 2, 32, 32))
    with pytest.raises(ImageTooSmall, match="BM4D"):
        denoise(stack, "TZYX", "bm3d", three_d=True)


def test_cli_filter_of_two_planes_in_3d_with_bm3d_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "two_planes.tif"
    tifffile.imwrite(path, _noisy((2, 48, 48)))
    out = tmp_path / "out.ome.tif"
    argv = ["filter", str(path), "-o", str(out), "--axes", "ZYX", "--3d", "--method", "bm3d"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bm3d" in err[0] and "at least 6 px" in err[0]
    assert "2 x 48 x 48" in err[0] and not out.exists()
