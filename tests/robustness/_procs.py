"""Run the ``celldenoise`` command in a child process of this tree (for faults that need one:
resource limits, dropped privileges, SIGKILL)."""

from __future__ import annotations

import ctypes
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import napari_celldenoise
from napari_celldenoise.atomic import SCRATCH_PREFIX as SCRATCH  # jobs' hidden scratch folders
from napari_celldenoise.atomic import is_temporary

SRC = str(Path(napari_celldenoise.__file__).resolve().parents[1])


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("CELLDENOISE_ALLOW_PARTIAL", None)
    env.update(extra)
    return env


def cli_command(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "napari_celldenoise.cli", *map(str, args)]


def run_cli(
    args: Sequence[str], *, preexec: Callable[[], None] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        cli_command(args),
        env=cli_env(),
        preexec_fn=preexec,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def file_size_limit(nbytes: int) -> Callable[[], None]:
    """A ``preexec_fn``: files may not grow past ``nbytes`` (a full disk), and writing past
    it fails with EFBIG instead of killing the process (SIGXFSZ ignored)."""

    def apply() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))

    return apply


def drop_root_file_override() -> None:
    """A ``preexec_fn`` for root: lose CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so that
    folder permissions apply to the child as to any user."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def can_drop_root_override() -> bool:
    if os.geteuid() != 0:
        return True
    try:
        subprocess.run(["true"], preexec_fn=drop_root_file_override, check=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def visible_files(folder: Path) -> list[str]:
    """Names a user would take for results: everything but hidden files."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_and_kill(
    args, target: Path, *, delay: float | None, rng: random.Random, earlier: Sequence[Path] = ()
) -> str:
    """Start the command; SIGKILL it after ``delay`` s, or (None) as soon as its temporary
    file appears (not one of ``earlier``, left by killed runs) plus a random few ms.
    Returns what happened: killed or finished."""
    proc = subprocess.Popen(
        cli_command(args), env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    start = time.monotonic()
    try:
        while proc.poll() is None and time.monotonic() - start < 120:
            if delay is not None and time.monotonic() - start >= delay:
                break
            if delay is None and any(
                is_temporary(p.name) and p.name.startswith(f".{target.name}.")
                for p in target.parent.iterdir()
                if p not in earlier
            ):
                time.sleep(rng.uniform(0, 0.01))
                break
            time.sleep(0.002)
        if proc.poll() is not None:
            return "finished"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        return "killed"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()


def check_target(target: Path, old: str, is_complete_new) -> str:
    """The target is the old file (same bytes) or a complete new one."""
    assert target.exists(), "the old file was lost"
    if digest(target) == old:
        return "old"
    assert is_complete_new(target), f"{target}: neither the old file nor a complete new one"
    return "new"


def kill_series(
    tmp_path,
    name,
    make_args,
    old_bytes,
    is_complete_new,
    expected_visible,
    *,
    seed=25,
    delays=(0.5, 4.0),
    triggered=2,
):
    """Kill the command repeatedly: once after a seeded random delay within ``delays``
    (start-up, reading or computing; None: not), then ``triggered`` times as soon as its
    temporary file appears plus a random few ms (writing or renaming)."""
    rng = random.Random(seed + len(name))
    folder = tmp_path / name
    folder.mkdir()
    target = folder / f"result{Path(name).suffix}"
    outcomes = []
    plan = ([rng.uniform(*delays)] if delays else []) + [None] * triggered
    earlier: list[Path] = []  # what the runs before left (their processes are dead)
    for delay in plan:
        target.write_bytes(old_bytes)
        old = digest(target)
        how = run_and_kill(make_args(target), target, delay=delay, rng=rng, earlier=earlier)
        outcomes.append((how, check_target(target, old, is_complete_new)))
        assert visible_files(folder) in expected_visible, visible_files(folder)
        if delay is None:  # it reached its write: it removed what the killed runs left
            assert not [p for p in earlier if p.exists()], earlier
        left = [p for p in folder.iterdir() if p.name.startswith(".") and p not in earlier]
        # hidden temporary files of the atomic writes, and predict's hidden scratch folder
        assert all(is_temporary(p.name) or p.name.startswith(SCRATCH) for p in left), left
        if any(is_temporary(p.name) and p.name.startswith(f".{target.name}.") for p in left):
            assert outcomes[-1][1] == "old"  # killed mid-write: the old file survived
            outcomes[-1] = (*outcomes[-1], "mid-write")
        earlier += left
    print(f"{name}: kills: {outcomes}")
    return outcomes
