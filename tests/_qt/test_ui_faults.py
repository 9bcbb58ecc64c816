"""The viewer under faults: one notification per fault, a dock ready again, no stalls.

Faults are real: a SIGKILLed training child, a corrupt file opened through the plugin's
reader, a save into a full filesystem (a tiny tmpfs filled to the last byte where this
process may mount one, else a file-size limit on this process), an old pickle classifier.
The event loop's responsiveness is measured with a 10 ms timer: the longest gap between its
ticks during a short training and a whole-stack spots run must stay under 100 ms.
"""

from __future__ import annotations

import errno
import os
import pickle
import resource
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_celldenoise.spots.simulate import simulate_spots
from napari_celldenoise.synthetic import fluorescence_image

pytestmark = pytest.mark.qt

MAX_STALL_S = 0.100


@pytest.fixture
def notes():
    """Every napari notification shown during the test: ``[(severity, message)]``."""
    from napari.utils.notifications import notification_manager

    seen: list[tuple[str, str]] = []

    def record(event):
        seen.append((str(event.severity), str(event.message)))

    notification_manager.notification_ready.connect(record)
    yield seen
    notification_manager.notification_ready.disconnect(record)


def _errors(seen):
    return [m for s, m in seen if s.lower() == "error"]


class StallMeter:
    """A 10 ms precise timer on the main thread that keeps the time of every tick.

    ``longest`` is the largest gap between ticks; :meth:`split` separates the gaps during
    which the dock did something (intervals recorded by :func:`timed`: showed a result,
    handled a click) from the others.
    """

    def __init__(self):
        from qtpy.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.ticks: list[float] = []

    def _tick(self):
        self.ticks.append(time.perf_counter())

    @property
    def gaps(self) -> list[tuple[float, float]]:
        return list(zip(self.ticks, self.ticks[1:]))

    @property
    def longest(self) -> float:
        return max((b - a for a, b in self.gaps), default=0.0)

    def split(self, *groups: list[tuple[float, float]]) -> tuple[float, ...]:
        """The longest gap overlapping no interval of any group (while working), then the
        longest overlapping each group's intervals (a gap goes to the first group it meets)."""
        longest = [0.0] * (len(groups) + 1)
        for a, b in self.gaps:
            k = next(
                (i for i, group in enumerate(groups, 1) if any(s < b and e > a for s, e in group)),
                0,
            )
            longest[k] = max(longest[k], b - a)
        return tuple(longest)

    def __enter__(self):
        self._tick()
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self._tick()  # a stall at the very end counts too
        self.timer.stop()


def timed(monkeypatch, obj, names, intervals):
    """Record when ``obj``'s methods ``names`` run (they still run as they are)."""
    for name in names:
        method = getattr(obj, name)

        def wrapper(*args, _method=method, **kwargs):
            start = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                intervals.append((start, time.perf_counter()))

        monkeypatch.setattr(obj, name, wrapper)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


@pytest.fixture
def spots_dock(make_napari_viewer, qtbot):
    from napari_celldenoise._qt.spots import SpotsWidget

    viewer = make_napari_viewer()
    frames, _ = simulate_spots(8, (96, 96), n_spots=25, background=(5.0, 30.0), seed=5)
    viewer.add_image(frames, name="movie", scale=(1.0, 0.1, 0.1))
    widget = SpotsWidget(viewer)
    qtbot.addWidget(widget)
    return viewer, widget


@pytest.fixture
def deep_dock(make_napari_viewer, qtbot, tmp_path):
    from napari_celldenoise._qt.deep import DeepDenoiseWidget

    viewer = make_napari_viewer()
    noisy, _ = fluorescence_image((96, 96), seed=5)
    viewer.add_image(noisy, name="noisy", scale=(0.2, 0.2))
    widget = DeepDenoiseWidget(viewer)
    qtbot.addWidget(widget)
    widget.folder.setText(str(tmp_path / "model"))
    widget.patch.setValue(32)
    widget.batch.setValue(2)
    widget.steps.setValue(2)
    return viewer, widget


