"""A stack opened lazily is filtered block by block while it is written: the same pixels as
the in-memory path, a fraction of its memory, and no file when stopped."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import tifffile

from napari_celldenoise.io import read_image
from napari_celldenoise.jobs import Done, Log, run
from napari_celldenoise.jobs.provenance import spec_of
from napari_celldenoise.jobs.run_spec import run_spec
from napari_celldenoise.jobs.specs import classical_spec


def _stack(path, shape, dtype=np.uint16, seed=0) -> str:
    rng = np.random.default_rng(seed)
    data = rng.poisson(40.0, shape).astype(dtype)
    axes = "ZYX" if len(shape) == 3 else "TZYX"
    tifffile.imwrite(path, data, ome=True, metadata={"axes": axes, "PhysicalSizeX": 0.1})
    return str(path)


def _filter(src, out, method, params, *, lazy, monkeypatch, **kw):
    monkeypatch.setenv("CELLDENOISE_LAZY_LIMIT", "0" if lazy else "100GB")
    spec = classical_spec(src, out, method, params, **kw)
    events = []
    result = run(run_spec(spec), on_event=events.append)
    return spec, result, events


@pytest.mark.parametrize(
    ("method", "params", "three_d", "shape"),
    [
        ("gaussian", {"sigma": 1.5}, False, (5, 40, 48)),
        ("median", {"size": 3}, True, (2, 4, 32, 40)),  # ZYX blocks, looped over T
    ],
)
def test_streamed_output_equals_the_in_memory_one(
    tmp_path, monkeypatch, method, params, three_d, shape
):
    src = _stack(tmp_path / "in.ome.tif", shape)
    ref_spec, _, _ = _filter(
        src, str(tmp_path / "ref.ome.tif"), method, params, lazy=False,
        monkeypatch=monkeypatch, three_d=three_d, vst=True,
    )  # fmt: skip
    spec, result, events = _filter(
        src, str(tmp_path / "lazy.ome.tif"), method, params, lazy=True,
        monkeypatch=monkeypatch, three_d=three_d, vst=True,
    )  # fmt: skip
    assert any(isinstance(e, Log) and "block by block" in e.message for e in events)
    ours, ref = tifffile.imread(result.output), tifffile.imread(ref_spec.output)
    assert ours.dtype == ref.dtype == np.float32 and np.array_equal(ours, ref)
    assert spec_of(result.output) == spec
    image = read_image(result.output)
    assert image.axes == read_image(src).axes and image.scale["X"] == pytest.approx(0.1)


def test_a_lazy_stacks_memory_does_not_grow_with_its_length(tmp_path, monkeypatch):
    """16 and 128 planes of 256x256 uint16: the in-memory path holds the whole float32 output
    of the long stack, the streamed one's peak stays put (a few planes: the noise estimate
    samples 8 planes whatever the length). Python's allocations, traced by tracemalloc."""
    small = _stack(tmp_path / "warm.ome.tif", (2, 32, 32))
    for lazy in (False, True):  # the modules both paths import (dask, zarr) are not counted
        _filter(small, str(tmp_path / f"w{lazy}.ome.tif"), "gaussian", {"sigma": 1.0},
                lazy=lazy, monkeypatch=monkeypatch)  # fmt: skip
    peaks = {}
    for n in (16, 128):
        src = _stack(tmp_path / f"in{n}.ome.tif", (n, 256, 256), seed=n)
        for lazy in (False, True):
            tracemalloc.start()
            try:
                _filter(
                    src, str(tmp_path / f"out{n}-{lazy}.ome.tif"), "gaussian", {"sigma": 1.0},
                    lazy=lazy, monkeypatch=monkeypatch,
                )  # fmt: skip
                peaks[n, lazy] = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
    output = 128 * 256 * 256 * 4  # bytes of the long stack's float32 output
    shown = {k: round(v / 1e6, 1) for k, v in peaks.items()}
    assert peaks[128, False] > output, shown  # the peer: all of it in memory
    assert peaks[128, True] - peaks[16, True] < output / 32, shown  # 112 more planes: ~0
    assert peaks[128, True] < peaks[128, False] / 2, shown
    a = tifffile.imread(tmp_path / "out128-True.ome.tif")
    assert np.array_equal(a, tifffile.imread(tmp_path / "out128-False.ome.tif"))


def test_a_stop_while_writing_leaves_no_file(tmp_path, monkeypatch):
    src = _stack(tmp_path / "in.ome.tif", (12, 64, 64))
    monkeypatch.setenv("CELLDENOISE_LAZY_LIMIT", "0")
    spec = classical_spec(src, str(tmp_path / "out.ome.tif"), "gaussian", {"sigma": 1.0})
    seen = []

    def stop():
        seen.append(1)
        return len(seen) > 4  # a few blocks in

    events = list(run_spec(spec, should_stop=stop))
    assert isinstance(events[-1], Done) and events[-1].stopped and events[-1].result is None
    assert not (tmp_path / "out.ome.tif").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["in.ome.tif"]  # no temporary file left
