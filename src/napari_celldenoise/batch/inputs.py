"""The files of a batch: files, globs, folders and ``gs://`` prefixes, each with the relative
path its outputs take under the output folder (so that the output tree mirrors the input tree)."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..io.fs import filesystem, is_remote
from ..io.read import is_supported
from .recipe import RecipeError, image_stem

_MAGIC = "*?["


@dataclass(frozen=True)
class BatchInput:
    """One file of a batch: where it is, its size, and its outputs' relative stem."""

    path: str
    rel: str  # posix path under OUTDIR without suffix, e.g. "day1/cell_01"
    size: int


def expand_inputs(inputs: list[str], *, exclude: str | None = None) -> list[BatchInput]:
    """Every image file named by ``inputs``, in order, without repeats.

    A folder (or a ``gs://`` prefix) gives the images under it, recursively, named relative to
    it; a glob gives its matches, named relative to the part before the first wildcard; a
    file gives itself, named by its file name. Files under ``exclude`` (the output folder) are
    left out.

    Raises
    ------
    RecipeError
        For an input that names nothing, or two inputs whose outputs would collide.
    """
    found: dict[str, BatchInput] = {}
    for item in inputs:
        matches = _remote(item) if is_remote(item) else _local(item)
        if not matches:
            raise RecipeError(f"{item}: no image files (reads .tif, .tiff, .ome.tif, .png)")
        for path, rel, size in matches:
            if exclude and _under(path, exclude):
                continue
            found.setdefault(path, BatchInput(path, rel, size))
    by_rel: dict[str, str] = {}
    for f in found.values():
        other = by_rel.setdefault(f.rel, f.path)
        if other != f.path:
            raise RecipeError(
                f"{other} and {f.path} would write the same outputs ({f.rel}.*): give their "
                "common folder instead"
            )
    return list(found.values())


def _rel(path: str, base: str) -> str:
    rel = PurePosixPath(os.path.relpath(path, base).replace(os.sep, "/"))
    return (
        str(rel.parent / image_stem(rel.name)) if str(rel.parent) != "." else image_stem(rel.name)
    )


def _local(item: str) -> list[tuple[str, str, int]]:
    p = Path(item)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and _wanted(f.name))
        return [(str(f), _rel(str(f), str(p)), f.stat().st_size) for f in files]
    if any(c in item for c in _MAGIC):
        base = _glob_base(item)
        files = sorted(Path(f) for f in glob.glob(item, recursive=True))
        return [
            (str(f), _rel(str(f), base), f.stat().st_size)
            for f in files
            if f.is_file() and _wanted(f.name)
        ]
    if p.is_file():
        return [(str(p), image_stem(p.name), p.stat().st_size)]
    return []


def _glob_base(pattern: str) -> str:
    parts = PurePosixPath(pattern.replace(os.sep, "/")).parts
    fixed = []
    for part in parts:
        if any(c in part for c in _MAGIC):
            break
        fixed.append(part)
    return str(PurePosixPath(*fixed)) if fixed else "."


def _remote(item: str) -> list[tuple[str, str, int]]:
    fs, inner = filesystem(item)
    scheme = item.split("://", 1)[0]
    if any(c in inner for c in _MAGIC):
        base = _glob_base(inner)
        entries = {p: fs.info(p) for p in fs.glob(inner)}
    else:  # a prefix lists what is under it; a single object lists nothing under it
        base = inner.rstrip("/")
        entries = {
            k: v for k, v in fs.find(base + "/", detail=True).items() if k.startswith(base + "/")
        }
        if not entries:
            if not fs.exists(inner):
                return []
            return [(item, image_stem(inner), int(fs.size(inner)))]
    out = []
    for key in sorted(entries):
        info = entries[key]
        if info.get("type") == "directory" or not _wanted(PurePosixPath(key).name):
            continue
        out.append((f"{scheme}://{key}", _rel(key, base), int(info.get("size") or 0)))
    return out


def _wanted(name: str) -> bool:
    return is_supported(name) and not name.startswith(".")


def _under(path: str, folder: str) -> bool:
    if is_remote(path) or is_remote(folder):
        return path.startswith(folder.rstrip("/") + "/")
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
    except ValueError:
        return False
    return True


__all__ = ["BatchInput", "expand_inputs"]
