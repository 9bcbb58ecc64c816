"""The Deep dock trains through a bucket on the real GCS server: where = a worker process,
events stream into the loss plot and preview, the model is pulled, Denoise makes the result
layer; the bucket's jobs are listed; a reopened dock reattaches to its job."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from napari_celldenoise.synthetic import fluorescence_image

pytestmark = [pytest.mark.qt, pytest.mark.remote, pytest.mark.slow]


@pytest.fixture
def settings_here(tmp_path):
    """QSettings in a temporary folder (the user's own stay untouched)."""
    from qtpy.QtCore import QSettings

    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    yield tmp_path / "settings"
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "settings-after"))


def test_dock_trains_remotely_pulls_denoises_and_reattaches(
    make_napari_viewer, qtbot, bucket, tmp_path, settings_here
):
    from napari_celldenoise._qt.deep import DeepDenoiseWidget
    from napari_celldenoise._qt.deep_remote import WHERE

    viewer = make_napari_viewer()
    noisy, _ = fluorescence_image((64, 64), seed=5)
    viewer.add_image(noisy, name="noisy", scale=(0.2, 0.2), axis_labels=("Y", "X"))
    w = DeepDenoiseWidget(viewer)
    viewer.window.add_dock_widget(w, name="Deep denoise")
    w.folder.setText(str(tmp_path / "model"))
    for box, value in ((w.patch, 32), (w.batch, 2), (w.steps, 2), (w.epochs, 2)):
        box.setValue(value)
    r = w.remote
    assert not r.is_remote() and not r.remote_box.isVisibleTo(w)
    r.where.setCurrentText(WHERE[3])
    r.bucket.setText(bucket)
    r.bucket.editingFinished.emit()
    assert r.is_remote() and r.remote_box.isVisibleTo(w)
    with qtbot.waitSignal(w.panel.finished, timeout=240_000):
        assert w.start_training() is not None
    assert w.plot.epochs == [1, 2]
    assert any(layer.name.startswith("n2v preview") for layer in viewer.layers)
    assert w.last_info is not None and w.last_info.epochs_done == 2
    assert (tmp_path / "model" / "weights_best.h5").is_file()  # pulled
    with qtbot.waitSignal(w.panel.finished, timeout=180_000):
        w.predict_button.click()
    result = viewer.layers["noisy (denoised)"]
    assert result.data.shape == (64, 64) and np.isfinite(np.asarray(result.data)).all()
    viewer.window._qt_window.resize(1400, 900)
    viewer.screenshot(str(tmp_path / "dock.png"), canvas_only=False)

    # the bucket's jobs, listed in a thread worker
    with qtbot.waitSignal(r.refresh().finished, timeout=60_000):
        pass
    assert r.jobs.count() == 1 and "done" in r.jobs.item(0).text()
    url = r.jobs.item(0).data(256)

    # napari reopened while the job was followed: a new dock follows it again
    r._remember(url)
    w.plot.clear()
    again = DeepDenoiseWidget(viewer)
    assert again.remote.bucket.text() == bucket and again.remote.where.currentText() == WHERE[3]
    assert list(settings_here.rglob("deep-remote.*"))  # remembered there, not in the user's
    qtbot.waitUntil(lambda: again.plot.epochs == [1, 2], timeout=60_000)
    qtbot.waitUntil(lambda: not again.panel.running, timeout=60_000)
    assert "tensorflow" not in sys.modules
