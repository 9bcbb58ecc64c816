"""Convert between :class:`ImageData` and napari layer data tuples (no napari import)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .axes import CANONICAL
from .image import ImageData

_PINT_SAFE = {"µm", "nm", "mm", "cm", "m", "s", "ms", "min", "h", "pixel"}
META_KEY = "celldenoise"


def _napari_unit(unit: str) -> str:
    return unit if unit in _PINT_SAFE else "pixel"


def image_to_layers(image: ImageData, name: str | None = None) -> list[tuple[Any, dict, str]]:
    """Layer data tuples for napari: one image layer per channel, scale and units per axis."""
    base = name or _stem(image.path) or "image"
    display_axes = [a for a in image.axes if a not in "CS"]
    kwargs: dict[str, Any] = {
        "scale": [image.scale[a] for a in display_axes],
        "units": [_napari_unit(image.units[a]) for a in display_axes],
        "axis_labels": display_axes,
        "metadata": {META_KEY: layer_facts(image)},
    }
    if image.rgb:
        kwargs["rgb"] = True
    palette = image.extra.get("palette")
    if palette is not None and "C" not in image.axes:
        # a lookup-table PNG: show the indices through the file's own colours
        colors = np.asarray(palette, dtype=float).tolist()
        kwargs["colormap"] = {"colors": colors, "name": _palette_name(colors)}
        kwargs["contrast_limits"] = (0.0, float(len(colors) - 1))
    if image.lazy and not image.rgb:
        # napari would scan the data for its range: read one middle plane instead
        kwargs["contrast_limits"] = _middle_plane_range(image)
    if "C" in image.axes:
        kwargs["channel_axis"] = image.axes.index("C")
        kwargs["name"] = [f"{base} [{c}]" for c in image.channel_names or []]
        kwargs["blending"] = "additive"
        kwargs["metadata"] = [
            {META_KEY: {**layer_facts(image), "channel": c}} for c in image.channel_names or []
        ]
    else:
        kwargs["name"] = base
    return [(image.data, kwargs, "image")]


def _palette_name(colors: list[list[float]]) -> str:
    """A name per distinct palette (napari keeps colormaps by name), e.g. ``LUT #00ff00``."""
    import hashlib

    top = max(colors, key=sum)
    digest = hashlib.sha1(np.asarray(colors).tobytes()).hexdigest()[:6]
    return "LUT #" + "".join(f"{round(255 * c):02x}" for c in top) + f" ({digest})"


