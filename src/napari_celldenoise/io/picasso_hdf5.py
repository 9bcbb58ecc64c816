"""Picasso's localization files: ``NAME.hdf5`` (a ``locs`` table) and ``NAME.yaml`` beside it.

Picasso (Schnitzbauer et al., Nat. Protoc. 2017; jungmannlab/picasso) keeps localizations as
one HDF5 compound dataset ``locs``, one row per localization, and its metadata as a list of
YAML documents in ``NAME.yaml`` (one per processing step; Picasso 0.11 also embeds them as
JSON in a ``metadata`` dataset). Positions are in camera pixels with a pixel's centre at its
integer index, as in our tables, so ``x``/``y`` carry over unchanged; ``frame`` is 0-based in
both. Its fields and ours:

==============  =========================================================================
Picasso         spot table
==============  =========================================================================
frame (u4)      frame
x, y (f4)       x, y (px)
photons         photons
sx, sy          sigma_x, sigma_y (px; ``sigma`` for both when a table has only it)
bg              background (photons per pixel)
lpx, lpy        crlb_x, crlb_y (px; ``uncertainty`` for both without them)
ellipticity     ``(a - b) / a`` of the two widths; ours is ``a / b``
z (nm)          z_nm (a 3D position; our ``z`` is a slice index, written as ``slice``)
==============  =========================================================================

Our other numeric columns are written under their own names when every row has a value:
Picasso drops a row with a NaN in any field when it opens a file, so a column with gaps is
left out rather than losing rows (and named in the log). ``class`` becomes ``good`` (1 or 0).
Fields Picasso adds (``net_gradient``, ``len``, ``group``...) are read under their names.

The metadata we write is what Picasso requires (``Width``, ``Height``, ``Frames``) and reads
(``Pixelsize`` in nm), in the YAML file and embedded; reading takes the pixel size from the
last document that has one.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .. import __version__
from ..atomic import atomic_path
from .spots_csv import SpotTableError

logger = logging.getLogger(__name__)

SUFFIXES = (".hdf5", ".h5")
_F4 = np.float32
# Picasso field -> (our column, dtype)
_DIRECT = {
    "frame": ("frame", np.uint32),
    "x": ("x", _F4),
    "y": ("y", _F4),
    "photons": ("photons", _F4),
    "bg": ("background", _F4),
}
_OURS_SKIPPED = {"frame", "x", "y", "photons", "background", "sigma", "sigma_x", "sigma_y"}
_OURS_SKIPPED |= {"crlb_x", "crlb_y", "uncertainty", "ellipticity", "z", "class", "z_nm"}


class PicassoFileError(SpotTableError):
    """A file that is not a Picasso localization file, or a broken one (names the file)."""


def is_picasso_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named like a Picasso localization file."""
    return str(path).lower().endswith(SUFFIXES)


def is_picasso_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an HDF5 file with a ``locs`` table (never raises)."""
    if not is_picasso_path(path):
        return False
    try:
        import h5py

        with h5py.File(path, "r") as fh:
            return "locs" in fh and isinstance(fh["locs"], h5py.Dataset)
    except Exception:  # not HDF5, unreadable, h5py missing: not ours to open
        return False


def yaml_path(path: str | os.PathLike) -> Path:
    """``NAME.yaml`` beside ``NAME.hdf5``, where Picasso looks for the metadata."""
    return Path(path).with_suffix(".yaml")


def to_picasso_frame(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The table in Picasso's fields, and the names of our columns left out (with gaps)."""
    n = len(table)
    out: dict[str, np.ndarray] = {}
    for field, (col, dtype) in _DIRECT.items():
        if col in table:
            out[field] = pd.to_numeric(table[col]).to_numpy(dtype)
        elif field == "frame":
            out[field] = np.zeros(n, dtype)
    width = _first(table, ("sigma_x", "sigma"))
    if width is not None:
        out["sx"] = width.astype(_F4)
        out["sy"] = (_first(table, ("sigma_y", "sigma"))).astype(_F4)
    lp = _first(table, ("crlb_x", "uncertainty"))
    if lp is not None:
        out["lpx"] = lp.astype(_F4)
        out["lpy"] = _first(table, ("crlb_y", "uncertainty")).astype(_F4)
    if "ellipticity" in table:
        e = pd.to_numeric(table["ellipticity"], errors="coerce").to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["ellipticity"] = (1.0 - 1.0 / e).astype(_F4)
    if "z_nm" in table:
        out["z"] = pd.to_numeric(table["z_nm"]).to_numpy(_F4)
    if "z" in table and np.any(table["z"].to_numpy() != 0):
        out["slice"] = table["z"].to_numpy(np.int32)
    if "class" in table:
        out["good"] = (table["class"].astype(str).to_numpy() == "good").astype(np.uint8)
    left_out = []
    for col in table.columns:
        if col in _OURS_SKIPPED or col in out:
            continue
        values = table[col]
        if pd.api.types.is_bool_dtype(values):
            out[col] = values.to_numpy(np.uint8)
        elif pd.api.types.is_numeric_dtype(values):
            v = values.to_numpy()
            if np.issubdtype(v.dtype, np.floating) and not np.isfinite(v).all():
                left_out.append(col)
                continue
            out[col] = v
        else:
            left_out.append(col)
    return pd.DataFrame(out), left_out


