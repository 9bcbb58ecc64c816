"""Figures for the noise fit (variance against mean) and the auto-tune loss curve.

matplotlib is imported lazily (it comes with the ``napari`` extra); the functions draw on a given
Axes so the docks can reuse them on their Qt canvas, and ``save_*`` render with the Agg canvas
(no GUI backend is touched).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .autotune import TuneResult
from .noise import NoiseFit


def draw_noise_fit(ax: Any, fit: NoiseFit, title: str = "") -> None:
    """Binned (mean, variance) points, rejected bins hollow, and the fitted line."""
    ax.clear()
    used = fit.used if fit.used.size == fit.means.size else np.ones(fit.means.size, bool)
    ax.plot(fit.means[used], fit.variances[used], "o", ms=4, label="bins")
    if (~used).any():
        ax.plot(fit.means[~used], fit.variances[~used], "o", ms=4, mfc="none", label="rejected")
    if fit.means.size:
        lo, hi = float(fit.means.min()), float(fit.means.max())
        xs = np.linspace(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo), 100)
        ax.plot(xs, fit.variance(xs), "-", lw=1.5, label=f"{fit.a:.3g} x mean + {fit.b:.3g}")
    ax.set_xlabel("mean intensity")
    ax.set_ylabel("noise variance")
    ax.set_title(title or f"{fit.model} (r2 {fit.r2:.3f})", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")


NO_DATA = "no data yet"


def draw_empty(ax: Any, text: str = NO_DATA, color: str | None = None) -> None:
    """An empty plot: a line of text instead of axes with made-up 0-1 ticks."""
    ax.clear()
    ax.set_axis_off()
    ax.text(
        0.5,
        0.5,
        text,
        ha="center",
        va="center",
        transform=ax.transAxes,
        fontsize=9,
        color=color or "0.5",
        wrap=True,
    )


def readable_log_axis(axis: Any, lo: float, hi: float) -> None:
    """Few, plain labels on a log axis: 1-2-5 steps within two decades, decades beyond.

    matplotlib's defaults label minor ticks as ``2x10^0 3x10^0 ...`` when the axis spans about
    one decade; on a dock-sized plot those labels run into each other.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    decades = np.log10(hi / lo) if lo > 0 and hi > lo else 0.0
    subs = (1.0, 2.0, 5.0) if decades <= 2 else (1.0,)
    if decades > 5:
        subs = (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=8))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def draw_loss_curve(ax: Any, result: TuneResult) -> None:
    """J-invariant loss against the parameter, the chosen value marked."""
    ax.clear()
    values = np.asarray(result.values, dtype=float)
    ax.plot(values, result.losses, "o-", ms=4)
    ax.axvline(float(result.best), color="C3", lw=1, ls="--")
    ax.set_xlabel(result.param)
    ax.set_ylabel("self-supervised loss")
    ax.set_title(f"{result.method}: {result.param} = {_fmt(result.best)}", fontsize=9)
    if values.size > 2 and values.min() > 0 and values.max() / values.min() > 8:
        ax.set_xscale("log")
        readable_log_axis(ax.xaxis, float(values.min()), float(values.max()))


def _save(draw, path: str | os.PathLike, *args: Any, **kwargs: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.6), dpi=110, tight_layout=True)
    FigureCanvasAgg(fig)
    draw(fig.add_subplot(1, 1, 1), *args, **kwargs)
    fig.savefig(os.fspath(path))
    return os.fspath(path)


def save_noise_plot(fit: NoiseFit, path: str | os.PathLike, title: str = "") -> str:
    return _save(draw_noise_fit, path, fit, title=os.path.basename(title) if title else "")


def save_loss_plot(result: TuneResult, path: str | os.PathLike) -> str:
    return _save(draw_loss_curve, path, result)


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
