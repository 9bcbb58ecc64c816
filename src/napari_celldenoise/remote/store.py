"""Whole-object reads and writes at any fsspec URL, retried with backoff when the network fails.

A job folder lives in Google Cloud Storage (``gs://``) for users and in a local folder or on a
local GCS server in tests. GCS objects cannot be appended to and appear whole when their upload
finishes; a local file is written under a temporary name and renamed (:mod:`..atomic`), so a
reader never sees half an object either way.

Transient failures (a refused connection, a timeout, a server error 5xx or 429) are retried
with exponential backoff for up to ``patience`` seconds; a missing object, a refused permission
or a missing bucket is reported at once as a :class:`StoreError` with one line.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..atomic import atomic_write

logger = logging.getLogger(__name__)

T = TypeVar("T")


class StoreError(OSError):
    """The bucket or folder cannot be used (one line for the user)."""


def _is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying: the network or the server, not the request."""
    if isinstance(exc, (FileNotFoundError, PermissionError, FileExistsError, IsADirectoryError)):
        return False
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code >= 500 or code in (408, 429)
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    name = type(exc).__name__
    module = type(exc).__module__
    if module.startswith("aiohttp") or name in (
        "TimeoutError",
        "ClientError",
        "ServerDisconnected",
    ):
        return True
    return isinstance(exc, OSError) and exc.errno is None


def describe_error(exc: BaseException, url: str) -> str:
    """One line saying what went wrong with ``url`` and what to do."""
    code = getattr(exc, "code", None)
    text = " ".join(str(exc).split()) or type(exc).__name__
    if code == 401 or "credentials" in text.lower() or "reauthentication" in text.lower():
        return (
            f"{url}: not logged in to Google Cloud ({text}); run "
            "`gcloud auth application-default login`"
        )
    if code == 403 or isinstance(exc, PermissionError):
        return f"{url}: permission refused ({text}); your account needs Storage Object Admin"
    if code == 429 or "quota" in text.lower():
        return f"{url}: quota exceeded ({text}); try again later or raise the quota"
    if isinstance(exc, FileNotFoundError):
        return f"{url}: not found"
    return f"{url}: {text}"


class Store:
    """The objects under one URL (a folder): read, write, list, delete by relative name.

    Parameters
    ----------
    url
        ``gs://bucket/prefix``, ``file:///path`` or a local path.
    patience
        Seconds a transient failure is retried (with backoff from 0.5 s to 8 s) before it is
        raised.
    """

    def __init__(self, url: str | os.PathLike, *, patience: float = 120.0):
        from ..io.fs import filesystem

        self.url = os.fspath(url).rstrip("/")
        self.patience = patience
        self.fs, self.root = filesystem(self.url)
        self.root = self.root.rstrip("/")
        protocol = self.fs.protocol
        self.local = "file" in (protocol if isinstance(protocol, (tuple, list)) else (protocol,))

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def path(self, name: str) -> str:
        return f"{self.root}/{name}" if name else self.root

    def url_of(self, name: str) -> str:
        return f"{self.url}/{name}" if name else self.url

    def retry(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()``, retried with backoff while it fails transiently (see :func:`_is_transient`)."""
        deadline = time.monotonic() + self.patience
        delay = 0.5
        while True:
            try:
                return fn()
            except Exception as exc:
                if not _is_transient(exc) or time.monotonic() + delay > deadline:
                    raise
                logger.warning("%s %s failed (%s); retrying in %.1f s", what, self.url, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 8.0)

    # ------------------------------------------------------------------------- objects
    def put(self, name: str, data: bytes) -> None:
        """Write ``data`` as the whole object ``name`` (replacing it)."""
        target = self.path(name)
        if self.local:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            atomic_write(target, data, overwrite=True)
            return
        self.retry(f"writing {name} to", lambda: self.fs.pipe_file(target, data))

    def get(self, name: str) -> bytes:
        """The object ``name``; :class:`FileNotFoundError` when there is none."""
        return self.retry(f"reading {name} from", lambda: self.fs.cat_file(self.path(name)))

    def get_or_none(self, name: str) -> bytes | None:
        try:
            return self.get(name)
        except FileNotFoundError:
            return None

    def exists(self, name: str) -> bool:
        return self.get_or_none(name) is not None if name else self._folder_exists()

    def _folder_exists(self) -> bool:
        return bool(self.list(""))

    def list(self, folder: str) -> list[str]:
        """Names (relative to this store) of the objects directly in ``folder``, sorted."""
        base = self.path(folder)

        def ls() -> list[Any]:
            self.fs.invalidate_cache(base)
            try:
                return self.fs.ls(base, detail=True)
            except FileNotFoundError:
                return []

        prefix = len(self.root) + 1
        names = [e["name"].rstrip("/")[prefix:] for e in self.retry(f"listing {folder} in", ls)]
        return sorted(n for n in names if n)

    def delete(self, name: str, *, recursive: bool = False) -> None:
        target = self.path(name)

        def rm() -> None:
            try:
                self.fs.rm(target, recursive=recursive)
            except FileNotFoundError:
                pass

        self.retry(f"deleting {name} in", rm)

    def upload(self, local: str | os.PathLike, name: str) -> None:
        """Copy the local file ``local`` to the object ``name`` (whole)."""
        with open(local, "rb") as f:
            self.put(name, f.read())

    def check_writable(self) -> None:
        """Write and delete a probe object: login, bucket and permission, before any upload.

        Raises
        ------
        StoreError
            One line: not logged in, no such bucket, permission refused, quota.
        """
        name = ".celldenoise-write-check"
        try:
            self.put(name, b"ok")
            self.delete(name)
        except Exception as exc:
            if isinstance(exc, FileNotFoundError) and not self.local:
                bucket = self.url.split("/")[2] if "://" in self.url else self.url
                raise StoreError(
                    f"gs://{bucket}: no such bucket (create it with `gcloud storage buckets "
                    f"create gs://{bucket} --location=REGION`)"
                ) from None
            raise StoreError(describe_error(exc, self.url)) from None


__all__ = ["Store", "StoreError", "describe_error"]
