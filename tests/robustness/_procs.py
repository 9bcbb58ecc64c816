"""Run the ``celldenoise`` command in a child process of this tree (for faults that need one:
resource limits, dropped privileges, SIGKILL)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import napari_celldenoise

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
