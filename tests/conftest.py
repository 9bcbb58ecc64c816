"""Shared fixtures: the development data folder (``../shared/data``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CELLDENOISE_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Callable[..., Path]:
    """``shared_data("spots", "x.tif")``: a file of ``../shared/data``; skips when absent."""

    def get(*parts: str) -> Path:
        path = DATA.joinpath(*parts)
        if not path.exists():
            pytest.skip(f"development data not available: {path} (a fresh clone has no shared/)")
        return path

    return get
