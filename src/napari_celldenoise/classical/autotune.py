"""Choose a filter's main parameter without ground truth: the Noise2Self J-invariant loss.

Batson and Royer (2019, "Noise2Self: blind denoising by self-supervision") show that for a
J-invariant denoiser ``f`` (its output on a set of pixels J does not depend on the input on J) and
noise independent between pixels, ``E||f(x) - x||^2 = E||f(x) - y||^2 + E||x - y||^2``: the loss
against the *noisy* image ranks parameters like the loss against the unknown clean one.

Any filter is made J-invariant on a grid of pixels J (every ``stride``-th pixel in Y and X, one
phase of the grid at a time): the pixels of J are replaced by the mean of their 8 neighbours
(weights 1 on edges, 1/2 on corners, the interpolation of the paper's reference code), the filter
runs, and its output is kept on J only. The self-supervised loss is the mean squared difference
between these outputs and the noisy pixels over the phases used. The main parameter is searched
on a grid over its slider range and refined around the best value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..jobs import Done, Event, Log, Progress, ShouldStop, never_stop
from .params import Param, ParamError, Value
from .registry import Method, get_method
from .vst import GAT

_DONUT = np.array([[0.5, 1.0, 0.5], [1.0, 0.0, 1.0], [0.5, 1.0, 0.5]], np.float32) / 6.0


@dataclass
class TuneResult:
    """The chosen value of ``param`` and the loss curve behind it."""

    method: str
    param: str
    best: Value
    values: list[Value] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    pixels: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "param": self.param,
            "best": self.best,
            "values": list(self.values),
            "losses": [float(v) for v in self.losses],
            "seconds": round(self.seconds, 3),
            "pixels": self.pixels,
        }


def interpolate_neighbours(x: np.ndarray) -> np.ndarray:
    """Mean of the 8 in-plane neighbours of every pixel (corners half weight), per YX plane."""
    x = np.asarray(x, dtype=np.float32)
    kernel = _DONUT.reshape((1,) * (x.ndim - 2) + _DONUT.shape)
    return ndi.convolve(x, kernel, mode="mirror")


def random_neighbours(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each pixel replaced by one of its 8 in-plane neighbours chosen at random (mirrored edges).

    Unlike the neighbour mean, this keeps the noise level of the replaced pixels, so that the
    filter sees the same statistics on the masked grid as elsewhere (the mean lowers their noise
    to 14 % of its variance, and the tuned smoothing comes out slightly too weak).
    """
    x = np.asarray(x, dtype=np.float32)
    pad = [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)]
    padded = np.pad(x, pad, mode="reflect")
    rng = np.random.default_rng(seed)
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    choice = rng.integers(0, 8, x.shape[-2:])
    out = np.empty_like(x)
    h, w = x.shape[-2:]
    for k, (dy, dx) in enumerate(offsets):
        sel = choice == k
        shifted = padded[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        out[..., sel] = shifted[..., sel]
    return out


def grid_phases(stride: int, n: int) -> list[tuple[int, int]]:
    """``n`` of the ``stride**2`` phases of the mask grid (a fixed pseudo-random choice)."""
    phases = [(i, j) for i in range(stride) for j in range(stride)]
    if n >= len(phases):
        return phases
    order = np.random.default_rng(0).permutation(len(phases))[:n]
    return [phases[i] for i in sorted(order)]


def j_invariant_loss(
    fn: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    *,
    stride: int = 4,
    n_phases: int = 4,
    interp: np.ndarray | None = None,
    target: np.ndarray | None = None,
) -> float:
    """Self-supervised loss of ``fn`` on ``x``: mean (J-invariant output - x)^2 over the masks.

    ``target`` (default ``x``) is what the outputs are compared with: with a VST, ``x`` is the
    stabilised image, ``fn`` ends with the inverse transform and ``target`` holds the noisy
    intensities, so that the loss estimates the error in intensity units (what PSNR measures);
    it stays an unbiased estimate (up to the noise variance) because ``target`` on the masked
    pixels is independent of ``fn``'s input there and has the right mean.
    """
    x = np.asarray(x, dtype=np.float32)
    target = x if target is None else np.asarray(target, dtype=np.float32)
    interp = interpolate_neighbours(x) if interp is None else interp
    yy, xx = np.indices(x.shape[-2:])
    total, count = 0.0, 0
    for py, px in grid_phases(stride, n_phases):
        mask2 = (yy % stride == py) & (xx % stride == px)
        mask = np.broadcast_to(mask2, x.shape)
        masked = np.where(mask, interp, x)
        out = np.asarray(fn(masked), dtype=np.float64)
        diff = out[mask] - target[mask]
        total += float(np.sum(diff * diff))
        count += diff.size
    return total / max(count, 1)


def central_crop(x: np.ndarray, max_pixels: int) -> np.ndarray:
    """The central YX window of ``x`` with at most ``max_pixels`` pixels per plane."""
    h, w = x.shape[-2:]
    if h * w <= max_pixels:
        return x
    side = int(np.sqrt(max_pixels))
    ch, cw = min(h, side), min(w, max(side, max_pixels // max(min(h, side), 1)))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return x[..., y0 : y0 + ch, x0 : x0 + cw]


def _refine(param: Param, values: list[Value], losses: list[float], sigma: float) -> list[Value]:
    """Values between the best grid point and its neighbours (not yet tried)."""
    i = int(np.argmin(losses))
    lo_i, hi_i = max(i - 1, 0), min(i + 1, len(values) - 1)
    new: list[Value] = []
    if param.kind in ("int", "odd"):
        step = 2 if param.kind == "odd" else 1
        lo, hi = int(values[lo_i]), int(values[hi_i])
        cand = list(range(lo, hi + 1, step))
        new = [v for v in cand if v not in values and param._ok(v)]
        if len(new) > 4:
            new = [new[j] for j in np.linspace(0, len(new) - 1, 4).round().astype(int)]
        return sorted(set(new))
    for j in (lo_i, hi_i):
        if j == i:
            continue
        a, b = float(values[i]), float(values[j])
        mids = (
            np.sqrt(a * b) * np.array([1.0])
            if param.log and a > 0 and b > 0
            else np.array([(a + b) / 2])
        )
        quarter = np.sqrt(a * mids[0]) if param.log and a > 0 else (a + mids[0]) / 2
        new.extend([float(quarter), float(mids[0])])
    return [v for v in new if param._ok(v)]


def _vertex(param: Param, values: list[Value], losses: list[float]) -> list[Value]:
    """The minimum of a parabola through the best point and its two neighbours (floats only).

    Fitted in log(value) for log-scaled parameters; nothing when the three points are not convex
    or the vertex is within 1 % of a tried value.
    """
    if param.kind != "float" or len(values) < 3:
        return []
    i = int(np.clip(np.argmin(losses), 1, len(values) - 2))
    xs = np.array(values[i - 1 : i + 2], dtype=float)
    if param.log:
        if np.any(xs <= 0):
            return []
        xs = np.log(xs)
    ys = np.array(losses[i - 1 : i + 2], dtype=float)
    a, b, _ = np.polyfit(xs, ys, 2)
    if a <= 0:
        return []
    x = float(np.clip(-b / (2 * a), xs[0], xs[2]))
    v = float(np.exp(x)) if param.log else x
    if any(abs(v - float(t)) <= 0.01 * max(abs(float(t)), 1e-12) for t in values):
        return []
    return [v] if param._ok(v) else []


def autotune_job(
    x: np.ndarray,
    method: str | Method,
    params: Mapping[str, Any] | None = None,
    *,
    param: str | None = None,
    values: list[Value] | None = None,
    noise_sigma: float | None = None,
    gat: GAT | None = None,
    n_grid: int = 8,
    refine: bool = True,
    stride: int = 4,
    n_phases: int = 4,
    max_pixels: int = 512 * 512,
    spacing: Any = None,
    replacement: str | None = None,
    should_stop: ShouldStop = never_stop,
) -> Iterator[Event]:
    """Search ``param`` (default: the method's main parameter) by the J-invariant loss.

    ``x`` is one 2D plane or 3D block in intensity units; with ``gat`` the search runs in the
    stabilised domain (noise sigma 1). Other parameters are taken from ``params`` or their
    defaults. ``replacement`` of the masked pixels: ``"mean"`` of the 8 neighbours (the paper's
    choice) or a ``"random"`` neighbour (keeps their noise level; better for methods told the
    noise level, such as BM3D); default: the method's ``tune_replacement``. Yields Progress per
    evaluated value and ``Done(TuneResult)``.
    """
    m = method if isinstance(method, Method) else get_method(method)
    name = param or m.main
    if name is None:
        raise ParamError(
            f"auto-tune is not available for {m.name} (it repairs impulses; set its threshold)"
        )
    spec = m.param(name)
    if spec.kind in ("choice", "bool"):
        raise ParamError(f"{m.name}.{name} is a {spec.kind} parameter and cannot be tuned")
    start = time.monotonic()
    x = central_crop(np.asarray(x, dtype=np.float32), max_pixels)
    if gat is not None:
        x = gat.forward(x)
        sigma = 1.0
    else:
        from .noise import estimate_sigma

        sigma = float(noise_sigma) if noise_sigma else estimate_sigma(x)
        sigma = sigma if sigma > 0 else 1.0
    base = m.resolve({k: v for k, v in (params or {}).items() if k != name}, sigma=sigma)
    m.check_size(x.shape, base)  # before the search, not in its first evaluation
    grid = list(values) if values is not None else spec.search_grid(sigma, n_grid)
    how = replacement or m.tune_replacement
    if how not in ("mean", "random"):
        raise ParamError(f"replacement must be 'mean' or 'random', got {how!r}")
    interp = interpolate_neighbours(x) if how == "mean" else random_neighbours(x)
    tried: dict[Any, float] = {}

    def evaluate(v: Value) -> float:
        p = dict(base)
        p[name] = spec.check(v)

        def fn(img: np.ndarray) -> np.ndarray:
            return m(img, p, spacing=spacing, noise_sigma=sigma)

        # with a VST the loss is taken in the stabilised domain: in intensity units the few
        # bright pixels dominate and near-identity filters (whose J-invariant versions are
        # plain neighbour interpolations) win, which the final filter is not (checked on FMD)
        return j_invariant_loss(fn, x, stride=stride, n_phases=n_phases, interp=interp)

    planned = len(grid) + (4 if refine and values is None else 0)
    done = 0
    for v in grid:
        if should_stop():
            yield Done(result=None, stopped=True)
            return
        tried[v] = evaluate(v)
        done += 1
        yield Progress(done, planned, f"{m.name} {name}={_fmt(v)}: loss {tried[v]:.5g}")
    if refine and values is None and len(tried) >= 2:
        keys = sorted(tried)
        extra = _refine(spec, keys, [tried[k] for k in keys], sigma)
        for round_ in range(2):  # grid refinement, then the vertex of a parabola
            for v in extra:
                if should_stop():
                    yield Done(result=None, stopped=True)
                    return
                if v in tried:
                    continue
                tried[v] = evaluate(v)
                done += 1
                yield Progress(
                    done, max(planned, done), f"{m.name} {name}={_fmt(v)}: loss {tried[v]:.5g}"
                )
            keys = sorted(tried)
            extra = _vertex(spec, keys, [tried[k] for k in keys]) if round_ == 0 else []
    keys = sorted(tried)
    losses = [tried[k] for k in keys]
    best = keys[int(np.argmin(losses))]
    result = TuneResult(
        m.name, name, best, keys, losses, time.monotonic() - start, int(np.prod(x.shape))
    )
    yield Log(
        f"auto-tune {m.name}: {name}={_fmt(best)} (J-invariant loss {min(losses):.5g}, "
        f"{len(keys)} values, {result.seconds:.1f} s)"
    )
    yield Done(result=result)


def autotune(x: np.ndarray, method: str | Method, params=None, **kwargs: Any) -> TuneResult:
    """:func:`autotune_job` run to the end."""
    from ..jobs import run

    return run(autotune_job(x, method, params, **kwargs))


def _fmt(v: Value) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
