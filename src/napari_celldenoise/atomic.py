"""Atomic writes: write next to the target, then rename over it in one step.

The file that appears has the mode an ordinary ``open(path, "w")`` would give it: a new file
``0o666`` less the user's umask (``0644`` under ``022``), a replaced file the mode it had. The
temporary name starts with a dot and holds ``.part`` (hidden, never mistaken for a result);
a process killed mid-write can leave one behind, never a half-written target. The name also
names its owner (:func:`owner_tag`), so that the next write into that folder removes the
parts of processes that are gone (:func:`remove_stale_temporaries`).

Jobs that need room beside their output (a memory-mapped result bigger than memory) take a
hidden scratch folder, :func:`scratch_folder`, whose name names the process that made it. A
process killed with SIGKILL cannot remove its folder; the next write into that folder (any
:func:`atomic_path`, any scratch folder) removes the folders and parts whose owner is dead.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import secrets
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

TEMP_PREFIX = "."
TEMP_MARK = ".part"
SCRATCH_PREFIX = ".celldenoise-"

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike, *, overwrite: bool = False, suffix: str = TEMP_MARK
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    On any error the temporary file is removed and ``path`` is untouched, so a reader never
    sees a half-written file. A caller that deletes the temporary file abandons the write
    (a stopped job): ``path`` is left as it was. ``suffix`` ends the temporary name, for
    writers that go by the extension (after ``.part``, which every temporary name has).

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    IsADirectoryError
        If ``path`` is a folder.
    OSError
        A failed write (full disk, size limit, permissions), with ``filename`` the target.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, not a file")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (use overwrite to replace it)")
    if not path.parent.exists():
        raise FileNotFoundError(f"{path.parent}: no such folder")
    keep_mode = _existing_mode(path)
    remove_stale_temporaries(path.parent)
    tmp_path = _create_temp(path, suffix)
    try:
        if keep_mode is not None:
            os.chmod(tmp_path, keep_mode)
        try:
            yield tmp_path
            if tmp_path.exists():
                if keep_mode is not None:  # a writer may have recreated the file
                    os.chmod(tmp_path, keep_mode)
                os.replace(tmp_path, path)
        except OSError as exc:  # name the target, not the temporary file
            if exc.errno is None or exc.filename == os.fspath(path):
                raise
            raise OSError(exc.errno, exc.strerror, os.fspath(path)) from exc
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _create_temp(path: Path, suffix: str) -> Path:
    """Create an empty, new, hidden file beside ``path``; mode ``0o666`` less the umask.

    ``os.open`` lets the kernel apply the umask (``tempfile.mkstemp`` forces ``0600``), so
    the umask is never changed, not even briefly, and threads are safe.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    owner = owner_tag()
    for _ in range(100):
        tail = TEMP_MARK if suffix == TEMP_MARK else TEMP_MARK + suffix
        tmp = path.parent / f"{TEMP_PREFIX}{path.name}.{owner}-{secrets.token_hex(4)}{tail}"
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"{path.parent}: no free temporary name beside {path.name}")


def _existing_mode(path: Path) -> int | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None


def is_temporary(name: str) -> bool:
    """Whether a file name is one of :func:`atomic_path`'s temporary names."""
    return name.startswith(TEMP_PREFIX) and TEMP_MARK in name


@contextlib.contextmanager
def scratch_folder(parent: str | os.PathLike | None = None) -> Iterator[Path]:
    """A new hidden scratch folder in ``parent`` (the system's temporary folder when None),
    removed with everything in it afterwards.

    Its name, ``.celldenoise-PID-START-HOST-XXXXXXXX``, names its owner: this process's id and
    start time and a hash of this host's name, so that a later write into ``parent`` can tell
    a folder of a killed process (removed) from one of a process still running, also when the
    id has been reused since. The name says it from the moment the folder exists (a process
    killed right after creating it leaves nothing anonymous). Stale folders of dead processes
    in ``parent`` are removed first.
    """
    folder = make_scratch_folder(parent, clean=parent is not None)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def make_scratch_folder(parent: str | os.PathLike | None = None, *, clean: bool = True) -> Path:
    """A new scratch folder named as :func:`scratch_folder`'s, which the caller removes.

    ``clean`` first removes the stale scratch folders of dead processes in ``parent`` (the
    system's temporary folder when None)."""
    where = Path(tempfile.gettempdir() if parent is None else parent)
    if clean:
        remove_stale_scratch(where)
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{owner_tag()}-", dir=where))


