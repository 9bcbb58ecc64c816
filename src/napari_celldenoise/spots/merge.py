"""Merging of blinks: the localizations of one molecule in consecutive frames become one row.

ThunderSTORM's merging (Ovesný et al., Bioinformatics 30:2389, 2014): frame by frame, a
localization joins the molecule whose last localization is within ``radius`` of it and was
seen at most ``max_gap`` frames before (``max_gap`` missing frames in between), the closest
pairs first and one localization per molecule and frame; otherwise it starts a new molecule.
A molecule's position is the photon-weighted mean of its localizations, its photons their
sum, ``n_blinks`` how many were merged and ``frame`` its first frame; localizations of
different ``z`` planes never merge.

Each frame links its localizations to the molecules still open (seen within the gap), found
in a grid of cells one radius wide that holds those molecules' last positions (numba): the work
grows with the number of localizations, and a million take about a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

_POSITION = ("x", "y")


def merge_blinks(table: pd.DataFrame, *, radius_nm: float, max_gap: int) -> pd.DataFrame:
    """One row per molecule: the blinks of ``table`` merged within ``radius_nm`` over gaps of
    up to ``max_gap`` frames.

    Returns a new table, first frames in order: ``x``, ``y`` photon-weighted (equal weights
    where photons are missing), ``photons`` summed, ``uncertainty`` that of the weighted mean
    (``sqrt(sum(N_i^2 u_i^2)) / sum(N_i)``), ``n_blinks``, ``last_frame``; other float
    columns photon-weighted means, the rest (``class``, ``z``, ...) from the molecule's first
    localization. ``attrs`` kept, with ``attrs["merged_from"]`` the number of rows merged.

    Raises
    ------
    ValueError
        A negative radius or gap, or a table without ``frame``, ``x``, ``y``.
    """
    if not np.isfinite(radius_nm) or radius_nm < 0:
        raise ValueError(f"the merge radius must be >= 0 nm, got {radius_nm}")
    if int(max_gap) != max_gap or max_gap < 0:
        raise ValueError(f"the merge gap must be a whole number of frames >= 0, got {max_gap}")
    for column in ("frame", *_POSITION):
        if column not in table:
            raise ValueError(f"the table has no {column!r} column")
    pixel = float(table.attrs.get("pixel_size", 100.0))
    order = np.argsort(table["frame"].to_numpy(), kind="stable")
    rows = table.iloc[order].reset_index(drop=True)
    molecule = link_blinks(
        rows["frame"].to_numpy(np.int64),
        rows["x"].to_numpy(float),
        rows["y"].to_numpy(float),
        rows["z"].to_numpy(np.int64) if "z" in rows else None,
        radius=radius_nm / pixel,
        max_gap=int(max_gap),
    )
    merged = _combine(rows, molecule)
    merged.attrs = dict(table.attrs)
    merged.attrs["merged_from"] = len(table)
    return merged


def link_blinks(
    frame: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray | None = None,
    *,
    radius: float,
    max_gap: int,
) -> np.ndarray:
    """The molecule index of every localization (``frame`` sorted, positions in px, ``radius``
    in px): see the module's description. Molecules are numbered in order of their first
    localization."""
    n = frame.size
    if n == 0:
        return np.empty(0, np.int64)
    frame = np.ascontiguousarray(frame, np.int64)
    if np.any(np.diff(frame) < 0):
        raise ValueError("link_blinks needs the localizations in frame order")
    x = np.ascontiguousarray(x, np.float64)
    y = np.ascontiguousarray(y, np.float64)
    z = np.zeros(n, np.int64) if z is None else np.ascontiguousarray(z, np.int64)
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.all():
        raise ValueError("the table has localizations without a finite x/y position")
    # a grid of cells one radius wide (coarser for huge fields) holds the open molecules
    x0, y0 = x.min(), y.min()
    cell = max(float(radius), max(x.max() - x0, y.max() - y0) / 2048.0, 1e-9)
    cols = int((x.max() - x0) / cell) + 1
    rows = int((y.max() - y0) / cell) + 1
    return _link(frame, x - x0, y - y0, z, float(radius), int(max_gap), cell, rows, cols)


@njit(cache=True)
def _link(frame, x, y, z, radius, max_gap, cell, rows, cols):  # pragma: no cover - numba
    n = frame.size
    molecule = np.full(n, -1, np.int64)
    last_frame = np.empty(n, np.int64)  # per molecule
    last_x = np.empty(n)
    last_y = np.empty(n)
    last_z = np.empty(n, np.int64)
    version = np.zeros(n, np.int64)
    # cell lists of entries (molecule, version): an entry is stale once its molecule moved on
    head = np.full(rows * cols, -1, np.int64)
    nxt = np.empty(n, np.int64)
    entry_mol = np.empty(n, np.int64)
    entry_version = np.empty(n, np.int64)
    n_entries = 0
    n_mol = 0
    r2 = radius * radius
    cand_d = np.empty(64)
    cand_loc = np.empty(64, np.int64)
    cand_mol = np.empty(64, np.int64)
    taken = np.full(n, -1, np.int64)  # frame in which a molecule was extended
    a = 0
    while a < n:
        t = frame[a]
        b = a
        while b < n and frame[b] == t:
            b += 1
        n_cand = 0
        if radius > 0:
            for i in range(a, b):
                ci = int(y[i] / cell)
                cj = int(x[i] / cell)
                for r in range(max(ci - 1, 0), min(ci + 2, rows)):
                    for c in range(max(cj - 1, 0), min(cj + 2, cols)):
                        k = r * cols + c
                        prev = -1
                        e = head[k]
                        while e >= 0:
                            m = entry_mol[e]
                            following = nxt[e]
                            if entry_version[e] != version[m] or last_frame[m] < t - max_gap - 1:
                                if prev < 0:  # stale or closed: unlink it
                                    head[k] = following
                                else:
                                    nxt[prev] = following
                                e = following
                                continue
                            dx = x[i] - last_x[m]
                            dy = y[i] - last_y[m]
                            d2 = dx * dx + dy * dy
                            if d2 <= r2 and last_z[m] == z[i] and last_frame[m] < t:
                                if n_cand == cand_d.size:
                                    cand_d = np.concatenate((cand_d, np.empty(n_cand)))
                                    cand_loc = np.concatenate(
                                        (cand_loc, np.empty(n_cand, np.int64))
                                    )
                                    cand_mol = np.concatenate(
                                        (cand_mol, np.empty(n_cand, np.int64))
                                    )
                                cand_d[n_cand] = d2
                                cand_loc[n_cand] = i
                                cand_mol[n_cand] = m
                                n_cand += 1
                            prev = e
                            e = following
        if n_cand:
            order = np.argsort(cand_d[:n_cand], kind="mergesort")
            for p in order:
                i = cand_loc[p]
                m = cand_mol[p]
                if molecule[i] >= 0 or taken[m] == t:
                    continue
                molecule[i] = m
                taken[m] = t
        for i in range(a, b):
            m = molecule[i]
            if m < 0:
                m = n_mol
                n_mol += 1
                molecule[i] = m
            last_frame[m] = t
            last_x[m] = x[i]
            last_y[m] = y[i]
            last_z[m] = z[i]
            version[m] += 1
            k = int(y[i] / cell) * cols + int(x[i] / cell)
            entry_mol[n_entries] = m
            entry_version[n_entries] = version[m]
            nxt[n_entries] = head[k]
            head[k] = n_entries
            n_entries += 1
        a = b
    return molecule


def _combine(rows: pd.DataFrame, molecule: np.ndarray) -> pd.DataFrame:
    """One row per molecule (see :func:`merge_blinks`)."""
    if len(rows) == 0:
        out = rows.copy()
        out["n_blinks"] = pd.Series(dtype="int64")
        out["last_frame"] = pd.Series(dtype="int64")
        return out
    n_mol = int(molecule.max()) + 1 if molecule.size else 0
    first = np.full(n_mol, molecule.size, np.int64)
    np.minimum.at(first, molecule, np.arange(molecule.size))
    photons = rows["photons"].to_numpy(float) if "photons" in rows else np.ones(len(rows))
    valid = np.isfinite(photons) & (photons > 0)
    weight = np.where(valid, photons, 0.0)
    total = np.bincount(molecule, weight, n_mol)
    equal = total[molecule] <= 0  # no photons known in this molecule: equal weights
    weight = np.where(equal, 1.0, weight)
    total = np.bincount(molecule, weight, n_mol)

    def weighted_mean(values: np.ndarray) -> np.ndarray:
        good = np.isfinite(values)
        w = np.where(good, weight, 0.0)
        s = np.bincount(molecule, w * np.where(good, values, 0.0), n_mol)
        wsum = np.bincount(molecule, w, n_mol)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(wsum > 0, s / wsum, np.nan)

    out: dict[str, np.ndarray] = {}
    for column in rows.columns:
        values = rows[column].to_numpy()
        if column == "photons":
            out[column] = np.bincount(molecule, np.where(valid, photons, 0.0), n_mol)
            out[column][np.bincount(molecule, valid, n_mol) == 0] = np.nan
        elif column == "uncertainty":
            u = values.astype(float)
            s = np.sqrt(np.bincount(molecule, (weight * np.nan_to_num(u, nan=0.0)) ** 2, n_mol))
            out[column] = s / total
            out[column][np.bincount(molecule, np.isnan(u), n_mol) > 0] = np.nan
        elif values.dtype.kind == "f" and column != "frame":
            out[column] = weighted_mean(values.astype(float))
        else:
            out[column] = values[first]
    out["n_blinks"] = np.bincount(molecule, minlength=n_mol).astype(np.int64)
    last = np.zeros(n_mol, np.int64)
    np.maximum.at(last, molecule, rows["frame"].to_numpy(np.int64))
    out["last_frame"] = last
    return pd.DataFrame(out)


__all__ = ["link_blinks", "merge_blinks"]
