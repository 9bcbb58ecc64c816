"""napari writer: a Points layer to our ThunderSTORM-compatible spot CSV."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..io.spots_csv import write_spots_csv

_UNIT_NM = {
    "nm": 1.0,
    "nanometer": 1.0,
    "µm": 1000.0,
    "um": 1000.0,
    "micrometer": 1000.0,
    "mm": 1e6,
    "millimeter": 1e6,
}


def points_to_table(data: Any, meta: dict) -> pd.DataFrame:
    """The spot table of a Points layer: positions from the data, the rest from features."""
    data = np.asarray(data, float)
    if data.ndim != 2 or data.shape[1] < 2:
        raise ValueError("a Points layer with at least 2 dimensions is needed")
    features = meta.get("features")
    table = (
        pd.DataFrame(features).reset_index(drop=True) if features is not None else pd.DataFrame()
    )
    if len(table) != len(data):
        table = pd.DataFrame(index=range(len(data)))
    table["y"] = data[:, -2]
    table["x"] = data[:, -1]
    if data.shape[1] >= 3:
        table["frame"] = np.rint(data[:, 0]).astype(int)
    elif "frame" not in table:
        table["frame"] = 0
    table.attrs["pixel_size"] = pixel_size_nm(meta)
    return table


def pixel_size_nm(meta: dict) -> float:
    """nm per pixel from the layer's scale and units (100 when it has none)."""
    stored = (meta.get("metadata") or {}).get("pixel_size_nm")
    scale = meta.get("scale")
    units = meta.get("units")
    if scale is not None and units is not None and len(scale) >= 1:
        unit = str(units[-1])
        factor = _UNIT_NM.get(unit)
        if factor is not None:
            return float(scale[-1]) * factor
    return float(stored) if stored else 100.0


def write_points(path: str, data: Any, meta: dict) -> list[str]:
    """Write one Points layer. napari's save dialog has already confirmed any replacement."""
    if not path.lower().endswith(".csv"):
        path += ".csv"
    table = points_to_table(data, meta)
    return [str(write_spots_csv(path, table, overwrite=True))]
