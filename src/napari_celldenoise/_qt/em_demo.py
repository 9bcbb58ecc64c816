"""The electron-microscopy walk-through on a real image, driven through the docks.

``python -m napari_celldenoise._qt.em_demo [IMAGE]`` (``scripts/em-demo.sh``, under Xvfb when
there is no display) opens an atomic-resolution image (the real MoS2 ``.dm3`` by default),
measures its lattice in the Lattice dock (overlay and power spectrum), trains a CycleGAN towards
the auto target (from the measured lattice and motif) in the Deep dock, stops it inside epoch 3,
continues, denoises the whole image, and writes four screenshots and a JSON of what it measured
to ``--out`` (``/tmp/em-demo``); the two training screenshots are zoomed onto the outlined
preview patch. The settings are small (256 px crops, a few steps per epoch),
so that it takes minutes on two CPU cores: a demonstration of the workflow, not of quality.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .demo import _settle

PLUGIN = "napari-celldenoise"
DEFAULT_IMAGE = "../shared/data/em/example_Se_implanted_MoS2.dm3"
SHOTS = ("em-01-lattice.png", "em-02-training.png", "em-03-continued.png", "em-04-denoised.png")


def _wait(condition: Any, timeout: float) -> bool:
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while not condition() and time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.05)
    return bool(condition())


def _quiet_notifications(viewer: Any) -> None:
    """Close the notification toasts: they would cover the image in the screenshots."""
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
        toast.close()


def _shot(viewer: Any, out: Path, name: str) -> str:
    _quiet_notifications(viewer)
    _settle(viewer, 1.0)
    path = out / name
    viewer.screenshot(str(path), canvas_only=False)
    return str(path)


def _raise(widget: Any) -> None:
    """Bring the tabbed dock holding ``widget`` to the front."""
    from qtpy.QtWidgets import QDockWidget

    dock = widget.parentWidget()
    while dock is not None and not isinstance(dock, QDockWidget):
        dock = dock.parentWidget()
    if dock is not None:
        dock.show()
        dock.raise_()


def look_at_preview(viewer: Any, deep: Any, image: Any, *, margin: float = 1.8) -> list | None:
    """Zoom the camera onto the Deep dock's preview patch: ``margin`` times its side fills the
    canvas's shorter side, and the view stays inside ``image`` (but for a sliver that keeps
    an outline on its edge in view) where the image is larger than the view. At the whole
    image's zoom a 256 px patch of 1024 px is a small square that looks like the image under
    it. Returns the patch's world extent, None without a preview."""
    import numpy as np

    last = deep.preview.last
    if last is None or last[0] not in viewer.layers or not last[0].visible:
        return None
    patch = np.asarray(last[0].extent.world, float)[:, -2:]
    whole = np.asarray(image.extent.world, float)[:, -2:]
    canvas = np.asarray(viewer.canvas.size, float)  # (height, width) in screen pixels
    side = float(np.max(patch[1] - patch[0]))
    zoom = float(canvas.min()) / (margin * side)
    half = canvas / zoom / 2  # the world half-extent in view, per axis
    fits = 2 * half >= whole[1] - whole[0]
    # a sliver beyond the image, so that an outline on its edge stays in view
    pad = 0.05 * side
    inside = np.clip(patch.mean(axis=0), whole[0] - pad + half, whole[1] + pad - half)
    centre = np.where(fits, whole.mean(axis=0), inside)
    camera = viewer.scene.camera
    camera.center = tuple(float(c) for c in centre)
    camera.zoom = zoom
    return patch.tolist()


def step_lattice(viewer: Any, layer: Any, lattice_dock: Any) -> dict[str, Any]:
    """Measure the lattice of ``layer``: the overlay and the power spectrum with its peaks."""
    lattice_dock.set_layer(layer.name)
    lattice_dock.measure()
    _wait(lambda: not lattice_dock.busy, 120)
    if lattice_dock.lattice is None:
        return {"lattice": lattice_dock.status.text()}
    lat = lattice_dock.result["lattice"]
    return {"lattice": lat, "lattice_status": lattice_dock.status.text()}


def train_until_stopped(deep: Any, *, stop_in: int) -> dict[str, Any]:
    """Train, and press Stop once epoch ``stop_in`` has run a batch or two."""
    if deep.start_training() is None:
        raise RuntimeError("the Deep dock refused to train")
    t0 = time.monotonic()
    steps = deep.steps.value()

    def inside() -> bool:
        bar = deep.panel.progress
        done = len([e for e in deep.epoch_events if not e.partial])
        if done < stop_in - 1:
            return False
        value = bar.value() if bar is not None else 0
        return value >= (stop_in - 1) * steps + min(2, steps - 1)

    _wait(lambda: inside() or not deep.panel.running, 1800)
    if not deep.panel.running:  # it ended by itself: a failed training says why
        raise RuntimeError(f"the training ended before the stop: {deep.panel.failed or 'done'}")
    deep.panel.cancel_button.click()
    _wait(lambda: not deep.panel.running, 600)
    if deep.last_info is None:  # killed, not stopped (it did not answer Stop in time)
        reason = deep.panel.failed or deep.panel.status.text()
        raise RuntimeError(f"the training did not stop with a saved model: {reason}")
    return {"train_seconds": round(time.monotonic() - t0, 1)}


