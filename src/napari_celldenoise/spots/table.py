"""The spot table: its columns, their types, and operations on whole tables.

A table is a :class:`pandas.DataFrame` in pixels (pixel centres at integers, ``x`` the column,
``y`` the row) and photons, one row per spot, ``frame`` and ``z`` 0-based, with
``attrs["pixel_size"]`` in nm. :func:`~.pipeline.find_spots` makes them, the classifiers read
their :data:`FEATURES`, and :mod:`~napari_celldenoise.io.spots_csv` writes them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = [
    "frame",
    "z",
    "y",
    "x",
    "photons",
    "background",
    "sigma",
    "sigma_x",
    "sigma_y",
    "ellipticity",
    "uncertainty",
    "crlb_x",
    "crlb_y",
    "crlb_photons",
    "crlb_background",
    "crlb_sigma",
    "bkgstd",
    "chi2",
    "loglik",
    "significance",
    "iterations",
    "converged",
    "peak",
    "class",
]
"""The columns of every table, in this order."""

FEATURES = [
    "photons",
    "background",
    "sigma",
    "ellipticity",
    "uncertainty",
    "bkgstd",
    "chi2",
    "significance",
    "peak",
    "crlb_photons",
    "iterations",
]
"""Numeric columns a classifier and the feature sliders use."""


def column_dtype(column: str) -> str:
    """The dtype of ``column``: ``int64`` for indices and counts, ``bool``, ``object`` for the
    class, ``float64`` for every measurement."""
    if column in ("frame", "z", "iterations"):
        return "int64"
    if column == "converged":
        return "bool"
    if column == "class":
        return "object"
    return "float64"


def empty_table(pixel_size: float = 100.0) -> pd.DataFrame:
    """A typed table with no rows."""
    table = pd.DataFrame({c: pd.Series(dtype=column_dtype(c)) for c in COLUMNS})
    table.attrs["pixel_size"] = float(pixel_size)
    return table


def drop_duplicates(table: pd.DataFrame, distance: float) -> pd.DataFrame:
    """Keep one of two spots closer than ``distance`` px in the same plane (the more
    significant)."""
    if len(table) < 2 or distance <= 0:
        return table
    from scipy.spatial import cKDTree

    key = table["frame"].to_numpy() * 1_000_003 + table["z"].to_numpy()
    pts = np.column_stack([table["y"].to_numpy(), table["x"].to_numpy(), key * 1e4])
    pairs = cKDTree(pts).query_pairs(distance, output_type="ndarray")
    if len(pairs) == 0:
        return table
    sig = table["significance"].to_numpy()
    drop = np.zeros(len(table), bool)
    for a, b in pairs[np.argsort(-np.maximum(sig[pairs[:, 0]], sig[pairs[:, 1]]))]:
        if drop[a] or drop[b]:
            continue
        drop[b if sig[a] >= sig[b] else a] = True
    return table[~drop].reset_index(drop=True)
