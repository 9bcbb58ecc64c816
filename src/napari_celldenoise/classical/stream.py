"""A filtered image that is computed block by block while it is written, in bounded memory.

For a stack opened lazily (a dask array, larger than the reader's lazy limit) the filtered
result never exists whole: :class:`FilteredPlanes` looks like an array to
:func:`..io.write_ome_tiff`, which asks for it plane by plane; each plane's block (a YX plane,
or a Z or T volume when filtering in 3D) is read, filtered with the same
:func:`.apply.filter_block` as the in-memory path, and kept until the writer moves on. The
pixels are those of :func:`.apply.denoise_job`; peak memory is about one block of input and
output instead of the whole output.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..jobs import Done, Event, Progress, ShouldStop, never_stop
from .apply import NoiseInfo, Plan, _block_array, cast_output, filter_block, spacing_for
from .registry import Method
from .vst import GAT


class Stopped(Exception):
    """The writer was stopped between blocks (the partial file is discarded)."""


class FilteredPlanes:
    """The filtered ``data`` as a read-only array of planes: ``planes[t, z, ...]`` is one YX
    plane (``data``'s axes must end in YX); the block holding it is computed on demand."""

    def __init__(
        self,
        data: Any,
        axes: str,
        plan: Plan,
        method: Method,
        params: Mapping[str, Any],
        *,
        gat: GAT | None,
        noise: NoiseInfo,
        dtype: np.dtype,
        scale: Mapping[str, float] | None = None,
        should_stop: ShouldStop = never_stop,
    ):
        if not axes.upper().endswith("YX"):
            raise ValueError(f"streaming needs YX as the last axes, not {axes!r}")
        self.data, self.axes, self.plan = data, axes.upper(), plan
        self.method, self.params, self.gat, self.noise = method, params, gat, noise
        self.shape = tuple(data.shape)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(dtype)
        self.spacing = spacing_for(plan, scale)
        self.should_stop = should_stop
        self.blocks_done = 0
        self._where: tuple[int, ...] | None = None
        self._block: np.ndarray | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: tuple[int, ...]) -> np.ndarray:
        """The YX plane at the leading ``index`` (one integer per axis before YX)."""
        index = index if isinstance(index, tuple) else (index,)
        lead = self.axes[:-2]
        if len(index) != len(lead) or not all(isinstance(i, (int, np.integer)) for i in index):
            raise IndexError("FilteredPlanes gives whole YX planes: one integer per leading axis")
        pos = dict(zip(lead, (int(i) for i in index)))
        where = tuple(pos[a] for a in self.plan.loop_axes)
        with self._lock:
            if where != self._where:
                self._block = self._compute(where)
                self._where = where
            block = self._block
        inner = [a for a in self.axes if a in self.plan.block_axes and a not in "YX"]
        return block[tuple(pos[a] for a in inner)]

    def _compute(self, where: tuple[int, ...]) -> np.ndarray:
        if self.should_stop():
            raise Stopped
        block = _block_array(self.data, self.axes, self.plan, where)
        result = filter_block(
            block,
            self.method,
            self.params,
            gat=self.gat,
            spacing=self.spacing,
            noise_sigma=self.noise.sigma,
        )
        self.blocks_done += 1
        return cast_output(np.asarray(result), self.dtype)


def write_streamed(write: Any, planes: FilteredPlanes, label: str) -> Iterator[Event]:
    """Run ``write()`` (which reads ``planes``) in a thread; yields Progress per block and
    ``Done(written)``, or ``Done(None, stopped=True)`` when ``planes`` was stopped."""
    total = len(planes.plan.blocks)
    with ThreadPoolExecutor(1, thread_name_prefix="celldenoise-write") as pool:
        future = pool.submit(write)
        shown = -1
        while True:
            try:
                written = future.result(timeout=0.25)
                break
            except TimeoutError:
                pass
            except Stopped:
                yield Done(None, stopped=True)
                return
            if planes.blocks_done != shown:
                shown = planes.blocks_done
                yield Progress(shown, total, f"{label}: block {shown} of {total}")
    yield Progress(total, total, f"{label}: {total} block(s) written")
    yield Done(written)


__all__ = ["FilteredPlanes", "Stopped", "write_streamed"]