def run_demo(image: str, out: Path, *, steps: int, patch: int, res_blocks: int) -> dict[str, Any]:
    import shutil

    import napari

    from .deep import AUTO_TARGET

    out.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(title="napari-celldenoise: EM demo")
    viewer.window._qt_window.resize(1500, 950)
    (layer,) = viewer.open(image, plugin=PLUGIN)
    _, lattice_dock = viewer.window.add_plugin_dock_widget(PLUGIN, "Lattice", tabify=True)
    _, deep = viewer.window.add_plugin_dock_widget(PLUGIN, "Deep denoise", tabify=True)
    results: dict[str, Any] = {"image": image, "shape": list(layer.data.shape)}
    shots = []
    _raise(lattice_dock)
    results.update(step_lattice(viewer, layer, lattice_dock))
    shots.append(_shot(viewer, out, SHOTS[0]))

    _raise(deep)
    deep.layer_combo.setCurrentText(layer.name)
    deep.set_method("cyclegan")
    deep.target_combo.setCurrentText(AUTO_TARGET)
    deep.gan_box.widgets["res_blocks"].setValue(res_blocks)
    for spin, value in ((deep.epochs, 4), (deep.steps, steps), (deep.patch, patch),
                        (deep.batch, 1)):  # fmt: skip
        spin.setValue(value)
    folder = out / "cyclegan-model"
    shutil.rmtree(folder, ignore_errors=True)
    deep.folder.setText(str(folder))
    # hide the lattice overlay while training: the preview lies on the image
    for other in viewer.layers:
        if other is not layer:
            other.visible = False
    results.update(train_until_stopped(deep, stop_in=3))
    stopped = [(e.epoch, e.partial) for e in deep.epoch_events]
    results["stopped_after"] = {"epochs": stopped, "epochs_done": deep.last_info.epochs_done}
    results["preview_patch"] = look_at_preview(viewer, deep, layer)
    shots.append(_shot(viewer, out, SHOTS[1]))

    deep.epochs.setValue(1)
    t0 = time.monotonic()
    deep.start_training(resume=True)
    _wait(lambda: not deep.panel.running, 1800)
    results["continue_seconds"] = round(time.monotonic() - t0, 1)
    results["continued"] = {
        "epochs_done": deep.last_info.epochs_done,
        "plotted_epochs": list(deep.plot.epochs),
        "preview_layers": [ly.name for ly in viewer.layers if " preview" in ly.name],
    }
    whole = [e for e in deep.epoch_events if not e.partial and e.steps]
    if whole:
        e = whole[-1]
        results["seconds_per_epoch"] = round(e.seconds, 2)
        results["seconds_per_step"] = round(e.seconds / e.steps, 3)
    results["measured_text"] = deep.estimate.text()
    look_at_preview(viewer, deep, layer)
    shots.append(_shot(viewer, out, SHOTS[2]))

    t0 = time.monotonic()
    deep.start_predict()
    _wait(lambda: not deep.panel.running, 1800)
    results["denoise_seconds"] = round(time.monotonic() - t0, 1)
    name = f"{layer.name} (denoised)"
    if name in viewer.layers:
        for other in viewer.layers:
            other.visible = other.name in (name,)
        viewer.layers.selection.active = viewer.layers[name]
        meta = viewer.layers[name].metadata.get("celldenoise", {})
        results["provenance_trainings"] = [t["resume"] for t in meta.get("training", [])]
    viewer.reset_view()
    shots.append(_shot(viewer, out, SHOTS[3]))
    results["screenshots"] = shots
    (out / "em-demo.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    viewer.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", default=DEFAULT_IMAGE, help="EM image to open")
    parser.add_argument("--out", default="/tmp/em-demo", help="folder for the screenshots")
    parser.add_argument("--steps", type=int, default=6, help="training batches per epoch")
    parser.add_argument("--patch", type=int, default=256, help="training crop side (px)")
    parser.add_argument("--res-blocks", type=int, default=3, help="generator residual blocks")
    args = parser.parse_args(argv)
    if not Path(args.image).is_file():
        print(f"no such image: {args.image}", file=sys.stderr)
        return 2
    try:
        results = run_demo(
            args.image, Path(args.out), steps=args.steps, patch=args.patch,
            res_blocks=args.res_blocks,
        )  # fmt: skip
    except RuntimeError as exc:  # a dock refused or a training failed: said in one line
        print(f"em-demo: {exc}", file=sys.stderr)
        return 1
    for path in results["screenshots"]:
        print(f"screenshot: {path}")
    print(f"results:    {Path(args.out) / 'em-demo.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
