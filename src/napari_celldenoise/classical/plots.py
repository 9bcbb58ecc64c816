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
