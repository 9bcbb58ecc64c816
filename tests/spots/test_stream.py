"""Long movies in bounded memory: streamed runs give the in-memory result, stop cleanly and do
not hold the frames."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_celldenoise.io import ImageData, read_image, write_ome_tiff
from napari_celldenoise.io.spots_csv import write_spots_csv, write_spots_csv_parts
from napari_celldenoise.jobs import Done, Progress, run
from napari_celldenoise.jobs.run_spec import run_spec
from napari_celldenoise.jobs.specs import spots_spec
from napari_celldenoise.spots.config import SpotsConfig
from napari_celldenoise.spots.pipeline import locate
from napari_celldenoise.spots.simulate import simulate_spots
from napari_celldenoise.spots.stream import (
    PartStore,
    find_spots_streamed,
    load_streamed,
    stream_spots,
    streamed_tables,
)

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """24 frames of 64x64 px with 10 spots each."""
    return simulate_spots(24, (64, 64), n_spots=10, background=(5.0, 30.0), seed=3)[0]


def write_movie(path: Path, frames: np.ndarray) -> str:
    um = 0.1
    image = ImageData(frames, "TYX", scale={"Y": um, "X": um}, units={"Y": "µm", "X": "µm"})
    write_ome_tiff(path, image)
    return str(path)


@pytest.mark.parametrize("workers", [1, 2])
def test_streamed_table_and_csv_equal_the_in_memory_result(frames, tmp_path, workers):
    config = SpotsConfig(fit="mle")
    expected = locate(frames, config)
    assert len(expected) > 150
    with PartStore(tmp_path / "parts") as store:
        streamed = run(stream_spots(frames, config, store, workers=workers, chunk=5))
        assert streamed.workers == workers
        assert store.n_parts == 5  # 24 frames in chunks of 5
        table = load_streamed(streamed, config)
        pd.testing.assert_frame_equal(table, expected)
        assert table.attrs["psf_sigma"] == pytest.approx(expected.attrs["psf_sigma"])
        write_spots_csv(tmp_path / "memory.csv", expected)
        write_spots_csv_parts(tmp_path / "parts.csv", streamed_tables(streamed, config))
    assert not (tmp_path / "parts").exists()  # the store is removed on leaving it
    memory = (tmp_path / "memory.csv").read_text()
    assert (tmp_path / "parts.csv").read_text() == memory
    assert memory.count("\n") == len(expected) + 1


def test_lazy_movie_through_the_cli_job_equals_the_in_memory_csv(frames, tmp_path, monkeypatch):
    monkeypatch.setenv("CELLDENOISE_SPOT_WORKERS", "2")
    monkeypatch.setenv("CELLDENOISE_LAZY_LIMIT", "1KB")  # opened lazily, as a long movie is
    movie = write_movie(tmp_path / "movie.ome.tif", frames)
    config = SpotsConfig(fit="lsq", pixel_size=100.0)
    result = run(run_spec(spots_spec(movie, str(tmp_path / "out.csv"), config)))
    assert result.table is None  # streamed: the rows went to disk, not into the result
    expected = locate(read_image(movie, lazy=False).data, config)
    write_spots_csv(tmp_path / "memory.csv", expected)
    assert (tmp_path / "out.csv").read_text() == (tmp_path / "memory.csv").read_text()
    assert result.n_spots == len(expected)
    assert result.n_good == int((expected["class"] == "good").sum())
    assert result.facts.median_uncertainty == pytest.approx(expected["uncertainty"].median())
    assert len(result.read_table()) == len(expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "memory.csv",
        "movie.ome.tif",
        "out.csv",
        "out.csv.provenance.json",
    ]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cancel_leaves_no_partial_output(frames, tmp_path, monkeypatch, workers):
    monkeypatch.setenv("CELLDENOISE_SPOT_WORKERS", workers)
    movie = write_movie(tmp_path / "movie.ome.tif", np.concatenate([frames] * 4))
    seen = []

    def should_stop() -> bool:
        return len(seen) >= 2  # after two chunks

    events = run_spec(spots_spec(movie, str(tmp_path / "out.csv"), SpotsConfig()), should_stop)
    last = None
    for event in events:
        if isinstance(event, Progress) and event.total:
            seen.append(event)
        last = event
    assert isinstance(last, Done) and last.stopped and last.result is None
    assert 2 <= len(seen) < 6  # 96 frames are 6 chunks: it stopped early
    assert [p.name for p in tmp_path.iterdir()] == ["movie.ome.tif"]  # no CSV, no parts


def test_a_stop_while_the_read_ahead_chunks_are_already_done_is_still_a_stop(frames, tmp_path):
    """The workers finish the chunks read ahead while the caller is busy; the stop asked then
    must end the run as stopped, not as a complete table missing the chunks never submitted."""
    movie = np.concatenate([frames] * 4)  # 96 frames: 6 chunks of 16, 4 read ahead on 2 workers
    parts = []

    def should_stop() -> bool:
        return len(parts) >= 2

    events = find_spots_streamed(movie, SpotsConfig(), workers=2, should_stop=should_stop)
    for event in events:
        if isinstance(event, Progress) and event.total:
            parts.append(event.done)
            if len(parts) == 2:
                time.sleep(4)  # the two chunks still pending finish meanwhile
    assert isinstance(event, Done) and event.stopped, parts
    assert parts == [16, 32]


def test_the_dock_job_streams_to_the_same_table(frames):
    config = SpotsConfig()
    events = list(find_spots_streamed(frames, config, workers=1))
    assert isinstance(events[-1], Done) and not events[-1].stopped
    pd.testing.assert_frame_equal(events[-1].result, locate(frames, config))
    chunks = []  # as find_spots, a stop keeps the spots of the planes finished so far
    events = find_spots_streamed(frames, config, workers=1, should_stop=lambda: len(chunks) > 0)
    for event in events:
        if isinstance(event, Progress) and event.total:
            chunks.append(event.done)
    assert event.stopped and chunks == [16]  # one chunk of 16 planes, then the stop
    pd.testing.assert_frame_equal(event.result, locate(frames[:16], config))


def test_no_spots_write_the_header_and_no_rows(tmp_path):
    blank = np.full((3, 32, 32), 100, np.uint16)
    with PartStore(tmp_path / "p") as store:
        streamed = run(stream_spots(blank, SpotsConfig(), store, workers=1))
        write_spots_csv_parts(tmp_path / "a.csv", streamed_tables(streamed, SpotsConfig()))
    write_spots_csv(tmp_path / "b.csv", locate(blank, SpotsConfig()))
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    assert (tmp_path / "a.csv").read_text().count("\n") == 1


CHILD = textwrap.dedent(
    """
    import json, os, sys
    from napari_celldenoise.jobs import Progress, run
    from napari_celldenoise.jobs.run_spec import run_spec
    from napari_celldenoise.jobs.specs import spots_spec
    from napari_celldenoise.spots.config import SpotsConfig

    page = os.sysconf("SC_PAGE_SIZE")
    rss = []

    def on_event(event):
        if isinstance(event, Progress) and event.total:
            with open("/proc/self/statm") as f:
                rss.append(int(f.read().split()[1]) * page)

    # detection by threshold only: the test is of the streaming, so each plane costs little
    config = SpotsConfig(filter="none", threshold="300", fit="none")
    spec = spots_spec(sys.argv[1], sys.argv[2], config)
    result = run(run_spec(spec), on_event=on_event)
    print(json.dumps({"rss": rss, "n": result.n_spots}))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_a_2000_frame_movie_streams_in_bounded_memory(tmp_path):
    """The frames (262 MB) are read a chunk at a time: memory grows by far less than them."""
    import tifffile

    n, size = 2000, 256
    one = simulate_spots(8, (size, size), n_spots=6, photons=(2000.0, 5000.0), seed=5)[0]
    movie = tmp_path / "long.ome.tif"
    tifffile.imwrite(
        movie,
        (one[t % len(one)] for t in range(n)),  # written frame by frame, never all in memory
        shape=(n, size, size),
        dtype=np.uint16,
        bigtiff=True,
        ome=True,
        metadata={"axes": "TYX"},
    )
    env = {**os.environ, "PYTHONPATH": str(SRC), "CELLDENOISE_SPOT_WORKERS": "1"}
    env["CELLDENOISE_LAZY_LIMIT"] = "16MB"  # opened lazily, as a movie over 1 GiB is
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(movie), str(tmp_path / "locs.csv")],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    rss = np.array(facts["rss"], float)
    assert len(rss) == -(-n // 16)  # a Progress per chunk of 16 frames
    frames_bytes = n * size * size * 2
    growth = rss.max() - rss[0]  # from the first chunk (imports and compiling done) on
    assert growth < frames_bytes / 5, f"RSS grew {growth / 1e6:.0f} MB"
    assert facts["n"] >= 5 * n  # the movie's spots (6 per frame) were found
    with open(tmp_path / "locs.csv") as fh:
        assert sum(1 for _ in fh) == facts["n"] + 1


@pytest.mark.slow
def test_ctrl_c_of_the_cli_stops_the_workers_and_leaves_no_output(frames, tmp_path):
    """Ctrl-C reaches the whole process group: the workers ignore it, the CLI stops the pool,
    removes the parts and writes nothing."""
    import signal
    import time

    movie = write_movie(tmp_path / "movie.ome.tif", np.concatenate([frames] * 40))  # 960
    env = {**os.environ, "PYTHONPATH": str(SRC), "CELLDENOISE_SPOT_WORKERS": "2"}
    cmd = [sys.executable, "-m", "napari_celldenoise.cli", "spots", movie, "-o", "out.csv"]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 600
    parts = []
    while not parts and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)  # the first chunk's part on disk: the workers are fitting
        parts = [p for d in tmp_path.glob(".out.csv.*") for p in d.glob("part-*.npz")]
    assert parts, "no chunk was written"
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err  # no worker died of it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["movie.ome.tif"]
