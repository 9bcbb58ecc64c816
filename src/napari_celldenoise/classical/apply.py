"""Apply a method to whole images and stacks: plane by plane or as true 3D blocks.

``denoise_job`` is the one implementation used by the command line (drained with
:func:`napari_celldenoise.jobs.run`), the dock's "Apply to stack" (in a thread worker with
Cancel) and the benchmarks. Results are in the input's intensity units; a variance-stabilising
transform (``vst``) is applied around each block when asked for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import numpy as np

from ..jobs import Done, Event, Log, Progress, ShouldStop, never_stop
from .noise import NoiseFit, estimate_noise, estimate_sigma
from .registry import Method, get_method
from .vst import GAT

logger = logging.getLogger(__name__)

SPATIAL_2D = "YX"


@dataclass
class Plan:
    """How an array is cut into blocks the filter sees."""

    block_axes: str  # e.g. "YX" or "ZYX" (or "TYX" for spatio-temporal filtering)
    loop_axes: str  # the other axes, iterated
    blocks: list[tuple[int, ...]] = field(default_factory=list)  # indices along loop_axes

    def block_shape(self, shape: tuple[int, ...], axes: str) -> tuple[int, ...]:
        """The shape of each block of an array of ``shape`` and ``axes``."""
        return tuple(n for a, n in zip(axes.upper(), shape) if a in self.block_axes)

    def index(self, axes: str, where: tuple[int, ...]) -> tuple[Any, ...]:
        pos = dict(zip(self.loop_axes, where))
        return tuple(pos[a] if a in pos else slice(None) for a in axes)


def plan_blocks(shape: tuple[int, ...], axes: str, three_d: bool = False) -> Plan:
    """Blocks of ``YX`` planes, or of ``ZYX`` (``TYX`` without Z) volumes when ``three_d``."""
    axes = axes.upper()
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"image axes {axes!r} have no Y and X")
    block = SPATIAL_2D
    if three_d:
        third = "Z" if "Z" in axes else ("T" if "T" in axes else "")
        block = third + block
    loop = "".join(a for a in axes if a not in block)
    sizes = [shape[axes.index(a)] for a in loop]
    blocks = list(product(*(range(n) for n in sizes))) if loop else [()]
    ordered = "".join(a for a in axes if a in block)  # block axes in array order
    return Plan(ordered, loop, blocks)


def spacing_for(plan: Plan, scale: Mapping[str, float] | None) -> tuple[float, ...] | None:
    """Physical step per block axis (T counts as in-plane pixels: no physical ratio)."""
    if not scale or len(plan.block_axes) < 3:
        return None
    ref = float(scale.get("X", 1.0) or 1.0)
    return tuple(ref if a == "T" else float(scale.get(a, ref) or ref) for a in plan.block_axes)


def _block_array(data: Any, axes: str, plan: Plan, where: tuple[int, ...]) -> np.ndarray:
    """The block at ``where`` with its axes in ``plan.block_axes`` order (a numpy array)."""
    sub = data[plan.index(axes, where)]
    return np.asarray(sub)


@dataclass
class NoiseInfo:
    """Noise facts of a whole image, computed once: sigma for defaults, a fit for the VST."""

    sigma: float
    fit: NoiseFit | None = None

    @property
    def gat(self) -> GAT:
        if self.fit is None:
            return GAT(0.0, max(self.sigma, 1e-6) ** 2)
        return self.fit.gat()


def sample_planes(data: Any, axes: str, n: int = 8) -> np.ndarray:
    """Up to ``n`` evenly spaced YX planes of ``data`` stacked as (n, Y, X) (for estimates)."""
    plan = plan_blocks(tuple(data.shape), axes)
    idx = np.unique(np.linspace(0, len(plan.blocks) - 1, min(n, len(plan.blocks))).round())
    out = None
    for k, i in enumerate(idx):  # one plane read at a time, into the float32 result
        plane = _block_array(data, axes, plan, plan.blocks[int(i)])
        if out is None:
            out = np.empty((len(idx), *plane.shape), np.float32)
        out[k] = plane
    return out


def noise_info(data: Any, axes: str, *, vst: bool = False) -> NoiseInfo:
    """Gaussian sigma of the image, and its Poisson-Gaussian fit when a VST is wanted."""
    planes = sample_planes(data, axes)
    sigma = estimate_sigma(planes)
    fit = None
    if vst:
        try:
            fit = estimate_noise(planes)
        except ValueError:
            fit = None
    return NoiseInfo(sigma if sigma > 0 else 1.0, fit)


def output_dtype(dtype: np.dtype, keep_dtype: bool = False) -> np.dtype:
    """float stays float (float16 becomes float32); integers become float32 unless kept."""
    dtype = np.dtype(dtype)
    if keep_dtype:
        return dtype
    if dtype == np.float64:
        return dtype
    return np.dtype(np.float32)


def cast_output(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``values`` as ``dtype``: rounded and clipped to the range of integer types."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    if dtype == np.bool_:
        return values > 0.5
    return values.astype(dtype, copy=False)


def filter_block(
    block: np.ndarray,
    method: Method,
    params: Mapping[str, Any],
    *,
    gat: GAT | None = None,
    exact_inverse: bool = True,
    spacing: Any = None,
    noise_sigma: float | None = None,
) -> np.ndarray:
    """One block through ``method`` (inside ``gat`` when given), in input units."""
    if gat is not None and method.impulse:  # impulse detectors stabilise by themselves
        return method(block, params, spacing=spacing, gat=gat)
    if gat is not None:
        t = gat.forward(block)
        out = method(t, params, spacing=spacing, noise_sigma=1.0)
        return gat.inverse(out, exact=exact_inverse)
    return method(block, params, spacing=spacing, noise_sigma=noise_sigma)


def denoise_job(
    data: Any,
    axes: str,
    method: str | Method,
    params: Mapping[str, Any] | None = None,
    *,
    three_d: bool = False,
    vst: bool | GAT = False,
    scale: Mapping[str, float] | None = None,
    noise: NoiseInfo | None = None,
    out_dtype: Any = None,
    exact_inverse: bool = True,
    should_stop: ShouldStop = never_stop,
) -> Iterator[Event]:
    """Filter every block of ``data``; yields Progress per block and Done(result).

    ``params`` may be partial: the rest take their (noise-scaled) defaults. The result (an
    array of ``data``'s shape, ``out_dtype`` or float32/float64) is in ``Done.result``; when
    stopped early the Done carries ``stopped=True`` and the partial result.
    """
    m = method if isinstance(method, Method) else get_method(method)
    axes = axes.upper()
    plan = plan_blocks(tuple(data.shape), axes, three_d)
    if three_d and len(plan.block_axes) < 3:
        yield Log("no Z or T axis: filtering the image in 2D", "warning")
    gat = vst if isinstance(vst, GAT) else None
    if noise is None:
        noise = noise_info(data, axes, vst=bool(vst) and gat is None)
    if vst and gat is None:
        gat = noise.gat
    sigma = 1.0 if gat is not None and not m.impulse else noise.sigma
    resolved = m.resolve(params or {}, sigma=sigma)
    if gat is not None:
        yield Log(f"VST: generalized Anscombe with a={gat.a:.4g}, b={gat.b:.4g}")
    m.check_size(plan.block_shape(tuple(data.shape), axes), resolved)  # before any work
    dtype = np.dtype(out_dtype) if out_dtype is not None else output_dtype(data.dtype)
    out = np.zeros(tuple(data.shape), dtype=dtype)
    spacing = spacing_for(plan, scale)
    total = len(plan.blocks)
    start = time.monotonic()
    for i, where in enumerate(plan.blocks):
        if should_stop():
            yield Done(result=out, stopped=True)
            return
        block = _block_array(data, axes, plan, where)
        res = filter_block(
            block,
            m,
            resolved,
            gat=gat,
            exact_inverse=exact_inverse,
            spacing=spacing,
            noise_sigma=noise.sigma,
        )
        out[plan.index(axes, where)] = cast_output(np.asarray(res), dtype)
        label = ", ".join(f"{a}={j}" for a, j in zip(plan.loop_axes, where))
        yield Progress(i + 1, total, f"{m.name} {label}".strip())
    yield Log(f"{m.name}: {total} block(s) in {time.monotonic() - start:.2f} s")
    yield Done(result=out)


def denoise(data: Any, axes: str, method: str | Method, params=None, **kwargs: Any) -> np.ndarray:
    """:func:`denoise_job` run to the end; returns the filtered array."""
    from ..jobs import run

    return run(denoise_job(data, axes, method, params, **kwargs))


def describe_params(method: Method, params: Mapping[str, Any]) -> str:
    """``"sigma=1.2, size=5"``: for layer names and logs."""
    parts = []
    for p in method.params:
        if p.name in params:
            v = params[p.name]
            parts.append(f"{p.name}={v:.3g}" if isinstance(v, float) else f"{p.name}={v}")
    return ", ".join(parts)
