"""Event generators: run(), cooperative stop, and the child-process runner."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from napari_celldenoise.jobs import (
    Cancelled,
    ChildProcessFailed,
    Done,
    Log,
    Preview,
    Progress,
    run,
    run_in_process,
)

# the generators live in tests/jobs/workers.py: a spawned child must import them by name
from tests.jobs.workers import count, crash, fail, stubborn


def test_run_returns_the_result_and_reports_every_event():

    seen = []
    result = run(count(3, should_stop=lambda: False), on_event=seen.append)
    assert result["reached"] == 3
    assert [e.done for e in seen if isinstance(e, Progress)] == [1, 2, 3]
    assert isinstance(seen[-1], Done) and not seen[-1].stopped


def test_run_without_done_raises_cancelled():
    with pytest.raises(Cancelled):
        run(iter([Progress(1, 2)]))


def test_progress_fraction():
    assert Progress(1, 4).fraction == 0.25 and Progress(3, 0).fraction is None


def test_cooperative_stop_in_process():

    calls = {"n": 0}

    def stop_after_two():
        calls["n"] += 1
        return calls["n"] > 2

    result = run(count(5, should_stop=stop_after_two))
    assert result == {"reached": 2}


def test_child_process_streams_events_and_result():

    events = list(run_in_process(count, 4))
    assert isinstance(events[0], Log) and "child pid" in events[0].message
    previews = [e for e in events if isinstance(e, Preview)]
    assert previews and np.all(previews[0].image == 4)
    result = events[-1].result
    assert result["reached"] == 4 and result["pid"] != os.getpid()


def test_child_process_stops_cooperatively():

    steps: list[Progress] = []  # stop once the child has counted a few steps, however slow
    events = []  # its start is (a spawned interpreter on a busy machine)
    for event in run_in_process(count, 1000, delay=0.05, should_stop=lambda: len(steps) >= 3):
        events.append(event)
        if isinstance(event, Progress):
            steps.append(event)
    last = events[-1]
    assert isinstance(last, Done) and last.stopped
    assert 3 <= last.result["reached"] < 200  # it stopped within 10 s of steps of the request


def test_child_that_ignores_stop_is_killed_after_grace():

    t0 = time.monotonic()
    stop_at = t0 + 0.5
    events = list(
        run_in_process(stubborn, grace=1.0, should_stop=lambda: time.monotonic() > stop_at)
    )
    assert isinstance(events[-1], Done) and events[-1].stopped
    assert time.monotonic() - t0 < 8


def test_child_error_is_raised_with_its_message():

    with pytest.raises(ChildProcessFailed, match="ValueError: bad patch size") as info:
        run(run_in_process(fail))
    assert "Traceback" in info.value.child_traceback
    assert info.value.user_message == "bad patch size"  # bad input: its own words


def test_child_that_dies_is_reported():

    with pytest.raises(ChildProcessFailed, match="died") as info:
        run(run_in_process(crash))
    assert info.value.exitcode == 3


def test_unguarded_script_gets_a_hint_instead_of_a_bare_death(tmp_path):
    """A job defined in a script without a main guard: the child dies re-importing it."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "from napari_celldenoise.jobs import Log, run, run_in_process\n"
        "def job(should_stop):\n"
        "    yield Log('hi')\n"
        "run(run_in_process(job))\n"
    )
    src = Path(__file__).resolve().parents[2] / "src"  # this tree, not an installed copy
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode != 0
    assert 'if __name__ == "__main__":' in done.stderr.splitlines()[-1]
