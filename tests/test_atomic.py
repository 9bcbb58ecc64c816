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
