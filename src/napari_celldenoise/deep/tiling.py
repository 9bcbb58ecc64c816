"""Tiled prediction with overlap: results equal the untiled prediction within float error.

Each tile is cut from the image *as if* the whole image had been padded once by mirror
reflection, and tile origins fall on multiples of the network's pooling factor. A network of
finite receptive radius ``r`` then gives, on every tile's core, exactly what it gives on the whole
image when ``overlap >= r`` (pooling grids line up, and zero padding at tile borders lies
outside the core's receptive field). Memory holds one tile at a time besides the output.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from ..jobs import Progress, ShouldStop, never_stop
from .data import DeepInputError


def reflect_index(index: np.ndarray, n: int) -> np.ndarray:
    """Map any integer positions onto ``[0, n)`` by mirror reflection without edge repeat."""
    index = np.asarray(index)
    if n == 1:
        return np.zeros_like(index)
    period = 2 * (n - 1)
    m = np.mod(index, period)
    return np.where(m < n, m, period - m)


def _round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def tile_windows(
    shape: tuple[int, ...],
    *,
    tile: int,
    overlap: int,
    align: int,
    border: int | tuple[int, ...] | None = None,
) -> list[tuple[tuple[slice, ...], tuple[np.ndarray, ...], tuple[slice, ...]]]:
    """Tiles of a spatial ``shape``: (output slice, input index arrays, core slice in window).

    Neighbouring tiles share ``overlap`` pixels of context. At the image's own edges the
    context is ``border`` (per axis, or one for all; ``overlap`` when None): the image is
    treated as if mirror-padded once by ``border`` (plus what makes its length a multiple of
    ``align``), and no window reaches past that padded image, so a tiled prediction equals the
    untiled one whatever ``border`` is, as long as ``overlap`` covers the receptive radius.
    """
    tile = _round_up(max(tile, align), align)
    overlap = _round_up(overlap, align) if overlap else 0
    if border is None:
        border = overlap
    borders = (border,) * len(shape) if isinstance(border, int) else tuple(border)
    per_axis = []
    for n, b in zip(shape, borders):
        b = _round_up(b, align) if b else 0
        lo, hi = -b, -b + _round_up(n + 2 * b, align)  # the padded image
        items = []
        for start in range(0, n, tile):
            stop = min(start + tile, n)
            first = max(start - overlap, lo)
            last = min(_round_up(stop + overlap - first, align) + first, hi)
            idx = reflect_index(np.arange(first, last), n)
            items.append((slice(start, stop), idx, slice(start - first, stop - first)))
        per_axis.append(items)
    windows = []
    for combo in np.ndindex(*(len(a) for a in per_axis)):
        parts = [per_axis[d][i] for d, i in enumerate(combo)]
        windows.append(
            (tuple(p[0] for p in parts), tuple(p[1] for p in parts), tuple(p[2] for p in parts))
        )
    return windows


def predict_tiled(
    predict: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    *,
    tile: int = 256,
    overlap: int = 32,
    align: int = 4,
    border: int | tuple[int, ...] | None = None,
    should_stop: ShouldStop = never_stop,
    out: np.ndarray | None = None,
    message: str = "predicting",
    plane: str = "",
    progress_offset: int = 0,
    progress_total: int | None = None,
) -> Iterator[Progress]:
    """Apply ``predict`` (spatial array -> same-shape array) tile by tile into ``out``.

    A generator of :class:`Progress` events; the result is written into ``out`` (float32 of
    ``image.shape``, created when None and then reachable as the generator's return value).
    ``image`` may be a dask array: only each tile's window is computed (and checked for NaN;
    ``plane`` names the image in that message, e.g. "plane 5/6").
    """
    shape = tuple(int(s) for s in image.shape)
    if out is None:
        out = np.empty(shape, np.float32)
    windows = tile_windows(shape, tile=tile, overlap=overlap, align=align, border=border)
    total = progress_total or len(windows)
    for k, (out_sl, idx, core) in enumerate(windows):
        if should_stop():
            return out
        window = image[np.ix_(*idx)] if not hasattr(image, "dask") else _dask_window(image, idx)
        window = np.asarray(window, np.float32)
        _check_window(window, idx, plane)
        result = np.asarray(predict(window))
        out[out_sl] = result[core]
        yield Progress(progress_offset + k + 1, total, message)
    return out


def _check_window(window: np.ndarray, idx: tuple[np.ndarray, ...], plane: str) -> None:
    """Refuse a window holding NaN/inf, naming one such pixel (image coordinates)."""
    bad = ~np.isfinite(window)
    if bad.any():
        first = np.unravel_index(int(np.argmax(bad)), bad.shape)
        names = ", ".join("zyx"[-window.ndim :])
        at = ", ".join(str(int(i[k])) for i, k in zip(idx, first))
        raise DeepInputError(
            f"{plane or 'the image'} holds NaN or infinite values (one at ({names}) = ({at})): "
            "fill or crop them before predicting"
        )


def _dask_window(image, idx: tuple[np.ndarray, ...]) -> np.ndarray:
    lo = [int(i.min()) for i in idx]
    hi = [int(i.max()) + 1 for i in idx]
    block = np.asarray(image[tuple(slice(a, b) for a, b in zip(lo, hi))].compute())
    return block[np.ix_(*(i - a for i, a in zip(idx, lo)))]


def run_tiled(
    predict: Callable[[np.ndarray], np.ndarray], image: np.ndarray, **kwargs
) -> np.ndarray:
    """Drain :func:`predict_tiled` and return the output (for scripts and tests)."""
    gen = predict_tiled(predict, image, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
