"""Open local paths and remote URLs (``gs://``) through one fsspec code path."""

from __future__ import annotations

import os
from typing import IO, Any

REMOTE_PREFIXES = ("gs://", "gcs://", "s3://", "http://", "https://")


def is_remote(path: str | os.PathLike) -> bool:
    return str(path).startswith(REMOTE_PREFIXES)


def filesystem(path: str | os.PathLike) -> tuple[Any, str]:
    """The fsspec filesystem for ``path`` and the path within it.

    ``gs://`` needs gcsfs (``pip install napari-celldenoise[cloud]``). Credentials follow
    gcsfs' defaults; ``STORAGE_EMULATOR_HOST`` points it at a local GCS server in tests.
    """
    import fsspec

    path = os.fspath(path)
    options: dict[str, Any] = {}
    if path.startswith(("gs://", "gcs://")):
        from ..extras import require

        require("cloud", "reading gs:// paths", modules=("gcsfs",))
        if os.environ.get("STORAGE_EMULATOR_HOST"):
            options["token"] = "anon"
            os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    fs, inner = fsspec.core.url_to_fs(path, **options)
    return fs, inner


def open_binary(path: str | os.PathLike) -> tuple[IO[bytes], int]:
    """Open ``path`` for reading bytes; returns the file object and its size."""
    fs, inner = filesystem(path)
    size = int(fs.size(inner))
    return fs.open(inner, "rb"), size


def size_on_disk(path: str | os.PathLike) -> int:
    fs, inner = filesystem(path)
    return int(fs.size(inner))
