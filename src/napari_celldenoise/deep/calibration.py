"""Self-supervised affine calibration of a blind-spot network's output.

A short N2V training often ends with the right structure but the wrong gain or offset (on FMD
confocal after 80 steps: a slope of 0.83 costs 5 dB of PSNR). A blind prediction ``p`` of a
pixel (made without seeing it) is independent of that pixel's zero-mean noise, so regressing
the noisy value ``y`` on ``p`` estimates the same line as regressing the clean value on ``p``:
``E[y | p] = E[x | p]`` (the argument of Batson & Royer, "Noise2Self: Blind Denoising by
Self-Supervision", ICML 2019, that a J-invariant function's self-supervised loss is its
supervised loss plus the noise variance). The line is fitted on validation patches with the
pixels hidden the way the network was trained (replaced by a random neighbour, and a structN2V
mask's other pixels randomised), and applied to every prediction as ``alpha * p + beta``.
The PG blind-spot network's prior mean is blind at every pixel by construction, so its line is
fitted on whole patches without hiding anything.

Numpy only: the caller runs the network. The lines live in the model folder's
``calibration.json`` as ``{weights file name: [alpha, beta]}`` (normalised units).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

CALIBRATION = "calibration.json"

# a slope outside this range means the fit failed (no structure to learn): keep the identity
_SLOPE_RANGE = (0.2, 5.0)


def hide_points(
    x: np.ndarray,
    rng: np.random.Generator,
    *,
    spacing: int | tuple[int, ...] = 8,
    radius: int = 5,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """One hidden pixel per ``spacing``-sized cell of every sample of ``x`` (``N, [Z,] Y, X``).

    ``spacing`` is one side for all axes or one per axis.

    Each hidden pixel takes the value of a random other pixel within ``radius``; with a
    structN2V ``mask`` (odd sides, centred on the pixel) its other 1-pixels get uniform values
    in [-2, 2) as in training. Returns the manipulated copy and the hidden pixels' indices.
    """
    x = np.asarray(x, np.float32)
    spatial = x.shape[1:]
    sides = np.broadcast_to(np.asarray(spacing, int), (len(spatial),))
    grids = [np.arange(0, s - d + 1, d) for s, d in zip(spatial, sides)]
    if any(g.size == 0 for g in grids):
        raise ValueError(f"samples of shape {spatial} are smaller than the spacing {spacing}")
    cells = np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, len(spatial))
    n = len(x) * len(cells)
    sample = np.repeat(np.arange(len(x)), len(cells))
    pos = np.tile(cells, (len(x), 1)) + rng.integers(0, sides, (n, len(spatial)))
    shift = rng.integers(-radius, radius + 1, (n, len(spatial)))
    still = ~shift.any(axis=1)
    shift[still, -1] = rng.choice([-1, 1], int(still.sum()))
    source = np.clip(pos + shift, 0, np.array(spatial) - 1)
    out = x.copy()
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.ndim != len(spatial):
            raise ValueError(f"a {mask.ndim}D mask for {len(spatial)}D samples")
        centre = np.array(mask.shape) // 2
        offsets = np.argwhere(mask) - centre
        offsets = offsets[offsets.any(axis=1)]
        for off in offsets:
            where = np.clip(pos + off, 0, np.array(spatial) - 1)
            out[(sample, *where.T)] = rng.uniform(-2, 2, n).astype(np.float32)
    out[(sample, *pos.T)] = x[(sample, *source.T)]
    return out, (sample, *pos.T)


def fit_affine(target: np.ndarray, blind: np.ndarray) -> tuple[float, float]:
    """Least squares ``(alpha, beta)`` of ``target = alpha blind + beta``, or the identity."""
    target = np.asarray(target, np.float64).ravel()
    blind = np.asarray(blind, np.float64).ravel()
    var = blind.var()
    if blind.size < 10 or not np.isfinite(var) or var <= 0:
        return 1.0, 0.0
    alpha = float(np.mean((blind - blind.mean()) * (target - target.mean())) / var)
    if not (np.isfinite(alpha) and _SLOPE_RANGE[0] <= alpha <= _SLOPE_RANGE[1]):
        return 1.0, 0.0
    return alpha, float(target.mean() - alpha * blind.mean())


def calibrate(
    predict: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    *,
    rounds: int = 8,
    spacing: int | tuple[int, ...] = 8,
    radius: int = 5,
    mask: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[float, float]:
    """``(alpha, beta)`` for ``predict`` (samples in, same shape out) on the samples ``x``.

    ``rounds`` independent hidings of one pixel per ``spacing`` cell: on 50 validation patches
    of 64x64 and 8 rounds, about 16,000 pixels.
    """
    rng = np.random.default_rng(seed)
    targets, blinds = [], []
    for _ in range(rounds):
        hidden, where = hide_points(x, rng, spacing=spacing, radius=radius, mask=mask)
        targets.append(np.asarray(x)[where])
        blinds.append(np.asarray(predict(hidden))[where])
    return fit_affine(np.concatenate(targets), np.concatenate(blinds))


def read_lines(folder: Any) -> dict[str, list[float]]:
    """A model folder's ``{weights file name: [alpha, beta]}`` (empty when never calibrated)."""
    return folder.read_json(CALIBRATION) if folder.file(CALIBRATION).is_file() else {}


def describe(line: tuple[float, float] | list[float], variable: str = "x") -> str:
    """``"0.974 x - 0.007"``, or why the identity was kept."""
    alpha, beta = line
    if (alpha, beta) == (1.0, 0.0):
        return f"none (no reliable line yet: {variable} kept as it is)"
    return f"{alpha:.3f} {variable} {beta:+.3f}"
