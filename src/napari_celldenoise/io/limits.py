"""Limits a reader checks before allocating: what a header may claim, what memory holds."""

from __future__ import annotations

from typing import Any

BOMB_MIN = 256 << 20
"""Decoded sizes below this (bytes) are never refused for their compression ratio."""

BOMB_RATIO = 5000
"""Deflate stops near 1032:1 and LZW near 2700:1; only zstd of blank masks goes higher."""


def plane_plausible(page: Any) -> bool:
    """Whether a TIFF page's stored bytes can hold the plane its header declares."""
    stored = sum(page.databytecounts or ())
    if page.compression == 1:
        return stored >= page.nbytes
    return page.nbytes <= BOMB_MIN or page.nbytes <= BOMB_RATIO * stored


def available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``, else psutil), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)
