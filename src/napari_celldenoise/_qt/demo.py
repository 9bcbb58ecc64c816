"""The main job: napari with the sample data and every CellDenoise dock.

``python -m napari_celldenoise._qt.demo`` opens the window; with ``--headless`` (used by
``scripts/demo.sh`` when there is no display) it runs the same workflow, saves a screenshot of
the whole window and a JSON of results to ``--out`` and exits.

Later capabilities add a step to ``STEPS``: a function ``step(viewer, out_dir) -> dict`` that
drives its dock on the sample data and returns what it measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .spots_demo import step_spots, step_super_resolution

PLUGIN = "napari-celldenoise"
SAMPLES = ["noisy_cells", "spot_movie"]
DOCKS = [
    "Stack info",
    "Deep denoise",
    "Spots",
    "Super-resolution",
    "Classical denoise",
    "Noise",
    "Lattice",
    "Batch",
]


def open_samples(viewer: Any) -> None:
    for key in SAMPLES:
        viewer.open_sample(PLUGIN, key)


def add_docks(viewer: Any) -> dict[str, Any]:
    docks = {}
    for name in DOCKS:
        _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=True)
        docks[name] = widget
    return docks


def step_stack_info(viewer: Any, out: Path, docks: dict[str, Any]) -> dict[str, Any]:
    """Select the noisy image and record what the Stack info dock shows."""
    viewer.layers.selection.active = viewer.layers["cells (noisy)"]
    widget = docks["Stack info"]
    widget.parentWidget().raise_() if widget.parentWidget() else None
    return {"stack_info": widget.text().splitlines()}


def step_deep(viewer: Any, out: Path, docks: dict[str, Any]) -> dict[str, Any]:
    """A few N2V training steps on "cells (noisy)" in the dock's child process, then denoise."""
    from ..deep.config import default_method

    widget = docks["Deep denoise"]
    widget.layer_combo.setCurrentText("cells (noisy)")
    widget.set_method(default_method())
    for spin, value in ((widget.epochs, 2), (widget.steps, 5), (widget.patch, 64),
                        (widget.batch, 8)):  # fmt: skip
        spin.setValue(value)
    widget.folder.setText(str(out.resolve() / "deep-model"))
    if (out / "deep-model").exists():
        import shutil

        shutil.rmtree(out / "deep-model")
    for start in (widget.start_training, widget.start_predict):
        if start() is None:
            return {"deep": "could not start"}
        end = time.monotonic() + 120
        while widget.panel.running and time.monotonic() < end:
            _settle(viewer, 0.2)
    if widget.parentWidget():
        widget.parentWidget().raise_()
    return {"deep": {"epochs": [e.epoch for e in widget.epoch_events],
                     "loss": [round(e.loss, 4) for e in widget.epoch_events],
                     "device": widget.device.text(),
                     "result": "cells (noisy) (denoised)" in viewer.layers}}  # fmt: skip


def step_classical(viewer: Any, out: Path, docks: dict[str, Any]) -> dict[str, Any]:
    """Auto-tune TV (VST) on the noisy cells, apply, PSNR against the clean layer."""
    from .classical import demo_step

    result = demo_step(viewer, out, docks)
    viewer.reset_view()  # the spots step zoomed onto the movie; show the cells whole again
    return result


Step = Callable[[Any, Path, dict[str, Any]], dict[str, Any]]
STEPS: list[Step] = [step_stack_info, step_deep, step_spots, step_super_resolution, step_classical]


def _settle(viewer: Any, seconds: float = 0.5) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--headless", action="store_true", help="run, screenshot, exit")
    parser.add_argument("--out", default="demo-output", help="folder for screenshots/results")
    args = parser.parse_args(argv)

    import napari

    viewer = napari.Viewer(title="napari-celldenoise demo")
    viewer.window._qt_window.resize(1500, 950)
    open_samples(viewer)
    docks = add_docks(viewer)
    if not args.headless:
        for step in STEPS:
            step(viewer, Path(args.out), docks)
        napari.run()
        return 0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"layers": [layer.name for layer in viewer.layers]}
    shots = []
    for i, step in enumerate(STEPS, start=1):
        _settle(viewer)
        results.update(step(viewer, out, docks))
        _settle(viewer, 1.0)
        shots.append(out / f"{i:02d}-{step.__name__.removeprefix('step_')}.png")
        viewer.screenshot(str(shots[-1]), canvas_only=False)
    shot = out / "napari-celldenoise.png"
    viewer.screenshot(str(shot), canvas_only=False)
    (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    for path in shots:
        print(f"screenshot: {path.resolve()}")
    print(f"screenshot: {shot.resolve()}")
    print(f"results:    {(out / 'results.json').resolve()}")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
