"""A classical filter from file to file: read, estimate the noise, auto-tune, filter, write.

:func:`run_filter_spec` is what ``celldenoise filter`` runs and what a :class:`FilterSpec`
recorded by the Classical dock replays. The output is an OME-TIFF with the input's shape, axes
and scale, in its intensity units, carrying the spec that made it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..jobs import Done, Event, Log, ShouldStop, never_stop
from ..jobs.compose import forward
from ..jobs.specs import FilterSpec, SpecError
from .apply import denoise_job, noise_info, output_dtype, plan_blocks, spacing_for
from .autotune import TuneResult, autotune_job
from .params import ParamError
from .registry import get_method
from .vst import GAT


@dataclass(frozen=True)
class FilterResult:
    """What a filter run wrote and with which settings (the CLI's ``--json`` object)."""

    output: str
    method: str
    params: dict[str, Any]
    gat: GAT | None
    three_d: bool
    tune: TuneResult | None
    noise_sigma: float
    shape: tuple[int, ...]
    axes: str
    dtype: np.dtype
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able facts, in the order ``celldenoise filter --json`` prints them."""
        return {
            "output": self.output,
            "method": self.method,
            "params": self.params,
            "vst": None if self.gat is None else {"a": self.gat.a, "b": self.gat.b},
            "three_d": self.three_d,
            "auto_tune": None if self.tune is None else self.tune.to_dict(),
            "noise_sigma": self.noise_sigma,
            "shape": list(self.shape),
            "axes": self.axes,
            "dtype": str(self.dtype),
            "seconds": round(self.seconds, 3),
        }


def run_filter_spec(spec: FilterSpec, *, should_stop: ShouldStop = never_stop) -> Iterator[Event]:
    """Run ``spec``; yields progress and logs, ``Done(FilterResult)`` last.

    Nothing is written when stopped (``Done(None, stopped=True)``).

    Raises
    ------
    SpecError
        For an input the filters cannot take (RGB, non-numeric pixels) or an auto-tune that
        cannot run; :class:`~..io.errors.ImageReadError` for a bad file.
    """
    from ..io import write_ome_tiff
    from ..jobs.provenance import provenance_for

    cfg = spec.config
    method = get_method(cfg.method)
    given: dict[str, Any] = dict(cfg.params)
    source = spec.input.path
    image = spec.input.read()
    if image.rgb:
        raise SpecError(f"{source}: RGB images are not supported; split the colours first")
    if not np.issubdtype(image.dtype, np.number) or np.issubdtype(image.dtype, np.complexfloating):
        raise SpecError(f"{source}: cannot filter {image.dtype} data")
    plan = plan_blocks(image.shape, image.axes, cfg.three_d)
    try:  # before the noise estimate and the auto-tune
        method.check_size(plan.block_shape(image.shape, image.axes), method.resolve(given))
    except ParamError as exc:
        raise SpecError(str(exc)) from None
    start = time.monotonic()
    gat = GAT(float(cfg.noise_a), float(cfg.noise_b)) if cfg.noise_a is not None else None
    info = noise_info(image.data, image.axes, vst=cfg.vst and gat is None)
    if cfg.vst and gat is None:
        gat = info.gat
        if info.fit is not None:
            yield Log(f"noise: {info.fit.model}, a={info.fit.a:.4g}, b={info.fit.b:.4g}")
    tune = None
    if cfg.auto_tune:
        where = plan.blocks[len(plan.blocks) // 2]
        block = np.asarray(image.data[plan.index(image.axes, where)], dtype=np.float32)
        try:
            done = yield from forward(
                autotune_job(
                    block,
                    method,
                    given,
                    gat=gat if not method.impulse else None,
                    noise_sigma=info.sigma,
                    max_pixels=512 * 512 if block.ndim == 2 else 128 * 128,
                    spacing=spacing_for(plan, image.scale),
                    should_stop=should_stop,
                )
            )
        except ParamError as exc:
            raise SpecError(str(exc)) from None
        if done.stopped:
            yield Done(None, stopped=True)
            return
        tune = done.result
        given[tune.param] = tune.best
        curve = ", ".join(f"{_fmt(v)}:{loss:.4g}" for v, loss in zip(tune.values, tune.losses))
        yield Log(f"loss curve ({tune.param}:loss): {curve}")
    out_dtype = output_dtype(image.dtype, cfg.keep_dtype)
    provenance = provenance_for(spec, source)
    sigma = 1.0 if gat is not None and not method.impulse else info.sigma
    if image.lazy and image.axes.endswith("YX"):  # block by block into the file
        from .stream import FilteredPlanes, write_streamed

        planes = FilteredPlanes(
            image.data,
            image.axes,
            plan,
            method,
            method.resolve(given, sigma=sigma),
            gat=gat,
            noise=info,
            dtype=out_dtype,
            scale=image.scale,
            should_stop=should_stop,
        )
        if cfg.three_d and len(plan.block_axes) < 3:
            yield Log("no Z or T axis: filtering the image in 2D", "warning")
        if gat is not None:
            yield Log(f"VST: generalized Anscombe with a={gat.a:.4g}, b={gat.b:.4g}")
        yield Log(f"{source}: opened lazily, filtered and written block by block")
        done = yield from forward(
            write_streamed(
                lambda: write_ome_tiff(
                    spec.output,
                    image.with_data(planes, lazy=True),
                    overwrite=spec.overwrite,
                    inputs=[source],
                    provenance=provenance,
                ),
                planes,
                method.name,
            )
        )
        if done.stopped:
            yield Done(None, stopped=True)
            return
        written = done.result
    else:
        written = yield from _filter_in_memory(
            spec, image, method, given, gat, info, out_dtype, provenance, should_stop
        )
        if written is None:
            yield Done(None, stopped=True)
            return
    yield Done(
        FilterResult(
            output=written,
            method=method.name,
            params=method.resolve(given, sigma=sigma),
            gat=gat,
            three_d=bool(cfg.three_d and len(plan.block_axes) == 3),
            tune=tune,
            noise_sigma=info.sigma,
            shape=image.shape,
            axes=image.axes,
            dtype=out_dtype,
            seconds=time.monotonic() - start,
        )
    )


def _filter_in_memory(spec, image, method, given, gat, info, out_dtype, provenance, should_stop):
    """Filter the whole image, then write it; the path written (None when stopped)."""
    from ..io import write_ome_tiff

    cfg = spec.config
    done = yield from forward(
        denoise_job(
            image.data,
            image.axes,
            method,
            given,
            three_d=cfg.three_d,
            vst=gat if gat is not None else False,
            scale=image.scale,
            noise=info,
            out_dtype=out_dtype,
            should_stop=should_stop,
        )
    )
    if done.stopped:  # no half-filtered file
        return None
    return write_ome_tiff(
        spec.output,
        image.with_data(done.result),
        overwrite=spec.overwrite,
        inputs=[spec.input.path],
        provenance=provenance,
    )


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


__all__ = ["FilterResult", "run_filter_spec"]
