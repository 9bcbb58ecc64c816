"""napari reader for spot tables: our CSV, ThunderSTORM's and Picasso's HDF5 open as Points
layers with scale.

``napari_get_reader`` returns None for anything that is not a spot table (another CSV, a
missing file, a folder, a list with a non-table) and never raises.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..io.locs import read_localizations
from ..io.picasso_hdf5 import is_picasso_file
from ..io.spots_csv import SpotTableError, is_spot_table

logger = logging.getLogger(__name__)

LayerData = list[tuple[Any, ...]]
CLASS_COLORS = {"good": "#33dd55", "bad": "#ff4040"}
"""Border colour per class (others: yellow)."""


def napari_get_reader(path: str | list[str]) -> Callable[[Any], LayerData] | None:
    """A reader for ``path`` if it is a CSV spot table or a Picasso HDF5 (or a list of them),
    else None."""
    try:
        paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
        if not paths:
            return None
        for p in paths:
            if is_picasso_file(p):
                continue
            if not str(p).lower().endswith(".csv") or not Path(p).is_file():
                return None
            if not is_spot_table(p):
                return None
    except Exception:  # a foreign object must not break napari's reader search
        return None
    return read_spot_layers


def read_spot_layers(path: str | list[str]) -> LayerData:
    """One Points layer per table; a broken table gives one notification, no traceback."""
    from .reader import EMPTY, notify_error

    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    layers: LayerData = []
    for p in paths:
        try:
            table = read_localizations(p)
        except SpotTableError as exc:
            notify_error(str(exc))
            continue
        layers.append(table_to_points(table, name=Path(p).stem))
    return layers or EMPTY


def table_to_points(
    table: pd.DataFrame,
    *,
    name: str = "spots",
    pixel_size: float | None = None,
    ndim: int | None = None,
) -> tuple[np.ndarray, dict, str]:
    """A Points layer tuple: (frame, y, x) or (y, x) in px, scale in µm, all columns as
    ``features``, border colour by class, size by sigma.

    ``ndim`` 2 or 3 forces the layout; by default a table with one frame gives 2D points.
    """
    ps_um = float(pixel_size or table.attrs.get("pixel_size") or 100.0) / 1000.0
    n = len(table)
    frames = table["frame"].to_numpy(int) if "frame" in table else np.zeros(n, int)
    if ndim is None:
        ndim = 2 if len(np.unique(frames)) <= 1 else 3
    yx = np.column_stack([table["y"].to_numpy(float), table["x"].to_numpy(float)])
    data = np.column_stack([frames, yx]) if ndim == 3 else yx
    scale = (1.0, ps_um, ps_um) if ndim == 3 else (ps_um, ps_um)
    # the frame axis counts frames, as the image reader gives a T axis without a time step
    units = ("pixel", "µm", "µm") if ndim == 3 else ("µm", "µm")
    features = table.reset_index(drop=True).copy()
    if "class" not in features:
        features["class"] = "good"
    features["class"] = features["class"].astype(str)
    meta = {
        "name": name,
        "scale": scale,
        "units": units,
        "features": features,
        "face_color": "transparent",
        "border_color": class_colors(features["class"].to_numpy()),
        "border_width": 0.12,
        "border_width_is_relative": True,
        "size": point_sizes(features),
        "out_of_slice_display": False,
        "metadata": {"pixel_size_nm": ps_um * 1000.0},
    }
    if ndim == 3:
        meta["axis_labels"] = ("T", "Y", "X")
    return data.reshape(-1, ndim), meta, "points"


def class_colors(classes: np.ndarray) -> np.ndarray:
    """RGBA per point from its class (one colour conversion per class, not per point: a long
    movie's layer has 200,000 points)."""
    from matplotlib.colors import to_rgba  # matplotlib ships with napari

    labels = np.asarray(classes).astype(str)
    out = np.tile(np.array(to_rgba("#ffd000")), (len(labels), 1))
    for name, colour in CLASS_COLORS.items():
        out[labels == name] = to_rgba(colour)
    return out


def point_sizes(features: pd.DataFrame, default: float = 1.3) -> np.ndarray:
    """Point diameter in px: 2.5 sigma (the PSF's width at about a tenth of its peak)."""
    n = len(features)
    if "sigma" in features:
        s = pd.to_numeric(features["sigma"], errors="coerce").to_numpy(float)
        s = np.where(np.isfinite(s) & (s > 0), s, default)
    else:
        s = np.full(n, default)
    return np.clip(2.5 * s, 1.0, 20.0)
