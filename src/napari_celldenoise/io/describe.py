"""Facts about an image for people (``celldenoise info``, the Stack info dock)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .image import ImageData


def human_size(n: int | None) -> str:
    if n is None:
        return "unknown"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover


def describe(image: ImageData) -> dict[str, Any]:
    """A JSON-ready dict: path, format, shape, dtype, axes, scale, channels, size, lazy."""
    return describe_parts(
        shape=image.shape,
        dtype=image.dtype,
        axes=image.axes,
        scale=image.scale,
        units=image.units,
        channel_names=image.channel_names,
        path=image.path,
        size_bytes=image.size_bytes,
        lazy=image.lazy,
        file_format=image.format,
    )


def describe_parts(
    *,
    shape: tuple[int, ...],
    dtype: Any,
    axes: str,
    scale: dict[str, float],
    units: dict[str, str],
    channel_names: list[str] | None = None,
    path: str = "",
    size_bytes: int | None = None,
    lazy: bool = False,
    file_format: str = "",
) -> dict[str, Any]:
    """The same dict from loose facts (used for layers that did not come from a file)."""
    dtype = np.dtype(dtype)
    n_pixels = int(np.prod(shape, dtype=np.int64))
    return {
        "path": path,
        "format": file_format,
        "shape": [int(s) for s in shape],
        "dtype": dtype.name,
        "axes": axes,
        "scale": {a: {"value": float(scale[a]), "unit": units.get(a, "")} for a in scale},
        "channels": list(channel_names) if channel_names else [],
        "size_bytes": size_bytes,
        "size_on_disk": human_size(size_bytes),
        "size_in_memory": human_size(n_pixels * dtype.itemsize),
        "lazy": bool(lazy),
    }


def describe_rows(facts: dict[str, Any]) -> list[tuple[str, str]]:
    """``(label, value)`` rows of :func:`describe`'s dict, for text and for the dock."""
    scale = ", ".join(f"{a} {v['value']:.6g} {v['unit']}" for a, v in facts["scale"].items())
    rows = [
        ("path", facts["path"] or "(not from a file)"),
        ("format", facts["format"] or "-"),
        ("shape", " x ".join(str(s) for s in facts["shape"])),
        ("dtype", facts["dtype"]),
        ("axes", facts["axes"]),
        ("scale", scale or "-"),
        ("channels", ", ".join(facts["channels"]) or "-"),
        ("size on disk", facts["size_on_disk"]),
        ("in memory", facts["size_in_memory"]),
        ("lazy", "yes (dask, read on demand)" if facts["lazy"] else "no"),
    ]
    return rows


def describe_text(facts: dict[str, Any]) -> str:
    """Aligned ``key  value`` lines of :func:`describe`'s dict."""
    rows = describe_rows(facts)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