def owner_tag() -> str:
    """``PID-START-HOST``: this process's id and start time and a hash of this host's name,
    as temporary names carry them (a later process tells a dead owner's from a live one's)."""
    pid = os.getpid()
    start = _start_time(pid)
    return f"{pid}-{'x' if start is None else start}-{_host_tag()}"


_OWNER = r"(\d+)-(\d+|x)-([0-9a-f]{8})-"
_SCRATCH_NAME = re.compile(re.escape(SCRATCH_PREFIX) + _OWNER)
_PART_OWNER = re.compile(r"\." + _OWNER + r"[0-9a-z_]+" + re.escape(TEMP_MARK))


def remove_stale_temporaries(parent: str | os.PathLike) -> list[Path]:
    """Remove what dead processes left in ``parent``: scratch folders and ``.part`` files
    and folders (:func:`remove_stale_scratch`, :func:`remove_stale_parts`)."""
    return remove_stale_scratch(parent) + remove_stale_parts(parent)


def remove_stale_parts(parent: str | os.PathLike) -> list[Path]:
    """Remove the temporary parts in ``parent`` (files of :func:`atomic_path`, folders of
    streamed parts) whose owner is gone; returns them.

    The owner is the :func:`owner_tag` in the name. Parts of live processes, of other
    hosts, and temporary names without an owner (older versions) are left as they are.
    """

    def owner(entry: os.DirEntry) -> tuple[str, ...] | None:
        if not is_temporary(entry.name):
            return None
        owners = _PART_OWNER.findall(entry.name)  # the last: a target's name may hold one
        return owners[-1] if owners else None

    return _remove_stale(parent, owner, "a part a process that ended was writing")


def remove_stale_scratch(parent: str | os.PathLike) -> list[Path]:
    """Remove the scratch folders in ``parent`` whose owning process is gone; returns them.

    A folder is stale when its name names this host and a process that no longer runs (or a
    different process under the same id: another start time). Folders of other hosts (a
    shared network folder), of live processes, with other names and entries that cannot be
    removed are left as they are.
    """

    def owner(entry: os.DirEntry) -> tuple[str, ...] | None:
        found = _SCRATCH_NAME.match(entry.name)
        return found.groups() if found and entry.is_dir(follow_symlinks=False) else None

    return _remove_stale(parent, owner, "the scratch folder of a process that ended")


def _remove_stale(
    parent: str | os.PathLike,
    owner: Callable[[os.DirEntry], tuple[str, ...] | None],
    what: str,
) -> list[Path]:
    """Remove the entries of ``parent`` whose ``owner`` (``PID, START, HOST``) is stale."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        try:
            tag = owner(entry)
            if tag is None or not _is_stale(*tag):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            continue
        log.info("removed %s, %s", entry.path, what)
        removed.append(Path(entry.path))
    return removed


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _is_stale(pid_text: str, start_text: str, host: str) -> bool:
    pid = int(pid_text)
    if host != _host_tag() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        pass
    start = _start_time(pid)
    return start is not None and start_text != "x" and start != int(start_text)


def _start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot, Linux's /proc), None where unknown."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after it
    return int(stat_line.rsplit(")", 1)[1].split()[19])


_REASONS = {
    errno.ENOSPC: "no space left on the disk",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the disk or the file size limit",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.EISDIR: "is a folder, not a file",
}


def write_error_text(exc: OSError, target: str | os.PathLike | None = None) -> str:
    """One line for a failed write: the target (not the temporary name) and why."""
    where = os.fspath(target) if target is not None else (exc.filename or "")
    if target is None and where and is_temporary(Path(where).name):
        where = str(Path(where).parent)
    reason = _REASONS.get(exc.errno or 0) or (exc.strerror or str(exc))
    return f"{where}: cannot write ({reason}); nothing was written" if where else reason


def atomic_write(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)
