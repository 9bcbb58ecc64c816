"""A job that fails leaves its dock ready: the error is a notification, the buttons are
enabled again, Stop/Cancel is reset and the next job starts and finishes."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.synthetic import fluorescence_image

pytestmark = pytest.mark.qt


def _wait_ready(qtbot, panel, timeout=120_000):
    qtbot.waitUntil(lambda: not panel.running, timeout=timeout)
    assert not panel.cancel_button.isEnabled()


def _failing_job(should_stop):
    """What superqt's worker mistakes for "the worker was deleted": a RuntimeError."""
    yield from ()
    raise RuntimeError("the disk went away")


def test_a_runtime_error_in_any_job_still_ends_the_job(make_napari_viewer, qtbot, errors):
    from napari_celldenoise._qt.jobs import JobPanel

    make_napari_viewer()
    panel = JobPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.finished, timeout=10_000):
        assert panel.start(_failing_job) is not None
    assert errors == ["the disk went away"] and panel.failed == "the disk went away"
    assert "failed: the disk went away" in panel.status.text()


@pytest.mark.slow
def test_deep_dock_is_ready_after_denoise_with_an_empty_model_folder(
    make_napari_viewer, qtbot, tmp_path, errors
):
    from napari_celldenoise._qt.deep import DeepDenoiseWidget

    viewer = make_napari_viewer()
    noisy, _ = fluorescence_image((64, 64), seed=5)
    viewer.add_image(noisy, name="noisy", axis_labels=("Y", "X"))
    w = DeepDenoiseWidget(viewer)
    qtbot.addWidget(w)
    empty = tmp_path / "empty"
    empty.mkdir()
    w.folder.setText(str(empty))
    assert w.start_predict() is not None
    assert not w.predict_button.isEnabled()  # busy while the child runs
    _wait_ready(qtbot, w.panel)
    # the child's own line, bad input told without the exception's class name
    assert errors == [
        f"{empty}: not a model folder (no celldenoise.yaml); train one with `celldenoise train`"
    ]
    assert w.panel.status.text().startswith("failed:")
    buttons = (w.train_button, w.continue_button, w.predict_button, w.export_button)
    assert all(b.isEnabled() for b in buttons)
    # the next job starts at once (no "A job is already running") and finishes
    w.folder.setText(str(tmp_path / "model"))
    w.patch.setValue(32)
    w.batch.setValue(2)
    w.steps.setValue(2)
    w.epochs.setValue(1)
    with qtbot.waitSignal(w.panel.finished, timeout=180_000):
        assert w.start_training() is not None
    assert w.last_info is not None and w.last_info.epochs_done == 1
    assert w.panel.failed is None and len(errors) == 1


def test_classical_dock_is_ready_after_a_failing_apply(make_napari_viewer, qtbot, errors):
    from napari_celldenoise._qt.classical import ClassicalDenoiseWidget

    viewer = make_napari_viewer()
    tiny = np.random.default_rng(0).poisson(20, (3, 32, 32)).astype(np.float32)
    viewer.add_image(tiny, name="tiny", axis_labels=("T", "Y", "X"))
    widget = ClassicalDenoiseWidget(viewer)
    qtbot.addWidget(widget)
    widget.live.setChecked(False)
    widget.set_method("bragg")  # pure noise holds no lattice: the job itself fails
    assert widget.apply_to_stack() is not None
    _wait_ready(qtbot, widget.jobs)
    assert errors and "no lattice found" in errors[-1]
    assert [ly.name for ly in viewer.layers] == ["tiny"]
    assert widget.apply_button.isEnabled() and widget.tune_button.isEnabled()
    widget.set_method("median")
    with qtbot.waitSignal(widget.jobs.finished, timeout=30_000):
        assert widget.apply_to_stack() is not None
    qtbot.waitUntil(lambda: len(viewer.layers) == 2, timeout=5000)
    assert widget.jobs.failed is None


@pytest.mark.slow
def test_spots_dock_is_ready_after_a_failing_centroid_training(make_napari_viewer, qtbot, errors):
    from napari_celldenoise._qt.spots import SpotsWidget
    from napari_celldenoise.spots.simulate import simulate_spots

    viewer = make_napari_viewer()
    frames, _ = simulate_spots(1, (48, 48), n_spots=6, background=(5.0, 30.0), seed=3)
    viewer.add_image(frames[0], name="few spots")
    widget = SpotsWidget(viewer)
    qtbot.addWidget(widget)
    with qtbot.waitSignal(widget.jobs.finished, timeout=60_000):
        assert widget.run() is not None
    widget.centroid_kind.setCurrentText("ridge")
    widget.centroid_source.setCurrentIndex(0)  # the fitted spots: too few to learn from
    assert widget.train_centroid() is not None
    _wait_ready(qtbot, widget.jobs)
    assert errors and "at least 20 spots" in errors[-1]
    assert widget.jobs.status.text().startswith("failed:")
    with qtbot.waitSignal(widget.jobs.finished, timeout=60_000):
        assert widget.run() is not None
    assert widget.jobs.failed is None and widget.state.table is not None