# --------------------------------------------------------------------------- trust


class _Marker:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _answer(monkeypatch, button):
    """Make the next QMessageBox.warning return ``button``; returns the texts it showed."""
    from qtpy.QtWidgets import QMessageBox

    shown: list[str] = []

    def warning(parent, title, text, *args, **kwargs):
        shown.append(f"{title}\n{text}")
        return button

    monkeypatch.setattr(QMessageBox, "warning", staticmethod(warning))
    return shown


def test_a_pickle_classifier_asks_first_and_runs_nothing_when_refused(
    spots_dock, notes, monkeypatch, tmp_path
):
    import joblib
    from qtpy.QtWidgets import QMessageBox

    from napari_celldenoise.spots.classifier_file import MODEL_FORMAT
    from napari_celldenoise.spots.classify import SpotClassifier

    _, widget = spots_dock
    marker = tmp_path / "pwned"
    evil = tmp_path / "from_a_colleague.joblib"
    evil.write_bytes(pickle.dumps({"format": MODEL_FORMAT, "hook": _Marker(marker)}))
    shown = _answer(monkeypatch, QMessageBox.StandardButton.No)
    widget._guard(widget.load_classifier, str(evil))
    assert len(shown) == 1 and "from_a_colleague.joblib" in shown[0]
    assert "run any code" in shown[0]
    assert not marker.exists() and widget.classifier is None
    assert len(notes) == 1 and "not opened" in notes[0][1]

    rng = np.random.default_rng(0)
    table = pd.DataFrame({"sigma": rng.uniform(0.5, 2.5, 60), "photons": rng.uniform(1, 900, 60)})
    labels = np.where(table["photons"] > 300, "good", "bad")
    clf = SpotClassifier(["sigma", "photons"], 3, use_image=False).fit(table, labels)
    old = tmp_path / "old.joblib"
    joblib.dump({**clf._payload(), "format": MODEL_FORMAT, "version": 1}, old)
    shown = _answer(monkeypatch, QMessageBox.StandardButton.Yes)
    widget._guard(widget.load_classifier, str(old))
    assert len(shown) == 1 and widget.classifier is not None
    assert "old.joblib" in widget.classifier_label.text()
    np.testing.assert_array_equal(widget.classifier.predict(table), clf.predict(table))
    saved = widget.save_classifier(str(tmp_path / "again.skops"))  # re-saved: no pickle left
    shown = _answer(monkeypatch, QMessageBox.StandardButton.No)
    widget._guard(widget.load_classifier, str(saved))
    assert shown == [] and len(notes) == 1


# --------------------------------------------------------------------------- reader


def test_a_corrupt_file_through_the_reader_is_one_notification(make_napari_viewer, notes, tmp_path):
    import tifffile

    viewer = make_napari_viewer()
    good = tmp_path / "good.tif"
    stack = np.arange(4 * 64 * 64, dtype=np.uint16).reshape(4, 64, 64)
    tifffile.imwrite(good, stack, photometric="minisblack")
    broken = tmp_path / "broken.tif"
    broken.write_bytes(good.read_bytes()[:200])  # the header and part of the first IFD
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"II*\x00" + os.urandom(3000))
    for path in (broken, garbage):
        before = len(notes)
        viewer.open(path, plugin="napari-celldenoise")
        errors = _errors(notes[before:])
        assert len(notes) - before == 1 and len(errors) == 1, notes[before:]
        assert path.name in errors[0] and "Traceback" not in errors[0]
    assert len(viewer.layers) == 0
    (layer,) = viewer.open(good, plugin="napari-celldenoise")  # the viewer reads on
    assert layer.data.shape == (4, 64, 64)


# --------------------------------------------------------------------------- full disk


