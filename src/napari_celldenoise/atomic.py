"""Atomic writes: write next to the target, then rename over it in one step.

The file that appears has the mode an ordinary ``open(path, "w")`` would give it: a new file
``0o666`` less the user's umask (``0644`` under ``022``), a replaced file the mode it had. The
temporary name starts with a dot and ends in ``.part`` (hidden, never mistaken for a result);
a process killed mid-write can leave one behind, never a half-written target.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

TEMP_PREFIX = "."
TEMP_MARK = ".part"


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
    for _ in range(100):
        tail = TEMP_MARK if suffix == TEMP_MARK else TEMP_MARK + suffix
        tmp = path.parent / f"{TEMP_PREFIX}{path.name}.{secrets.token_hex(4)}{tail}"
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
