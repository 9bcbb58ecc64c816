"""Localization tables with a known truth: blinking emitters seen with Gaussian errors.

No images: the table a perfect localizer would give. Emitters lie one per cell of a square
grid, each at a random place in its cell (the field is covered evenly, without the Bragg
peaks a perfect lattice adds to a Fourier transform). Each emitter blinks: one or more bursts
of consecutive frames, each frame of a burst one localization at the emitter plus a Gaussian
error of ``sigma_nm`` per axis. Used by the tests and benchmarks of :mod:`.resolution`, the
Super-resolution dock's tests and the Picasso HDF5 round trip.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def simulate_localizations(
    *,
    field_nm: float = 8000.0,
    spacing_nm: float = 200.0,
    sigma_nm: float = 10.0,
    n_frames: int = 2000,
    mean_bursts: float = 2.0,
    mean_burst_frames: float = 3.0,
    pixel_size: float = 100.0,
    seed: int = 0,
) -> pd.DataFrame:
    """A spot table (px, ``attrs["pixel_size"]``) of blinking emitters.

    The table has the columns ``frame``, ``x``, ``y``, ``photons``, ``background``,
    ``sigma``, ``uncertainty`` (``sigma_nm`` in px), ``class`` ("good") and ``emitter`` (the
    index of the true emitter); ``attrs["emitters_nm"]`` holds the true ``(x, y)`` in nm and
    ``attrs["sigma_nm"]`` the error. Bursts: ``1 + Poisson(mean_bursts - 1)`` per emitter,
    each starting at a random frame and lasting ``Geometric(1 / mean_burst_frames)`` frames.
    """
    rng = np.random.default_rng(seed)
    cells = max(1, int(field_nm // spacing_nm))
    gy, gx = np.mgrid[0:cells, 0:cells]
    ex = (gx.ravel() + rng.random(gx.size)) * spacing_nm
    ey = (gy.ravel() + rng.random(gy.size)) * spacing_nm
    n_em = ex.size
    n_bursts = 1 + rng.poisson(max(mean_bursts - 1.0, 0.0), n_em)
    owner = np.repeat(np.arange(n_em), n_bursts)
    starts = rng.integers(0, n_frames, owner.size)
    lengths = rng.geometric(1.0 / max(mean_burst_frames, 1.0), owner.size)
    em = np.repeat(owner, lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    frame = np.repeat(starts, lengths) + offsets
    inside = frame < n_frames
    em, frame = em[inside], frame[inside]
    # one localization per emitter and frame (bursts that overlap are one)
    unique = np.unique(em.astype(np.int64) * (n_frames + 1) + frame)
    em, frame = unique // (n_frames + 1), unique % (n_frames + 1)
    order = np.argsort(frame, kind="stable")
    em, frame = em[order], frame[order]
    n = em.size
    x_nm = ex[em] + rng.normal(0.0, sigma_nm, n)
    y_nm = ey[em] + rng.normal(0.0, sigma_nm, n)
    ps = float(pixel_size)
    table = pd.DataFrame(
        {
            "frame": frame.astype(np.int64),
            "z": np.zeros(n, np.int64),
            "y": y_nm / ps - 0.5,
            "x": x_nm / ps - 0.5,
            "photons": rng.lognormal(np.log(1500.0), 0.4, n),
            "background": np.full(n, 20.0),
            "sigma": np.full(n, 1.3),
            "uncertainty": np.full(n, sigma_nm / ps),
            "class": np.full(n, "good", object),
            "emitter": em.astype(np.int64),
        }
    )
    table.attrs["pixel_size"] = ps
    table.attrs["emitters_nm"] = np.column_stack([ex, ey])
    table.attrs["sigma_nm"] = float(sigma_nm)
    return table


def expected_frc_resolution(emitter: np.ndarray, sigma_nm: float, pixel_nm: float) -> float:
    """The FRC resolution (nm, threshold 1/7) expected for random halves of these
    localizations: ``emitter`` is the true emitter of each one.

    For emitters at unrelated places only a molecule's own repeated localizations correlate
    between the halves at high frequency (Nieuwenhuizen et al. 2013). With ``K`` localizations
    of an emitter split at random, ``E[n1 n2] = E[n1 (n1 - 1)] = K (K - 1) / 4``; with
    ``A = sum K (K - 1) / 4`` over emitters and ``N`` localizations,
    ``FRC(q) = A e(q) / (N / 2 + A e(q))``, ``e(q) = exp(-4 pi^2 s^2 q^2)``, where
    ``s^2 = sigma^2 + pixel^2 / 12`` adds the histogram's binning. It equals 1/7 at
    ``q = sqrt(ln(12 A / N)) / (2 pi s)``.
    """
    counts = np.bincount(np.asarray(emitter, np.int64))
    counts = counts[counts > 0]
    n = counts.sum()
    a = float(np.sum(counts * (counts - 1.0)) / 4.0)
    ratio = 12.0 * a / n
    if ratio <= 1.0:
        return float("nan")  # too few repeats: the curve starts below the threshold
    s = np.sqrt(sigma_nm**2 + pixel_nm**2 / 12.0)
    return float(2 * np.pi * s / np.sqrt(np.log(ratio)))
