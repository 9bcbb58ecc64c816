"""A script without a main guard: the job fails at once with what to change, never hangs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUARD = 'if __name__ == "__main__":'


def _run_script(path: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_unguarded_script_fails_before_spawning_with_the_advice(tmp_path):
    script = tmp_path / "train_centroids.py"
    script.write_text(
        "import numpy as np\n"
        "from napari_celldenoise.jobs import run\n"
        "from napari_celldenoise.spots.centroid import train_mlp_in_process\n"
        "rng = np.random.default_rng(0)\n"
        "boxes, offsets = rng.normal(size=(40, 49)), rng.normal(size=(40, 2))\n"
        "try:\n"
        "    run(train_mlp_in_process(boxes, offsets, epochs=1))\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
        "import sys\n"
        "print('tensorflow' in sys.modules)\n"
    )
    t0 = time.monotonic()
    done = _run_script(script)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.startswith("MainModuleNotGuarded train_centroids.py, line 7")
    assert GUARD in first
    assert second == "False"  # refused before any child or TensorFlow started
    assert time.monotonic() - t0 < 60


def test_guarded_script_runs_its_job_in_a_child(tmp_path):
    script = tmp_path / "guarded.py"
    script.write_text(
        "from napari_celldenoise.jobs import run, run_in_process\n"
        "from tests.jobs.workers import count\n"
        "def main():\n"
        "    print(run(run_in_process(count, 2))['reached'])\n"
        f"{GUARD}\n"
        "    main()\n"
    )
    done = _run_script(script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2"]
