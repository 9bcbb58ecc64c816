"""Super-resolution renders: known answers for the histogram and Gaussian renders, and the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_celldenoise.cli.main import main
from napari_celldenoise.io.spots_csv import write_spots_csv
from napari_celldenoise.spots.render import (
    RenderError,
    render_gaussian,
    render_histogram,
    render_shape,
)


def _centroid(image: np.ndarray) -> tuple[float, float]:
    """(x, y) in render px, pixel k spanning [k, k + 1)."""
    rows, cols = np.indices(image.shape)
    total = image.sum()
    return (image * (cols + 0.5)).sum() / total, (image * (rows + 0.5)).sum() / total


@pytest.mark.parametrize("sigma", [2.0, 7.5, 23.0])  # below pixel/2 (clipped), ~1.5 px, ~4.6 px
def test_one_gaussian_sums_to_one_at_its_position(sigma):
    x, y = 503.7, 247.2
    r = render_gaussian([x], [y], sigma, pixel_nm=5.0, extent=(0.0, 1000.0, 0.0, 500.0))
    assert r.image.dtype == np.float32 and r.image.shape == (100, 200)
    assert r.pixel_nm == 5.0 and r.origin_nm == (0.0, 0.0)
    assert r.image.sum() == pytest.approx(1.0, abs=1e-5)
    cx, cy = _centroid(r.image)
    assert abs(cx - x / 5.0) < 0.05 and abs(cy - y / 5.0) < 0.05
    spread = np.sqrt((r.image * (np.arange(200) + 0.5 - cx) ** 2).sum())
    # its own sigma (clipped to half a pixel), plus the 1/12 px^2 of integrating over pixels
    assert spread == pytest.approx(np.hypot(max(sigma, 2.5) / 5.0, np.sqrt(1 / 12)), rel=0.03)


def test_gaussian_cut_by_the_extent_and_missing_sigma():
    # Half of a Gaussian on the left edge is outside: half of it is drawn.
    r = render_gaussian([0.0], [500.0], 20.0, pixel_nm=10.0, extent=(0, 1000, 0, 1000))
    assert r.image.sum() == pytest.approx(0.5, abs=0.01)
    # A missing uncertainty gets the minimum width, not nothing.
    r = render_gaussian([55.0], [55.0], np.nan, pixel_nm=10.0, extent=(0, 100, 0, 100))
    assert r.image.sum() == pytest.approx(1.0, abs=1e-5)


def test_histogram_counts_the_localizations_inside():
    rng = np.random.default_rng(3)
    x = rng.uniform(-200, 1200, 5000)
    y = rng.uniform(-200, 1200, 5000)
    r = render_histogram(x, y, pixel_nm=20.0, extent=(0.0, 1000.0, 0.0, 800.0))
    assert r.image.shape == (40, 50)
    inside = (x >= 0) & (x < 1000) & (y >= 0) & (y < 800)
    assert r.image.sum() == inside.sum()
    # one pixel, by hand
    in_pixel = (x >= 140) & (x < 160) & (y >= 300) & (y < 320)
    assert r.image[15, 7] == in_pixel.sum()
    # the default extent starts at 0 nm (or below it) and holds every localization
    full = render_histogram(x, y, pixel_nm=20.0)
    assert full.origin_nm == (-200.0, -200.0) and full.image.sum() == 5000


def _profile_between(sigma: float) -> tuple[float, float]:
    """Peak and midpoint of the render of two points 20 nm apart at 5 nm pixels."""
    x = np.array([250.0 - 10.0, 250.0 + 10.0]) + 2.5  # on pixel centres
    y = np.array([252.5, 252.5])
    img = render_gaussian(x, y, sigma, pixel_nm=5.0, extent=(0, 500, 0, 500)).image
    row = img[50]
    return float(row[[48, 52]].mean()), float(row[50])


def test_two_points_20nm_apart_resolved_only_with_a_small_sigma():
    peak, middle = _profile_between(5.0)
    assert middle < 0.5 * peak  # a clear dip: resolved
    peak, middle = _profile_between(30.0)
    assert middle >= peak  # one blob: not resolved


def test_absurd_size_is_refused():
    with pytest.raises(RenderError, match="megapixels"):
        render_shape((0.0, 1e6, 0.0, 1e6), 0.01)
    with pytest.raises(RenderError, match="no localizations"):
        render_histogram([np.nan], [1.0], pixel_nm=10.0)


def _table(n: int = 3, *, pixel_size: float = 100.0) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "frame": np.arange(n),
            "x": np.linspace(3.0, 20.0, n),
            "y": np.linspace(5.0, 9.0, n),
            "photons": np.full(n, 1000.0),
            "uncertainty": np.full(n, 0.15),
            "class": ["good"] * (n - 1) + ["bad"],
        }
    )
    table.attrs["pixel_size"] = pixel_size
    return table


@pytest.mark.parametrize("method", ["gaussian", "histogram"])
def test_cli_writes_the_pixel_size_in_nm(tmp_path, capsys, method):
    locs = write_spots_csv(tmp_path / "locs.csv", _table(5, pixel_size=160.0))
    out = tmp_path / "sr.ome.tif"
    args = ["render", str(locs), "-o", str(out), "--magnification", "8", "--method", method]
    assert main(args) == 0
    assert "4 localizations" in capsys.readouterr().out  # the bad one left out
    with tifffile.TiffFile(out) as tif:
        image = tif.asarray()
        pixels = tif.ome_metadata
    assert 'PhysicalSizeX="20.0"' in pixels and 'PhysicalSizeXUnit="nm"' in pixels
    assert image.dtype == np.float32 and image.sum() == pytest.approx(4.0, abs=1e-4)
    # a localization at camera px (3, 5) is at render px (3.5 * 8, 5.5 * 8)
    assert image[44, 28] == image.max()
    assert main([*args, "--camera-pixel", "80"]) == 2  # exists, no --overwrite
    assert main([*args, "--camera-pixel", "80", "--overwrite", "--include-bad"]) == 0
    with tifffile.TiffFile(out) as tif:
        assert 'PhysicalSizeX="10.0"' in tif.ome_metadata
        assert tif.asarray().sum() == pytest.approx(5.0, abs=1e-4)


def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    out = str(tmp_path / "o.tif")
    no_xy = tmp_path / "no_xy.csv"
    no_xy.write_text("frame,intensity\n1,5\n")
    empty = write_spots_csv(tmp_path / "empty.csv", _table(5).iloc[:0])
    no_sigma = tmp_path / "ts.csv"
    no_sigma.write_text("frame,x [nm],y [nm]\n1,100,200\n")
    far = write_spots_csv(tmp_path / "far.csv", _table(3).assign(x=[1.0, 5e4, 2.0]))
    cases = [
        ([str(no_xy)], "no x/y position"),
        ([str(empty)], "no localizations"),
        ([str(no_sigma)], "uncertainty"),
        ([str(far), "--magnification", "100"], "megapixels"),
        ([str(far), "--magnification", "0"], "--magnification"),
        ([str(tmp_path / "missing.csv")], "missing.csv"),
    ]
    for extra, message in cases:
        assert main(["render", *extra, "-o", out]) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (extra, err)
    assert not (tmp_path / "o.tif").exists()
    # a table without uncertainties still renders as a histogram
    assert main(["render", str(no_sigma), "-o", out, "--method", "histogram"]) == 0


def test_render_job_in_chunks_matches_one_render(monkeypatch):
    """The dock's render job splats in chunks with progress; the image is the one-go render."""
    from napari_celldenoise.jobs import Done, Progress, run
    from napari_celldenoise.spots import render_job
    from napari_celldenoise.spots.simulate_locs import simulate_localizations

    table = simulate_localizations(field_nm=1500.0, n_frames=200, seed=0)
    whole = run(render_job.render_table_job(table, method="gaussian", magnification=10))
    monkeypatch.setattr(render_job, "CHUNK", 100)
    events = list(render_job.render_table_job(table, method="gaussian", magnification=10))
    steps = [e for e in events if isinstance(e, Progress)]
    assert len(steps) == -(-len(table) // 100) and steps[-1].done == steps[-1].total
    chunked = events[-1].result
    assert isinstance(events[-1], Done) and chunked.pixel_nm == 10.0
    np.testing.assert_allclose(chunked.image, whole.image, atol=1e-5)
    # each adds 1 but for the part of a Gaussian cut by the frame's edge at 0 nm
    assert 0.99 * len(table) < chunked.image.sum() <= len(table) + 1e-3
    hist = run(render_job.render_table_job(table, method="histogram", magnification=5))
    assert hist.image.sum() == len(table) and hist.pixel_nm == 20.0
    stopped = list(render_job.render_table_job(table, should_stop=lambda: True))
    assert stopped[-1].stopped and stopped[-1].result is None
    with pytest.raises(RenderError, match="no uncertainty"):
        run(render_job.render_table_job(table.drop(columns="uncertainty")))
    with pytest.raises(RenderError, match="magnification"):
        run(render_job.render_table_job(table, magnification=0))
