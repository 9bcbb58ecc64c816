"""Shared fixtures: the development data folder and small synthetic files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CELLDENOISE_DATA", ROOT.parent / "shared" / "data"))


def shared_data(*parts: str) -> Path:
    """A file of ``../shared/data``; skips the test when the folder is absent."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"development data not available: {path} (a fresh clone has no shared/)")
    return path
