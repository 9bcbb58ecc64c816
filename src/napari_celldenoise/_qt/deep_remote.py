"""The Deep dock's "where to train" part: this computer, a Cloud TPU VM, Colab, or a worker
process here that trains through the bucket (a lab GPU machine; the tests).

Remote training reuses the dock's own job panel, loss plot and preview: the job generator is
:func:`..remote.follow.submit` (or :func:`~..remote.follow.follow` to reattach), which polls
the job folder in the panel's thread worker, so the UI never waits on the network and Stop
writes the job's ``stop`` object. Bucket, zone, accelerator and the job being followed are
remembered between napari sessions (``QSettings``; no credential is ever stored: gcsfs and
gcloud find the user's own). Reopening napari reattaches to the job that was running.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error
from qtpy.QtCore import QSettings
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

WHERE = ("this computer", "Cloud TPU VM", "Colab", "worker process here (via the bucket)")
LAUNCHERS = {WHERE[1]: "tpu-vm", WHERE[2]: "colab", WHERE[3]: "local"}
ACCELERATORS = ("v5litepod-1", "v5litepod-4", "v5litepod-8", "v6e-1", "v6e-4", "v4-8")
FIELDS = ("where", "bucket", "zone", "accelerator", "spot", "attached")


class RemoteTraining(QWidget):
    """Where to train, the bucket's jobs, and the remote job the dock follows."""

    def __init__(self, host: Any = None, *, settings: QSettings | None = None):
        super().__init__()
        self.host = host
        self.settings = settings or QSettings("napari-celldenoise", "deep-remote")
        self.where = QComboBox()
        self.where.addItems(WHERE)
        self.bucket = QLineEdit()
        self.bucket.setPlaceholderText("gs://your-bucket/celldenoise")
        self.zone = QLineEdit()
        self.zone.setPlaceholderText("us-central1-a")
        self.accelerator = QComboBox()
        self.accelerator.setEditable(True)
        self.accelerator.addItems(ACCELERATORS)
        self.spot = QCheckBox("spot (cheaper, may be preempted: the job resumes)")
        self.price = QLabel("")
        self.price.setWordWrap(True)
        self.jobs = QListWidget()
        self.jobs.setMaximumHeight(110)
        self.refresh_button = QPushButton("Refresh jobs")
        self.attach_button = QPushButton("Follow selected")
        self.refresh_button.clicked.connect(self.refresh)
        self.attach_button.clicked.connect(self.attach_selected)
        row = QHBoxLayout()
        row.addWidget(self.refresh_button)
        row.addWidget(self.attach_button)

        self.form = QFormLayout()
        self.form.addRow("where:", self.where)
        self.form.addRow("bucket:", self.bucket)
        self.form.addRow("zone:", self.zone)
        self.form.addRow("accelerator:", self.accelerator)
        self.remote_box = QWidget()
        box = QVBoxLayout(self.remote_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.spot)
        box.addWidget(self.price)
        box.addWidget(QLabel("jobs in this bucket:"))
        box.addWidget(self.jobs)
        box.addLayout(row)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.form)
        layout.addWidget(self.remote_box)

        self._restore()
        for signal in (
            self.where.currentTextChanged,
            self.bucket.editingFinished,
            self.zone.editingFinished,
            self.accelerator.currentTextChanged,
            self.spot.toggled,
        ):
            signal.connect(self._changed)
        self._changed()

    # -------------------------------------------------------------- settings
    def _restore(self) -> None:
        s = self.settings
        where = str(s.value("where", WHERE[0]))
        if where in WHERE:
            self.where.setCurrentText(where)
        self.bucket.setText(str(s.value("bucket", "")))
        self.zone.setText(str(s.value("zone", "")))
        self.accelerator.setCurrentText(str(s.value("accelerator", ACCELERATORS[0])))
        self.spot.setChecked(str(s.value("spot", "false")).lower() == "true")

    def _changed(self, *_: Any) -> None:
        from ..remote.pricing import cost_line

        s = self.settings
        s.setValue("where", self.where.currentText())
        s.setValue("bucket", self.bucket.text().strip())
        s.setValue("zone", self.zone.text().strip())
        s.setValue("accelerator", self.accelerator.currentText().strip())
        s.setValue("spot", "true" if self.spot.isChecked() else "false")
        s.sync()
        remote = self.is_remote()
        tpu = self.where.currentText() == WHERE[1]
        for field in (self.bucket, self.zone, self.accelerator):
            self.form.setRowVisible(field, remote and (field is self.bucket or tpu))
        self.remote_box.setVisible(remote)
        self.spot.setVisible(tpu)
        self.price.setText(cost_line(self.accelerator.currentText(), spot=self.spot.isChecked())
                           if tpu else "")  # fmt: skip

    def is_remote(self) -> bool:
        return self.where.currentText() != WHERE[0]

    @property
    def attached(self) -> str:
        return str(self.settings.value("attached", "") or "")

    def _remember(self, url: str) -> None:
        self.settings.setValue("attached", url)
        self.settings.sync()

    # ------------------------------------------------------------------ jobs
    def refresh(self) -> Any:
        """List the bucket's jobs in a thread worker; returns the worker."""
        bucket = self.bucket.text().strip()
        if not bucket:
            show_error("Enter the bucket (gs://BUCKET/PREFIX) whose jobs to list.")
            return None
        from ..remote.job_folder import list_jobs

        @thread_worker(connect={"returned": self._show_jobs, "errored": _notify})
        def work() -> list[tuple[str, str]]:
            rows = []
            for url, status, info in list_jobs(bucket):
                if status is None or info is None:
                    rows.append((url, f"{url.rsplit('/', 1)[-1]}  (not a readable job)"))
                    continue
                text = (
                    f"{url.rsplit('/', 1)[-1]}  {status.state}  "
                    f"{status.epochs_done}/{info.spec.config.epochs} epochs"
                )
                rows.append((url, text))
            return rows

        self._list_worker = work()
        return self._list_worker

    def _show_jobs(self, rows: list[tuple[str, str]]) -> None:
        self.jobs.clear()
        for url, text in rows:
            item = QListWidgetItem(text)
            item.setData(256, url)  # Qt.UserRole
            self.jobs.addItem(item)

    def attach_selected(self) -> Any:
        item = self.jobs.currentItem()
        if item is None:
            show_error("Select a job in the list (Refresh jobs first).")
            return None
        return self.follow(str(item.data(256)))

    # ------------------------------------------------------------- training
    def _panel(self) -> Any:
        return self.host.panel

    def follow(self, url: str) -> Any:
        """Follow ``url`` in the host's panel, plot and preview; returns the worker."""
        from ..remote.follow import follow

        if self.host is None or self._panel().running:
            return None
        self._remember(url)
        folder = self._model_folder(url)
        self.host.plot.clear()
        self.host.epoch_events = []

        def factory(should_stop):
            return follow(url, should_stop=should_stop, pull_to=folder)

        return self._panel().start(
            factory,
            on_event=self.host._on_train_event,
            on_done=self._done,
            label=f"following {url}",
        )

    def reattach(self) -> Any:
        """Follow the job followed when napari was closed, if any (its status decides)."""
        return self.follow(self.attached) if self.attached else None

    def start_training(self, layer: Any, config: Any) -> Any:
        """Upload ``layer`` with ``config`` as a job, launch it and follow it."""
        from ..io import ImageData
        from ..io.layers import layer_axes
        from ..jobs.specs import train_spec
        from ..remote.follow import submit
        from ..remote.launchers import launcher_named

        bucket = self.bucket.text().strip()
        if not bucket:
            show_error("Enter a bucket (gs://BUCKET/PREFIX) for the job.")
            return None
        name = LAUNCHERS[self.where.currentText()]
        if name != "local" and not bucket.startswith("gs://"):
            show_error(f"A {self.where.currentText()} reads gs:// buckets, not {bucket}")
            return None
        axes = layer_axes(layer)
        scale = {a: float(s) for a, s in zip(axes, layer.scale) if a in "ZYX"}
        image = ImageData(np.asarray(layer.data), axes, scale=scale)
        source = getattr(getattr(layer, "source", None), "path", None) or f"layer {layer.name}"
        spec = train_spec(str(source), "model", config)
        launcher = None
        if name != "colab":
            options = {"zone": self.zone.text().strip() or None,
                       "accelerator": self.accelerator.currentText().strip() or None,
                       "spot": self.spot.isChecked()} if name == "tpu-vm" else {}  # fmt: skip
            launcher = launcher_named(name, **options)
        folder = self._model_folder()
        notebook = f"{folder}-colab.ipynb" if folder else None
        self.host.plot.clear()
        self.host.epoch_events = []
        self.host._source_layer = layer

        def factory(should_stop):
            return _remembering(
                submit(
                    spec,
                    image,
                    bucket,
                    launcher,
                    should_stop=should_stop,
                    notebook=notebook,
                    pull_to=folder,
                ),
                self._remember,
            )

        return self._panel().start(
            factory,
            on_event=self._on_event,
            on_done=self._done,
            label=f"submitting to {bucket}",
        )

    def _on_event(self, event: Any) -> None:
        self.host._on_train_event(event)

    def _model_folder(self, url: str = "") -> str | None:
        """Where the finished model is pulled: the dock's model folder, or beside it (named
        for the job) when that one is taken."""
        from ..deep.model import ModelFolder

        folder = self.host.folder.text().strip() if self.host is not None else ""
        if folder and url and ModelFolder(folder).is_taken():
            folder = f"{folder}-{url.rstrip('/').rsplit('/', 1)[-1]}"
        return folder or None

    def _done(self, info: Any) -> None:
        self._remember("")
        self.host._train_done(info)


def _remembering(events: Any, remember: Any) -> Any:
    """Pass ``events`` on; the Log naming the job URL is remembered for reattaching."""
    for event in events:
        message = getattr(event, "message", "")
        if isinstance(message, str) and message.startswith("job "):
            remember(message[4:])
        yield event


def _notify(exc: Exception) -> None:
    show_error(" ".join(str(exc).split()) or type(exc).__name__)


__all__ = ["WHERE", "RemoteTraining"]