@contextmanager
def full_disk(tmp_path: Path):
    """A folder in which every write fails: yields ``(folder, errno)``.

    As root with mount rights: a 64 KiB tmpfs, filled (ENOSPC). Otherwise this process's
    RLIMIT_FSIZE drops to 0 while the block runs (EFBIG, SIGXFSZ ignored).
    """
    folder = tmp_path / "full"
    folder.mkdir()
    mounted = (
        os.geteuid() == 0
        and shutil.which("mount") is not None
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True
        ).returncode
        == 0
    )
    if mounted:
        try:
            fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
            try:
                while True:
                    os.write(fd, b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
            finally:
                os.close(fd)
            yield folder, errno.ENOSPC
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))
    try:
        yield folder, errno.EFBIG
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_whole_stack_spots_run_stays_responsive_and_a_full_disk_is_one_notification(
    spots_dock, qtbot, notes, tmp_path, monkeypatch
):
    from napari_celldenoise.spots.classify import SpotClassifier
    from napari_celldenoise.spots.pipeline import locate

    viewer, widget = spots_dock
    # numba compiles the fit kernels once per installation (then loads them from its cache);
    # that one-off compile is not what this test measures
    locate(viewer.layers["movie"].data, widget.config())
    qtbot.waitUntil(lambda: "spots preview" in viewer.layers, timeout=20_000)  # dock settled
    shows: list[tuple[float, float]] = []
    timed(monkeypatch, widget.jobs, ["_step"], shows)  # one step of showing the result
    stalls = []
    for _ in range(3):  # a rerun only when a run stalled: one pause of the machine (another
        shows.clear()  # process, a collection) is not the dock's doing; three in a row are
        with StallMeter() as meter, qtbot.waitSignal(widget.jobs.finished, timeout=120_000):
            assert widget.run() is not None
        working, showing = meter.split(shows)
        print(f"spots run: longest stall {ms(working)} while working, {ms(showing)} showing")
        assert len(shows) >= 5 and len(meter.ticks) >= 3  # shown in steps, the timer ran
        stalls.append(meter.longest)
        if stalls[-1] < MAX_STALL_S:
            break
    # the first run turns the preview into the result layer, a rerun updates its own layer
    assert min(stalls) < MAX_STALL_S, [ms(s) for s in stalls]
    n_spots = len(viewer.layers["movie spots"].data)
    assert n_spots > 50
    table = pd.DataFrame({"sigma": np.linspace(0.5, 2.5, 40), "photons": np.linspace(1, 900, 40)})
    clf = SpotClassifier(["sigma", "photons"], 3, use_image=False)
    widget.state.classifier = clf.fit(table, np.where(table["photons"] > 300, "good", "bad"))
    notes.clear()
    with full_disk(tmp_path) as (folder, code):
        before = sorted(p.name for p in folder.iterdir())
        widget._guard(widget.save_csv, str(folder / "spots.csv"))
        widget._guard(widget.save_classifier, str(folder / "spots.skops"))
        after = sorted(p.name for p in folder.iterdir())
    print(f"full disk: errno {errno.errorcode[code]}; notifications {notes}")
    assert after == before  # no partial file, no temporary left behind
    errors = _errors(notes)
    assert len(notes) == 2 and len(errors) == 2, notes
    assert all(os.strerror(code) in e for e in errors), errors
    assert "spots.csv" in errors[0] and "spots.skops" in errors[1]
    assert not widget.jobs.running
    path = widget.save_csv(str(tmp_path / "spots.csv"))  # the dock goes on
    assert len(pd.read_csv(path, comment="#")) == n_spots