def test_noise_dock_reports_a_bad_estimate_and_still_estimates(make_napari_viewer, errors):
    from napari_celldenoise._qt.noise import NoiseWidget

    viewer = make_napari_viewer()
    noisy, _ = fluorescence_image((64, 64), seed=1)
    viewer.add_image(noisy, name="plane")
    widget = NoiseWidget(viewer)
    widget.est_stack.setChecked(True)  # repeated frames of a single plane: refused
    assert widget.estimate() is None
    assert errors and "T or Z axis" in errors[-1]
    widget.est_stack.setChecked(False)
    assert widget.estimate() is not None


UNGUARDED_SCRIPT = """\
import time
import napari
import numpy as np
from qtpy.QtWidgets import QApplication
from napari_celldenoise._qt.deep import DeepDenoiseWidget
viewer = napari.Viewer(show=False)
viewer.add_image(np.random.default_rng(0).poisson(20, (64, 64)).astype("float32"))
dock = DeepDenoiseWidget(viewer)
dock.folder.setText({folder!r})
dock.start_training()
end = time.monotonic() + 60
while dock.panel.running and time.monotonic() < end:
    QApplication.processEvents()
    time.sleep(0.05)
print("still running" if dock.panel.running else f"failed: {{dock.panel.failed}}")
viewer.close()
"""


@pytest.mark.slow
def test_train_from_a_script_without_main_guard_fails_at_once(tmp_path):
    """The child would run the script again (a second viewer, a second Train) and hang."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = tmp_path / "drive_napari.py"
    script.write_text(UNGUARDED_SCRIPT.format(folder=str(tmp_path / "model")))
    src = Path(__file__).resolve().parents[2] / "src"
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(src)},
    )
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert last.startswith("failed: drive_napari.py, line 6"), last
    assert 'if __name__ == "__main__":' in last
    assert time.monotonic() - t0 < 60
    assert not (tmp_path / "model").exists()  # nothing was started


@pytest.fixture
def without_deep(monkeypatch):
    """The "deep" extra hidden from the import system, as in a base install with napari."""
    import importlib.abc
    import sys

    from napari_celldenoise.extras import EXTRAS

    hidden = {m.split(".")[0] for m in EXTRAS["deep"]}
    if set(EXTRAS["deep"]) & set(sys.modules):  # (a namespace parent such as bioimageio is fine)
        pytest.skip("a module of the deep extra is already imported in this process")

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in hidden:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    monkeypatch.setattr(sys, "meta_path", [NotInstalled(), *sys.meta_path])


def test_docks_opened_without_the_deep_extra_say_so(
    without_deep, make_napari_viewer, qtbot, tmp_path, errors
):
    from napari_celldenoise._qt.deep import DeepDenoiseWidget
    from napari_celldenoise._qt.spots import SpotsWidget

    viewer = make_napari_viewer()
    noisy, _ = fluorescence_image((64, 64), seed=5)
    viewer.add_image(noisy, name="noisy")
    deep = DeepDenoiseWidget(viewer)
    qtbot.addWidget(deep)
    install = 'pip install "napari-celldenoise[deep]"'
    assert deep.missing_extra is not None and deep.missing_extra.isVisibleTo(deep)
    assert install in deep.missing_extra.text()
    buttons = (deep.train_button, deep.continue_button, deep.predict_button, deep.export_button)
    assert not any(b.isEnabled() for b in buttons)
    # a script that starts a job anyway gets the same line at once, no child is started
    deep.folder.setText(str(tmp_path))
    assert deep.start_predict() is not None
    _wait_ready(qtbot, deep.panel, timeout=10_000)
    assert errors and install in errors[-1]
    assert not any(b.isEnabled() for b in buttons)

    spots = SpotsWidget(viewer)
    qtbot.addWidget(spots)
    kinds = [spots.centroid_kind.itemText(i) for i in range(spots.centroid_kind.count())]
    assert kinds == ["ridge"]
    assert spots.missing_extra is not None and install in spots.missing_extra.text()
    assert "centroid network" in spots.missing_extra.text()


def test_docks_with_every_extra_show_no_warning(make_napari_viewer, qtbot):
    from napari_celldenoise._qt.deep import DeepDenoiseWidget
    from napari_celldenoise._qt.spots import SpotsWidget

    viewer = make_napari_viewer()
    deep, spots = DeepDenoiseWidget(viewer), SpotsWidget(viewer)
    qtbot.addWidget(deep)
    qtbot.addWidget(spots)
    assert deep.missing_extra is None and spots.missing_extra is None
    assert deep.train_button.isEnabled() and spots.centroid_kind.findText("mlp") >= 0
