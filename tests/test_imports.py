"""Importing the package and every non-Qt module must not import Qt, napari or TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import napari_celldenoise

PKG = Path(napari_celldenoise.__file__).parent


def non_qt_modules() -> list[str]:
    mods = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if "_qt" in parts or parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods.append(".".join(parts))
    return mods


def test_there_are_modules_to_check():
    mods = non_qt_modules()
    assert "napari_celldenoise.io.read" in mods
    assert not any("._qt" in m for m in mods)


def test_non_qt_modules_import_no_qt_napari_or_tensorflow():
    mods = non_qt_modules()
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'napari', 'tensorflow', 'n2v'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported: {out.stdout.strip()}"