def test_a_result_shown_in_steps_lets_the_event_loop_turn_and_finishes_after_them(qtbot, notes):
    from qtpy.QtCore import QTimer

    from napari_celldenoise._qt.jobs import JobPanel
    from napari_celldenoise.jobs import Done

    panel = JobPanel()
    qtbot.addWidget(panel)
    order: list = []
    panel.finished.connect(lambda: order.append("finished"))

    def show(result, fail=False):
        for k in range(3):
            order.append((k, result))
            QTimer.singleShot(0, lambda k=k: order.append(f"turn after {k}"))
            if fail and k == 1:
                raise ValueError("the layer went away")
            yield

    with qtbot.waitSignal(panel.finished, timeout=20_000):
        panel.start(lambda stop: iter([Done(7)]), on_done=show)
    qtbot.waitUntil(lambda: "turn after 2" in order, timeout=5_000)
    assert order[:6] == [(0, 7), "turn after 0", (1, 7), "turn after 1", (2, 7), "turn after 2"]
    assert order.index("finished") > order.index((2, 7)) and not panel.running
    order.clear()
    with qtbot.waitSignal(panel.finished, timeout=20_000):
        panel.start(lambda stop: iter([Done(8)]), on_done=lambda r: show(r, fail=True))
    assert (2, 8) not in order and not panel.running
    assert _errors(notes) == ["the layer went away"] and "failed" in panel.status.text()


# --------------------------------------------------------------------------- training child


@pytest.mark.slow
def test_a_short_training_keeps_the_viewer_responsive(deep_dock, qtbot, monkeypatch):
    """From the click on Train to the end, no stall of 100 ms.

    The click itself makes the preview's layer (adding a layer is one long turn of napari's
    event loop, see docs/reliability.md): that is the user's own action, before the training
    runs, and its cost is printed apart. Everything after it, the first preview included,
    adds no layer and must stay under the limit.
    """
    viewer, w = deep_dock
    w.epochs.setValue(1)
    clicks: list[tuple[float, float]] = []
    shows: list[tuple[float, float]] = []
    timed(monkeypatch, w, ["start_training"], clicks)
    timed(monkeypatch, w, ["_on_train_event", "_train_done"], shows)
    with StallMeter() as meter, qtbot.waitSignal(w.panel.finished, timeout=180_000):
        assert w.start_training() is not None
        after_click = list(viewer.layers)
    working, clicking, showing = meter.split(clicks, shows)
    print(
        f"training: the click (the preview layer made) {ms(clicking)}; then longest stall "
        f"{ms(working)} while working, {ms(showing)} showing"
    )
    assert w.last_info is not None and w.last_info.epochs_done == 1
    assert len(meter.ticks) > 100
    assert list(viewer.layers) == after_click  # no layer added while training
    (preview,) = [layer for layer in after_click if layer.name.startswith("n2v preview")]
    assert preview.visible and "(patch at y " in preview.name  # filled, named and shown
    assert max(working, showing) < MAX_STALL_S, (ms(working), ms(showing))


def _spawned_children() -> list[int]:
    import psutil

    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            line = " ".join(p.cmdline())
        except psutil.Error:  # ended meanwhile
            continue
        if "spawn_main" in line and "resource_tracker" not in line:
            found.append(p.pid)
    return found


@pytest.mark.slow
def test_a_killed_training_child_is_one_notification_and_the_dock_is_ready(deep_dock, qtbot, notes):
    _, w = deep_dock
    w.epochs.setValue(500)
    assert w.start_training() is not None
    label = w.panel.status.text()  # until the child runs and its first event arrived
    qtbot.waitUntil(lambda: len(_spawned_children()) == 1, timeout=60_000)
    qtbot.waitUntil(lambda: w.panel.status.text() != label, timeout=120_000)
    (child,) = _spawned_children()
    notes.clear()
    with qtbot.waitSignal(w.panel.finished, timeout=20_000):
        os.kill(child, signal.SIGKILL)
    errors = _errors(notes)
    assert len(notes) == 1 and len(errors) == 1, notes
    assert "died" in errors[0] and "-9" in errors[0]
    assert not w.panel.running and not w.panel.cancel_button.isEnabled()
    assert "failed" in w.panel.status.text()
