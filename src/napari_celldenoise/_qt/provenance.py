"""The spec behind a dock's output layer: built from the layer the dock read, kept in metadata.

A dock that makes a layer from an image read from a file records the job spec that makes the
same result from that file (``layer.metadata["celldenoise"]["spec"]``, a plain dict): saved as
YAML it replays with ``celldenoise run``, and a batch run can apply it to other files. A layer
that did not come from a file (or a run the spec cannot describe) records no spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io.layers import META_KEY
from ..jobs.specs import AnySpec, parse_spec

SPEC_KEY = "spec"


def layer_source(layer: Any) -> tuple[str | None, int | None]:
    """``(path, channel)``: the file ``layer`` was read from and its channel index there."""
    record = (layer.metadata or {}).get(META_KEY) or {}
    path = record.get("path") or str(getattr(layer.source, "path", "") or "")
    if not path:
        return None, None
    names = record.get("channel_names") or []
    channel = record.get("channel")
    return path, (names.index(channel) if channel in names else None)


def input_axes(layer: Any, axes: str) -> str | None:
    """The axes a spec must state for its input: None when the file's own axes give ``axes``
    (a channel split off as this layer aside), else ``axes`` (e.g. "first axis is time")."""
    record = (layer.metadata or {}).get(META_KEY) or {}
    file_axes = str(record.get("axes") or "")
    return None if file_axes.replace("C", "").replace("S", "") == axes else axes


def beside(path: str, suffix: str) -> str:
    """An output path next to the input: ``cells.ome.tif`` -> ``cells_tv.ome.tif``."""
    p = Path(path)
    stem = p.name.split(".")[0]
    return str(p.with_name(f"{stem}{suffix}"))


def spec_metadata(spec: AnySpec | None, **extra: Any) -> dict[str, Any]:
    """The ``layer.metadata`` of an output layer: ``{"celldenoise": {..., "spec": {...}}}``."""
    record = dict(extra)
    if spec is not None:
        record[SPEC_KEY] = spec.to_dict()
    return {META_KEY: record}


def layer_spec(layer: Any) -> AnySpec | None:
    """The spec recorded with ``layer`` (None when it has none)."""
    data = ((layer.metadata or {}).get(META_KEY) or {}).get(SPEC_KEY)
    return parse_spec(data) if isinstance(data, dict) else None