def _first(table: pd.DataFrame, names: tuple[str, ...]) -> np.ndarray | None:
    for name in names:
        if name in table:
            return pd.to_numeric(table[name], errors="coerce").to_numpy(float)
    return None


def picasso_info(
    table: pd.DataFrame,
    *,
    pixel_size: float,
    width: int | None = None,
    height: int | None = None,
    n_frames: int | None = None,
    extra: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The metadata documents: the camera frame (Width, Height in px, Frames), the pixel size
    (nm) and what wrote the file. Sizes default to just past the farthest localization."""

    def past(col: str) -> int:
        if col not in table or len(table) == 0:
            return 1
        v = pd.to_numeric(table[col], errors="coerce").to_numpy(float)
        v = v[np.isfinite(v)]
        return int(np.floor(v.max())) + 1 if v.size else 1

    info: dict[str, Any] = {
        "Byte Order": "<",
        "Data Type": "uint16",
        "Frames": int(n_frames if n_frames is not None else past("frame")),
        "Height": int(height if height is not None else past("y") + 1),
        "Width": int(width if width is not None else past("x") + 1),
        "Pixelsize": float(pixel_size),
        "Generated by": f"napari-celldenoise {__version__}",
    }
    return [info, *([extra] if extra else [])]


def write_picasso_hdf5(
    path: str | os.PathLike,
    table: pd.DataFrame,
    *,
    pixel_size: float | None = None,
    width: int | None = None,
    height: int | None = None,
    n_frames: int | None = None,
    overwrite: bool = False,
    extra_info: dict[str, Any] | None = None,
) -> Path:
    """Write ``table`` as ``path`` (``.hdf5``) and its ``.yaml``, each atomically.

    Parameters
    ----------
    pixel_size
        nm per camera pixel (default: ``table.attrs["pixel_size"]``, else 100).
    width, height, n_frames
        The camera frame and movie length for Picasso's metadata (default: just past the
        farthest localization and the last frame).
    overwrite
        Replace existing files.
    extra_info
        A further metadata document (our job's settings, for instance).
    """
    import h5py

    path = Path(path)
    if not is_picasso_path(path):
        raise PicassoFileError(f"{path}: a Picasso file ends in .hdf5 (or .h5)")
    ps = float(pixel_size or table.attrs.get("pixel_size") or 100.0)
    frame, left_out = to_picasso_frame(table)
    if left_out:
        logger.info("%s: columns with missing values left out: %s", path, ", ".join(left_out))
    info = picasso_info(
        table, pixel_size=ps, width=width, height=height, n_frames=n_frames, extra=extra_info
    )
    records = frame.to_records(index=False)
    side = yaml_path(path)
    if side.exists() and not overwrite:
        raise FileExistsError(f"{side}: already exists (use overwrite to replace it)")
    with atomic_path(path, overwrite=overwrite, suffix=".hdf5") as tmp:
        with h5py.File(tmp, "w") as fh:
            fh.create_dataset("locs", data=records)
            fh.create_dataset("metadata", data=json.dumps(info))
        with atomic_path(side, overwrite=True) as tmp_side:  # before the table appears
            tmp_side.write_text(yaml.safe_dump_all(info, sort_keys=False), encoding="utf-8")
    return path


def read_picasso_hdf5(path: str | os.PathLike, *, pixel_size: float | None = None) -> pd.DataFrame:
    """Read a Picasso ``.hdf5`` localization file into a spot table (px, 0-based frames).

    Parameters
    ----------
    pixel_size
        nm per pixel, over the metadata's ``Pixelsize`` (default 100 when neither gives it).

    Raises
    ------
    PicassoFileError
        Not an HDF5 file, no ``locs`` table, or one without frame/x/y.
    """
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as fh:
            if "locs" not in fh or not isinstance(fh["locs"], h5py.Dataset):
                raise PicassoFileError(f"{path}: no 'locs' table (not a Picasso localization file)")
            locs = fh["locs"][()]
            embedded = fh["metadata"][()] if "metadata" in fh else None
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise PicassoFileError(f"{path}: not a readable HDF5 file ({exc})") from None
    names = locs.dtype.names or ()
    missing = [f for f in ("frame", "x", "y") if f not in names]
    if missing:
        raise PicassoFileError(f"{path}: the 'locs' table has no {', '.join(missing)} field")
    info = _read_info(path, embedded)
    ps = pixel_size or _pixel_size(info)
    if ps is None:
        logger.warning("%s: no Pixelsize in its metadata; taking 100 nm", path)
        ps = 100.0
    return from_picasso_frame(pd.DataFrame({n: locs[n] for n in names}), float(ps), info)


def _read_info(path: Path, embedded: Any) -> list[dict[str, Any]]:
    side = yaml_path(path)
    try:
        if side.exists():
            with open(side, encoding="utf-8") as fh:
                # Picasso writes some values with Python tags; read those as plain data
                return [d for d in yaml.load_all(fh, Loader=_PlainLoader) if isinstance(d, dict)]
        if embedded is not None:
            raw = embedded.decode("utf-8") if isinstance(embedded, bytes) else str(embedded)
            return [d for d in json.loads(raw) if isinstance(d, dict)]
    except (yaml.YAMLError, ValueError, UnicodeDecodeError) as exc:
        logger.warning("%s: metadata not read (%s)", path, exc)
    return []


class _PlainLoader(yaml.SafeLoader):
    """A safe loader that reads unknown tags (``!!python/tuple``...) as plain values."""


def _plain(loader: Any, suffix: str, node: Any) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    return loader.construct_scalar(node)


_PlainLoader.add_multi_constructor("", _plain)


def _pixel_size(info: list[dict[str, Any]]) -> float | None:
    for doc in reversed(info):
        value = doc.get("Pixelsize")
        try:
            ps = float(value)
        except (TypeError, ValueError):
            continue
        if np.isfinite(ps) and ps > 0:
            return ps
    return None


def from_picasso_frame(
    locs: pd.DataFrame, pixel_size: float, info: list[dict[str, Any]] | None = None
) -> pd.DataFrame:
    """Picasso's fields back to the spot table's columns (float64, 0-based frames)."""
    n = len(locs)
    table = pd.DataFrame()
    table["frame"] = locs["frame"].to_numpy(np.int64)
    table["z"] = locs["slice"].to_numpy(np.int64) if "slice" in locs else np.zeros(n, np.int64)
    table["y"] = locs["y"].to_numpy(float)
    table["x"] = locs["x"].to_numpy(float)
    for field, (col, _) in _DIRECT.items():
        if field not in ("frame", "x", "y") and field in locs:
            table[col] = locs[field].to_numpy(float)
    if "sx" in locs and "sy" in locs:
        sx, sy = locs["sx"].to_numpy(float), locs["sy"].to_numpy(float)
        table["sigma"] = np.sqrt(sx * sy)
        table["sigma_x"], table["sigma_y"] = sx, sy
        with np.errstate(divide="ignore", invalid="ignore"):
            table["ellipticity"] = np.maximum(sx, sy) / np.minimum(sx, sy)
    if "lpx" in locs and "lpy" in locs:
        lpx, lpy = locs["lpx"].to_numpy(float), locs["lpy"].to_numpy(float)
        table["uncertainty"] = np.sqrt((lpx**2 + lpy**2) / 2)
        table["crlb_x"], table["crlb_y"] = lpx, lpy
    if "z" in locs:
        table["z_nm"] = locs["z"].to_numpy(float)
    used = {"frame", "x", "y", "photons", "bg", "sx", "sy", "lpx", "lpy", "ellipticity"}
    used |= {"z", "slice", "good"}
    for name in locs.columns:
        if name not in used:
            v = locs[name].to_numpy()
            table[name] = v.astype(float) if np.issubdtype(v.dtype, np.floating) else v
    if "converged" in table:
        table["converged"] = table["converged"].astype(bool)
    good = locs["good"].to_numpy() if "good" in locs else np.ones(n, np.uint8)
    table["class"] = np.where(good.astype(bool), "good", "bad").astype(object)
    table.attrs["pixel_size"] = float(pixel_size)
    if info:
        table.attrs["picasso_info"] = info
    return table
