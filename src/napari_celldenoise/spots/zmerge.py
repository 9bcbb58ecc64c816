"""One spot per emitter in a volume: 2D fits of consecutive slices linked in Z.

:func:`~napari_celldenoise.spots.pipeline.find_spots` fits every plane of a ``ZYX`` or
``TZYX`` stack as a 2D image, so an emitter whose PSF spans several slices is found once per
slice. :func:`merge_z` links fits of consecutive slices that lie within ``distance`` pixels of
each other and keeps, for each chain, the fit with the most photons (the slice nearest focus).
This is ThunderSTORM's merging of a molecule that reappears in consecutive frames, applied to
slices (Ovesny et al., "ThunderSTORM: a comprehensive ImageJ plug-in for PALM and STORM data
analysis and super-resolution imaging", Bioinformatics 30, 2389-2390, 2014).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from ..jobs import Done, Event, Log

MERGE_DISTANCE = 1.0
"""Default link distance in pixels between fits of consecutive slices."""


def _link(a: np.ndarray, b: np.ndarray, distance: float) -> list[tuple[int, int]]:
    """Pairs (i in a, j in b) nearest first, each point used once, within ``distance``."""
    from scipy.spatial import cKDTree

    if len(a) == 0 or len(b) == 0:
        return []
    pairs = cKDTree(a).sparse_distance_matrix(cKDTree(b), distance, output_type="ndarray")
    order = np.argsort(pairs["v"], kind="stable")
    used_a: set[int] = set()
    used_b: set[int] = set()
    out = []
    for k in order:
        i, j = int(pairs["i"][k]), int(pairs["j"][k])
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            out.append((i, j))
    return out


def merge_z(table: pd.DataFrame, *, distance: float = MERGE_DISTANCE) -> pd.DataFrame:
    """Merge fits of one emitter in consecutive slices into one row.

    Parameters
    ----------
    table
        Spot table with ``frame``, ``z``, ``y``, ``x`` and ``photons`` columns (px, 0-based).
    distance
        Largest lateral distance (px) between the fits of two consecutive slices of one
        emitter.

    Returns
    -------
    pandas.DataFrame
        One row per chain: the brightest fit of the chain, with ``z_first``, ``z_last`` and
        ``n_slices`` added; rows in the input's order; ``attrs`` kept plus
        ``attrs["merged_in_z"]`` (the number of input rows). The input is not changed.
    """
    n = len(table)
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if n:
        frame = table["frame"].to_numpy(int)
        z = table["z"].to_numpy(int)
        yx = table[["y", "x"]].to_numpy(float)
        for t in np.unique(frame):
            in_t = frame == t
            for s in np.unique(z[in_t]):
                here = np.flatnonzero(in_t & (z == s))
                nxt = np.flatnonzero(in_t & (z == s + 1))
                for i, j in _link(yx[here], yx[nxt], distance):
                    parent[root(int(nxt[j]))] = root(int(here[i]))
    roots = np.array([root(i) for i in range(n)], int)
    photons = pd.to_numeric(table["photons"], errors="coerce").to_numpy(float) if n else []
    best: dict[int, int] = {}
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i in range(n):
        r = int(roots[i])
        zi = int(table["z"].iat[i])
        if r not in best or np.nan_to_num(photons[i], nan=-np.inf) > np.nan_to_num(
            photons[best[r]], nan=-np.inf
        ):
            best[r] = i
        first[r] = min(first.get(r, zi), zi)
        last[r] = max(last.get(r, zi), zi)
    keep = sorted(best.values())
    out = table.iloc[keep].copy().reset_index(drop=True)
    chains = [int(roots[i]) for i in keep]
    out["z_first"] = np.array([first[r] for r in chains], int)
    out["z_last"] = np.array([last[r] for r in chains], int)
    out["n_slices"] = out["z_last"] - out["z_first"] + 1
    out.attrs = dict(table.attrs)
    out.attrs["merged_in_z"] = n
    return out


def merged_in_z(events: Iterator[Event], *, distance: float = MERGE_DISTANCE) -> Iterator[Event]:
    """Pass a spot job's events through, with the table of its ``Done`` merged in Z.

    Wraps :func:`~napari_celldenoise.spots.pipeline.find_spots` (or any job whose result is
    a spot table) of a ``ZYX``/``TZYX`` stack: ``merged_in_z(find_spots(...))``. A table
    whose ``attrs["axes"]`` has no Z passes unchanged.
    """
    for event in events:
        if isinstance(event, Done) and isinstance(event.result, pd.DataFrame):
            table = event.result
            if "Z" in str(table.attrs.get("axes", "Z")):
                table = merge_z(table, distance=distance)
                yield Log(f"{len(table)} spots after merging {len(event.result)} 2D fits in Z")
            yield Done(table, stopped=event.stopped)
        else:
            yield event
