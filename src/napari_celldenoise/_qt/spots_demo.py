"""The Spots step of the demo: detection and fit on the "spots" sample through the dock,
scored against the "spots (truth)" layer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def step_spots(viewer: Any, out: Path, docks: dict[str, Any]) -> dict[str, Any]:
    """Run the Spots dock on the sample movie; F1 of the good spots at 1 px vs the truth."""
    from qtpy.QtWidgets import QApplication

    from ..spots.match import match_points

    widget = docks["Spots"]
    if widget.parentWidget() is not None:
        widget.parentWidget().raise_()
    widget.layer_combo.setCurrentText("spots")
    widget.update_preview()
    candidates = widget.preview_label.text()
    t0 = time.monotonic()
    if widget.run() is None:
        return {"spots": "could not start"}
    while widget.jobs.running and time.monotonic() - t0 < 60:
        QApplication.processEvents()
        time.sleep(0.02)
    seconds = time.monotonic() - t0
    if widget.table is None or "spots (truth)" not in viewer.layers:
        return {"spots": "no result"}
    points = viewer.layers["spots (found)"]
    truth = viewer.layers["spots (truth)"].data
    good = points.features["class"].to_numpy() == "good"
    found = points.data[good]
    m = match_points(
        found[:, 1:], truth[:, 1:], found_frame=found[:, 0], true_frame=truth[:, 0], tolerance=1.0
    )
    # bring the movie and its spots to the top and the view onto them (other layers stay)
    for name in ("spots", "spots (found)"):
        viewer.layers.move(viewer.layers.index(name), len(viewer.layers))
    image = viewer.layers["spots"]
    (lo, hi) = image.extent.world[:, -2:]
    # napari >= 0.9 keeps the camera on viewer.scene (viewer.camera is deprecated there)
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    camera.center = tuple((lo + hi) / 2)
    canvas = viewer.window._qt_viewer.canvas.size
    camera.zoom = 0.9 * min(canvas[0] / (hi[0] - lo[0]), canvas[1] / (hi[1] - lo[1]))
    viewer.layers.selection.active = points
    return {
        "spots": {
            "preview": candidates,
            "found": len(points.data),
            "good": int(good.sum()),
            "true": len(truth),
            "f1_at_1px": round(m.f1, 4),
            "rmse_px": round(m.rmse, 4),
            "seconds": round(seconds, 1),
            "summary": widget.summary.text(),
        }
    }


def step_super_resolution(viewer: Any, out: Path, docks: dict[str, Any]) -> dict[str, Any]:
    """Render the found spots in the Super-resolution dock (Gaussian, each spot's own
    uncertainty, 10x the camera's pixels) as an image layer in nm."""
    from qtpy.QtWidgets import QApplication

    widget = docks["Super-resolution"]
    if widget.parentWidget() is not None:
        widget.parentWidget().raise_()
    if "spots (found)" not in viewer.layers:
        return {"super_resolution": "no spots to render"}
    widget.set_source("spots (found)")
    widget.magnification_spin.setValue(4.0)  # 25 nm pixels: 20 frames of spots stay visible
    t0 = time.monotonic()
    if widget.render() is None:
        return {"super_resolution": "could not start"}
    while widget.jobs.running and time.monotonic() - t0 < 60:
        QApplication.processEvents()
        time.sleep(0.02)
    name = "spots (found) super-resolution"
    if name not in viewer.layers:
        return {"super_resolution": "no render"}
    layer = viewer.layers[name]
    viewer.layers.move(viewer.layers.index(name), len(viewer.layers))  # on top, in view
    for other in ("preview", "spots (found)"):  # the live Classical preview stays on top
        if other in viewer.layers:
            viewer.layers[other].visible = False
    (lo, hi) = layer.extent.world[:, -2:]
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    camera.center = tuple((lo + hi) / 2)
    canvas = viewer.window._qt_viewer.canvas.size
    camera.zoom = 0.9 * min(canvas[0] / (hi[0] - lo[0]), canvas[1] / (hi[1] - lo[1]))
    return {
        "super_resolution": {
            "layer": name,
            "shape": list(layer.data.shape),
            "pixel_nm": round(float(layer.scale[-1]), 3),
            "seconds": round(time.monotonic() - t0, 2),
        }
    }
