"""The in-memory description of an opened image: pixels plus axes, scale and provenance."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .axes import default_scale, validate_axes


@dataclass(frozen=True, eq=False)
class ImageData:
    """Pixels (numpy or dask) with the facts needed to keep them physically right.

    Attributes
    ----------
    data
        The pixels, axes in the order of ``axes``.
    axes
        Letters from ``TZCYXS``, one per dimension of ``data``.
    scale, units
        Physical step and its unit per axis (no entry for ``C`` and ``S``).
    channel_names
        One name per channel when ``C`` is present.
    path, size_bytes, lazy, format
        Where it came from, its size on disk, whether ``data`` is a lazy dask array,
        and the flavour of file (``ome-tiff``, ``imagej-tiff``, ``tiff``, ``png``).
    """

    data: Any
    axes: str
    scale: dict[str, float] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    channel_names: list[str] | None = None
    path: str = ""
    size_bytes: int | None = None
    lazy: bool = False
    format: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        axes = validate_axes(self.axes, self.data.ndim)
        object.__setattr__(self, "axes", axes)
        scale, units = default_scale(axes)
        scale.update({a: float(v) for a, v in self.scale.items() if a in scale})
        units.update({a: u for a, u in self.units.items() if a in units})
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "units", units)
        if "C" in axes:
            n = self.data.shape[axes.index("C")]
            names = list(self.channel_names or [])
            if len(names) != n:
                names = [f"C{i}" for i in range(n)]
            object.__setattr__(self, "channel_names", names)
        else:
            object.__setattr__(self, "channel_names", None)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.data.dtype)

    @property
    def rgb(self) -> bool:
        return self.axes.endswith("S")

    def close(self) -> None:
        """Release the file handles a lazy image keeps open (its data is unusable after)."""
        for handle in self.extra.pop("_keepalive", ()):
            handle.close()

    def with_data(self, data: Any, **changes: Any) -> ImageData:
        """A copy carrying new pixels (same axes/scale unless changed), e.g. a filter result."""
        return replace(self, data=data, lazy=changes.pop("lazy", False), **changes)