def _middle_plane_range(image: ImageData) -> tuple[float, float] | list[tuple[float, float]]:
    """Contrast limits from the middle plane (per channel), read instead of the whole stack."""
    lead = [a for a in image.axes if a not in "YXS"]
    middle = [image.data.shape[i] // 2 for i in range(len(lead))]
    if "C" not in lead:
        return _range(np.asarray(image.data[tuple(middle)]))
    c = lead.index("C")
    limits = []
    for i in range(image.data.shape[c]):
        middle[c] = i
        limits.append(_range(np.asarray(image.data[tuple(middle)])))
    return limits


def _range(plane: np.ndarray) -> tuple[float, float]:
    lo, hi = float(np.min(plane)), float(np.max(plane))
    return (lo, hi if hi > lo else lo + 1.0)


def layer_facts(image: ImageData) -> dict[str, Any]:
    """What the reader knew about the file, stored in ``layer.metadata`` for docks and writers."""
    return {
        "path": image.path,
        "format": image.format,
        "axes": image.axes,
        "file_shape": list(image.shape),
        "scale": dict(image.scale),
        "units": dict(image.units),
        "channel_names": image.channel_names,
        "size_bytes": image.size_bytes,
        "lazy": image.lazy,
    }


def layers_to_image(layer_data: list[tuple[Any, dict, str]]) -> ImageData:
    """One :class:`ImageData` from napari image layers (several same-shape layers = channels).

    Axes follow :func:`axes_of`: the reader's facts, the layer's ``axis_labels`` when they are
    letters, otherwise the number of dimensions (``YX``, ``ZYX``, ``TZYX``).
    """
    if not layer_data:
        raise ValueError("no image layer to write")
    datas = [np.asarray(d) if not hasattr(d, "dask") else d for d, _, _ in layer_data]
    first_meta = layer_data[0][1]
    shapes = {tuple(d.shape) for d in datas}
    if len(shapes) != 1:
        raise ValueError(f"layers to write as channels must have one shape, got {sorted(shapes)}")
    rgb = bool(first_meta.get("rgb", False))
    ndim = datas[0].ndim - (1 if rgb else 0)
    axes = _layer_axes(first_meta, ndim)
    scale_values = list(first_meta.get("scale") or [1.0] * ndim)[-ndim:]
    unit_values = [str(u) for u in (first_meta.get("units") or ["pixel"] * ndim)][-ndim:]
    scale = dict(zip(axes, (float(s) for s in scale_values)))
    units = {a: short_unit(u) for a, u in zip(axes, unit_values)}
    if rgb:
        axes += "S"
    if len(datas) == 1:
        data, names = datas[0], None
    else:
        c_pos = next(i for i, a in enumerate(axes) if CANONICAL.index(a) > CANONICAL.index("C"))
        stack = _stack_lazy if any(hasattr(d, "dask") for d in datas) else np.stack
        data = stack(datas, axis=c_pos)
        axes = axes[:c_pos] + "C" + axes[c_pos:]
        names = [m.get("name") or f"C{i}" for i, (_, m, _) in enumerate(layer_data)]
    return ImageData(
        data=data,
        axes=axes,
        scale=scale,
        units=units,
        channel_names=names,
        lazy=hasattr(data, "dask"),
    )


def _stack_lazy(arrays: list, axis: int) -> Any:
    import dask.array as da

    return da.stack([da.asarray(a) for a in arrays], axis=axis)


def _layer_axes(meta: dict, ndim: int) -> str:
    if ndim > 4:
        raise ValueError(f"cannot name the axes of a {ndim}-dimensional layer")
    return axes_of(
        ndim,
        labels=meta.get("axis_labels") or (),
        metadata=meta.get("metadata"),
        units=meta.get("units") or (),
    )


def known_axes(
    ndim: int,
    *,
    labels: Sequence[Any] = (),
    metadata: Mapping[str, Any] | None = None,
    units: Sequence[Any] = (),
) -> str | None:
    """The axes a layer states, or None when nothing names them.

    The reader's record (``metadata["celldenoise"]["axes"]``, less ``C`` and ``S``, which
    napari splits off or shows as colour) wins when the layer came from a file and has as many
    dimensions; then the layer's ``axis_labels`` when they are distinct ``TZCYX`` letters ending
    in ``YX``; then a time unit (``s``, ``ms``, ...) on the first axis of a 3D layer says
    ``TYX``. napari's default labels (``-3 -2 -1``) name nothing.
    """
    facts = (metadata or {}).get(META_KEY) or {}
    from_file = "".join(a for a in str(facts.get("axes", "")) if a not in "CS")
    if from_file and len(from_file) == ndim:
        return from_file
    names = [str(a).upper() for a in labels][-ndim:] if ndim else []
    if (
        len(names) == ndim >= 2
        and all(len(a) == 1 and a in "TZCYX" for a in names)
        and len(set(names)) == ndim
        and names[-2:] == ["Y", "X"]
    ):
        return "".join(names)
    steps = [short_unit(str(u)) for u in units]
    if ndim == 3 and len(steps) == 3 and steps[0] in _TIME_UNITS:
        return "TYX"
    return None


def axes_of(
    ndim: int,
    *,
    labels: Sequence[Any] = (),
    metadata: Mapping[str, Any] | None = None,
    units: Sequence[Any] = (),
    time: bool = False,
) -> str:
    """Axis letters of a layer with ``ndim`` dimensions (the rule every dock and writer uses).

    Parameters
    ----------
    ndim
        Dimensions of the layer (an RGB layer's colour axis not counted).
    labels, metadata, units
        The layer's ``axis_labels``, ``metadata`` and ``units``; see :func:`known_axes`.
    time
        For an unlabelled 3D layer only: read its first axis as time (``TYX``) rather than
        slices (``ZYX``). Ignored when the axes are known.

    Returns
    -------
    str
        The known axes, else ``YX``, ``ZYX`` (``TYX`` with ``time``), ``TZYX``, ``TZCYX`` by
        ``ndim``; ``X`` for a 1D layer.

    Raises
    ------
    ValueError
        For more than five unnamed dimensions.
    """
    known = known_axes(ndim, labels=labels, metadata=metadata, units=units)
    if known is not None:
        return known
    if ndim == 3 and time:
        return "TYX"
    if ndim > 5:
        raise ValueError(f"cannot name the axes of a {ndim}-dimensional layer")
    return {1: "X", 2: "YX", 3: "ZYX", 4: "TZYX", 5: "TZCYX"}.get(ndim, "")


def layer_axes(layer: Any, *, time: bool = False) -> str:
    """Axis letters of a napari layer: :func:`axes_of` on its ``ndim``, labels, metadata, units."""
    return axes_of(layer.ndim, **_layer_facts(layer), time=time)


def layer_axes_guessed(layer: Any) -> bool:
    """True when nothing names the layer's axes (the docks then offer "treat as time")."""
    return known_axes(layer.ndim, **_layer_facts(layer)) is None


def _layer_facts(layer: Any) -> dict[str, Any]:
    return {
        "labels": getattr(layer, "axis_labels", ()) or (),
        "metadata": getattr(layer, "metadata", None),
        "units": getattr(layer, "units", ()) or (),
    }


_TIME_UNITS = {"s", "ms", "min", "h", "frame"}

_UNIT_WORDS = {
    "micrometer": "µm",
    "nanometer": "nm",
    "millimeter": "mm",
    "second": "s",
    "millisecond": "ms",
    "minute": "min",
    "hour": "h",
    "pixel": "pixel",
}


def short_unit(unit: str) -> str:
    """napari's (pint's) unit names back to our short ones: ``micrometer`` -> ``µm``."""
    return _UNIT_WORDS.get(unit, unit)


def _stem(path: str) -> str:
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif", ".png"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
