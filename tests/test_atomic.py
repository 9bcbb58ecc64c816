"""Atomic writes: the target holds the old or the new content, never a half-written one."""

from __future__ import annotations

import pytest

from napari_celldenoise.atomic import atomic_path, atomic_write


def test_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "table.csv"
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(FileExistsError):
        atomic_write(target, b"again")
    with pytest.raises(RuntimeError), atomic_path(target, overwrite=True) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_deleting_the_temporary_file_abandons_the_write(tmp_path):
    target = tmp_path / "model.zip"
    target.write_bytes(b"old")
    with atomic_path(target, overwrite=True, suffix=".zip") as tmp:
        assert tmp.name.endswith(".zip") and tmp.parent == tmp_path
        tmp.write_bytes(b"partial")
        tmp.unlink()  # the job was stopped
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.zip"]


# ---------------------------------------------------------------- stale scratch folders

_HOLD_SCRATCH = """
import sys, time
from napari_celldenoise.atomic import scratch_folder
with scratch_folder(sys.argv[1]) as tmp:
    (tmp / "denoised.npy").write_bytes(b"0" * 4096)
    print(tmp, flush=True)
    time.sleep(600)
"""


def _hold_scratch(folder):
    """A real process holding a scratch folder in ``folder``: ``(process, its folder)``."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import napari_celldenoise

    env = dict(os.environ, PYTHONPATH=str(Path(napari_celldenoise.__file__).parents[1]))
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD_SCRATCH, str(folder)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    return proc, Path(proc.stdout.readline().strip())


def test_a_killed_processs_scratch_folder_is_removed_by_the_next_write(tmp_path):
    import os
    import signal

    from napari_celldenoise.atomic import SCRATCH_PREFIX, _host_tag, _start_time, scratch_folder

    killed, stale = _hold_scratch(tmp_path)
    alive, kept = _hold_scratch(tmp_path)
    try:
        start = _start_time(killed.pid)
        assert stale.name.startswith(f"{SCRATCH_PREFIX}{killed.pid}-{start}-{_host_tag()}-")
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        assert (stale / "denoised.npy").is_file()  # a SIGKILL leaves it behind
        other_host = tmp_path / f"{SCRATCH_PREFIX}{killed.pid}-{start}-00000000-abcd"
        reused = tmp_path / f"{SCRATCH_PREFIX}{os.getppid()}-1-{_host_tag()}-abcd"  # a live id
        foreign = tmp_path / f"{SCRATCH_PREFIX}something-else"  # not a name of ours
        for folder in (other_host, reused, foreign):
            folder.mkdir()
        atomic_write(tmp_path / "result.csv", b"x,y\n")
        assert not stale.exists() and not reused.exists()
        assert kept.is_dir() and other_host.is_dir() and foreign.is_dir()
        assert (tmp_path / "result.csv").read_bytes() == b"x,y\n"
        # a scratch folder of this process is never stale, and is removed after use
        with scratch_folder(tmp_path) as mine:
            atomic_write(tmp_path / "again.csv", b"x,y\n")
            assert mine.is_dir()
        assert not mine.exists()
    finally:
        alive.kill()
        alive.wait(timeout=30)
    with scratch_folder(tmp_path):  # the second holder is dead now too
        assert not kept.exists()
