"""The Deep dock's preview layer: made by the click that starts a training, filled per epoch.

Adding a layer holds napari's event loop for one long turn (60-100 ms on an idle 2-core
machine, 180-315 ms at a load of 5: its vispy visual, its layer controls, selecting it), and
napari's public API offers no way to spread it over several turns. Made when the first
preview arrived, that addition was the longest stall of a whole training. So the click on
Train (the user's own action, before the child process starts competing for the CPU) makes
the layer, hidden and named for the preview to come; every preview then changes only that
layer's data, and the first one also its name, its place over the patch and its visibility.
A later training on the same image with the same method reuses the layer, as the name
lookup of the previews did before.

The preview is a patch (256 px of a 1024 px EM image, say) that looks like the image under it
until the network has learnt something, so the layer draws its outline (napari's bounding-box
overlay of the layer: no extra layer, no extra stall, it moves and hides with the preview).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..jobs import Preview

PENDING = "(first epoch pending)"


def unwrap(obj: Any) -> Any:
    """The object behind napari's ``PublicOnlyProxy``: a dock added from the Plugins menu
    gets a proxied viewer whose every ``viewer.layers[name]`` is a new proxy of the layer, so
    ``is`` between two of them is False (Continue then made a second preview layer, which
    napari named "... [1]")."""
    return getattr(obj, "__wrapped__", obj)


def same_layer(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are one layer (through napari's proxies)."""
    return a is not None and unwrap(a) is unwrap(b)


def preview_name(name: str, origin: dict[str, int]) -> str:
    """``"n2v preview"`` -> ``"n2v preview (patch at t 3, y 32, x 64)"``: where it was cut."""
    if not origin:
        return name
    return f"{name} (patch at {', '.join(f'{a.lower()} {v}' for a, v in origin.items())})"


def is_preview_name(name: str) -> bool:
    """A layer name this dock gives a preview (not an image to train on)."""
    return name.endswith(" preview") or " preview (" in name


def preview_geometry(src: Any, axes: str, ndim: int, origin: dict[str, int]) -> dict[str, Any]:
    """Scale, translate, units and labels that lay an ``ndim`` preview over its patch in
    ``src`` (its last ``ndim`` axes are the patch's)."""
    n = ndim
    scale = tuple(src.scale[-n:])
    start = [origin.get(a, 0) for a in axes[-n:]]
    translate = tuple(t + s * o for t, s, o in zip(src.translate[-n:], scale, start))
    kwargs: dict[str, Any] = {"scale": scale, "translate": translate}
    for key in ("units", "axis_labels"):
        if hasattr(src, key):
            kwargs[key] = tuple(getattr(src, key))[-n:]
    return kwargs


OUTLINE_COLOUR = "#ffd040"


def outline(layer: Any) -> Any:
    """Draw ``layer``'s outline (its bounding box, without the corner points)."""
    box = layer.bounding_box
    box.points = False
    box.line_color = OUTLINE_COLOUR
    box.line_thickness = 2
    box.visible = True
    return layer


class PreviewLayer:
    """The layer the previews of one training go to (see the module docstring).

    :meth:`prepare` on the click, :meth:`show` per :class:`Preview`, :meth:`finish` when
    the job has ended (a layer made for a training that sent no preview goes again).
    Without :meth:`prepare` (a followed remote job) :meth:`show` adds the layer itself.
    """

    def __init__(self, viewer: Any):
        self.viewer = viewer
        self.layer: Any = None  # this training's layer
        self.pending = False  # no preview of this training shown in it yet
        self.made = False  # made for this training (not reused)
        self.last: tuple[Any, Any, str] | None = None  # (layer, source, method) last shown
        self.selected: set[Any] = set()  # the layers selected before one was made

    def prepare(self, src: Any, axes: str, method: str, shape: tuple[int, ...]) -> Any:
        """The layer for a training of ``method`` on ``src`` with ``shape`` previews."""
        layer = self._reusable(src, method, len(shape))
        self.made = layer is None
        if layer is None:
            self.selected = set(self.viewer.layers.selection)
            geometry = preview_geometry(src, axes, len(shape), {})
            layer = self.viewer.add_image(
                np.zeros(shape, np.float32),
                name=f"{method} preview {PENDING}",
                visible=False,
                contrast_limits=tuple(src.contrast_limits),
                **geometry,
            )
            outline(layer)
        self.layer, self.pending = layer, True
        self.last = (layer, src, method)
        return layer

    def _reusable(self, src: Any, method: str, ndim: int) -> Any:
        if self.last is None:
            return None
        layer, last_src, last_method = self.last
        same = same_layer(last_src, src) and last_method == method and layer.ndim == ndim
        return layer if same and layer in self.viewer.layers else None

    def show(self, event: Preview, src: Any, axes: str) -> None:
        """Show ``event``'s image over the patch of ``src`` it was cut from."""
        origin = event.metadata.get("origin") or {}
        name = preview_name(event.name, origin)
        layer = self.layer
        if layer is None or layer not in self.viewer.layers or layer.ndim != event.image.ndim:
            self._add(event.image, name, src, axes, origin)
            return
        layer.data = event.image
        if not self.pending:
            return
        self.pending = False
        if src is not None and event.image.ndim <= src.ndim:
            geometry = preview_geometry(src, axes, event.image.ndim, origin)
            if not np.allclose(layer.translate, geometry["translate"]):
                layer.translate = geometry["translate"]
        if layer.name != name:
            layer.name = name
            if same_layer(layer, self.viewer.layers.selection.active):
                self.viewer.update_status_from_cursor()  # the status bar names it
        layer.visible = True

    def _add(self, image: np.ndarray, name: str, src: Any, axes: str, origin: dict) -> None:
        """No layer made for this training: one named ``name`` gets the image, else a new one."""
        if name in self.viewer.layers:
            self.viewer.layers[name].data = image
            return
        kwargs: dict[str, Any] = {}
        if src is not None and image.ndim <= src.ndim:
            kwargs = preview_geometry(src, axes, image.ndim, origin)
            kwargs["contrast_limits"] = tuple(src.contrast_limits)
        outline(self.viewer.add_image(image, name=name, **kwargs))

    def finish(self) -> None:
        """The job ended: a layer made for it that never got a preview is removed (and the
        layers selected before it was made are selected again)."""
        layer, unused = self.layer, self.pending and self.made
        self.layer, self.pending, self.made = None, False, False
        if unused and layer in self.viewer.layers:
            self.viewer.layers.remove(layer)
            self.last = None
            selection = self.viewer.layers.selection
            if not selection:
                selection.update(x for x in self.selected if x in self.viewer.layers)
