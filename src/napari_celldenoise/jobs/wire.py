"""Events and job results as JSON, so that they cross machines (a remote worker's job folder,
a batch cluster, a log to replay).

:func:`to_json` turns an event (or any value an event holds) into plain JSON data and
:func:`from_json` turns it back; :func:`dumps` / :func:`loads` do the same with text, one event
per line. Typed values are tagged objects ``{"type": NAME, ...}``:

- numpy arrays (a :class:`~.events.Preview`'s image, a prediction): ``dtype``, ``shape`` and
  ``data``, the C-order bytes in base64 (little-endian), so the values come back bit for bit;
- the events and the job results of :mod:`.results` (frozen dataclasses): their fields;
- the project's pydantic models (a model folder's ``ModelInfo``): ``model_dump(mode="json")``;
- spot tables (``pandas.DataFrame``): columns with their dtypes, the index and ``attrs``;
- tuples, dicts, and floats that JSON cannot hold (NaN, infinities).

Only the types named in :data:`TYPES` are rebuilt, each imported on first use from inside this
package: text from elsewhere can never make the reader import or call anything else. A value
of any other type is refused with a :class:`TypeError` naming it.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import json
import math
from typing import Any

import numpy as np

from .events import Event

_PACKAGE = "napari_celldenoise"

TYPES: dict[str, str] = {
    # events
    "Progress": "jobs.events:Progress",
    "Log": "jobs.events:Log",
    "Epoch": "jobs.events:Epoch",
    "Device": "jobs.events:Device",
    "Timing": "jobs.events:Timing",
    "Calibration": "jobs.events:Calibration",
    "Preview": "jobs.events:Preview",
    "Done": "jobs.events:Done",
    # job results (see .results for which job returns which)
    "ExportResult": "jobs.results:ExportResult",
    "PackageCheck": "jobs.results:PackageCheck",
    "ModelInfo": "deep.model:ModelInfo",
    "StoredResult": "deep.api:StoredResult",
    "TuneResult": "classical.autotune:TuneResult",
    "CentroidModel": "spots.centroid:CentroidModel",
}
"""Name -> ``module:class`` (relative to the package) of every type that travels as JSON."""


def _resolve(name: str) -> type:
    try:
        module, _, attr = TYPES[name].partition(":")
    except KeyError:
        raise ValueError(f"unknown type {name!r} in JSON event data") from None
    return getattr(importlib.import_module(f"{_PACKAGE}.{module}"), attr)


def _name_of(value: Any) -> str | None:
    """The :data:`TYPES` name of ``value``'s class, or None when it does not travel."""
    cls = type(value)
    where = f"{cls.__module__}:{cls.__qualname__}"
    for name, path in TYPES.items():
        if name == cls.__name__ and f"{_PACKAGE}.{path}" == where:
            return name
    return None


def to_json(value: Any) -> Any:
    """``value`` (an event, a job result, or anything they hold) as JSON-compatible data.

    Raises
    ------
    TypeError
        For a value of a type that cannot travel (a scikit-learn model, an open file...).
    """
    if isinstance(value, np.generic):
        return to_json(value.item())
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"type": "float", "value": repr(value)}
    if isinstance(value, np.ndarray):
        return _array_to_json(value)
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, tuple):
        return {"type": "tuple", "items": [to_json(v) for v in value]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("only dicts with string keys can be sent as JSON")
        return {"type": "dict", "items": {k: to_json(v) for k, v in value.items()}}
    if type(value).__module__.startswith("pandas") and type(value).__name__ == "DataFrame":
        return _frame_to_json(value)
    name = _name_of(value)
    if name is None:
        raise TypeError(f"cannot send a {type(value).__qualname__} as JSON")
    if dataclasses.is_dataclass(value):
        fields = {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"type": name, "fields": fields}
    return {"type": name, "data": value.model_dump(mode="json")}  # a pydantic model


def from_json(data: Any) -> Any:
    """The value :func:`to_json` made ``data`` from."""
    if isinstance(data, list):
        return [from_json(v) for v in data]
    if not isinstance(data, dict):
        return data
    kind = data.get("type")
    if kind == "float":
        return float(data["value"])
    if kind == "tuple":
        return tuple(from_json(v) for v in data["items"])
    if kind == "dict":
        return {k: from_json(v) for k, v in data["items"].items()}
    if kind == "ndarray":
        return _array_from_json(data)
    if kind == "DataFrame":
        return _frame_from_json(data)
    if not isinstance(kind, str):
        raise ValueError("JSON event data without a type")
    cls = _resolve(kind)
    if "fields" in data:
        return cls(**{k: from_json(v) for k, v in data["fields"].items()})
    return cls.model_validate(data["data"])


def dumps(event: Event) -> str:
    """One event as one line of JSON (no newline inside, NaN written as a tagged value)."""
    return json.dumps(to_json(event), allow_nan=False, separators=(",", ":"))


def loads(text: str) -> Event:
    """The event :func:`dumps` wrote as ``text``."""
    return from_json(json.loads(text))


# ------------------------------------------------------------------------------ arrays
def _array_to_json(array: np.ndarray) -> dict[str, Any]:
    if array.dtype.hasobject:
        return {
            "type": "ndarray",
            "dtype": "object",
            "shape": list(array.shape),
            "items": [to_json(v) for v in array.ravel().tolist()],
        }
    if array.dtype.kind not in "biufcSUM" or array.dtype.fields is not None:
        raise TypeError(f"cannot send an array of dtype {array.dtype} as JSON")
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    raw = np.ascontiguousarray(little).tobytes()
    return {
        "type": "ndarray",
        "dtype": little.dtype.str,
        "shape": list(array.shape),
        "data": base64.b64encode(raw).decode("ascii"),
    }


def _array_from_json(data: dict[str, Any]) -> np.ndarray:
    shape = tuple(int(n) for n in data["shape"])
    if data["dtype"] == "object":
        out = np.empty(len(data["items"]), object)
        out[:] = [from_json(v) for v in data["items"]]
        return out.reshape(shape)
    dtype = np.dtype(data["dtype"])
    if dtype.hasobject:
        raise ValueError("an array of Python objects must be sent as items")
    flat = np.frombuffer(base64.b64decode(data["data"]), dtype=dtype)
    return flat.reshape(shape).astype(dtype.newbyteorder("="))


# ------------------------------------------------------------------------- spot tables
def _frame_to_json(frame: Any) -> dict[str, Any]:
    if not all(isinstance(c, str) for c in frame.columns):
        raise TypeError("only tables with string column names can be sent as JSON")
    return {
        "type": "DataFrame",
        "columns": [
            {"name": c, "dtype": str(frame[c].dtype), "values": to_json(_column_array(frame[c]))}
            for c in frame.columns
        ],
        "index": to_json(frame.index.to_numpy()),
        "attrs": to_json(dict(frame.attrs)),
    }


def _column_array(column: Any) -> np.ndarray:
    """A column's values as numpy (strings and categories as Python objects)."""
    if column.dtype.kind in "biufcmM":
        return column.to_numpy()
    return column.astype(object).to_numpy()


def _frame_from_json(data: dict[str, Any]) -> Any:
    import pandas as pd

    columns = {c["name"]: from_json(c["values"]) for c in data["columns"]}
    frame = pd.DataFrame(columns, index=from_json(data["index"]))
    for c in data["columns"]:
        if str(frame[c["name"]].dtype) != c["dtype"]:
            frame[c["name"]] = frame[c["name"]].astype(c["dtype"])
    frame.attrs.update(from_json(data["attrs"]))
    return frame


__all__ = ["TYPES", "dumps", "from_json", "loads", "to_json"]
