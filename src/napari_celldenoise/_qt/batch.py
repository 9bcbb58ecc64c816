"""The "Batch" dock: replay a recipe on a folder of files with dask.distributed.

A recipe comes from an output layer of the other docks (the spec in its metadata and the
provenance of the file it read, :func:`..batch.recipe.recipe_from_spec`) or from a recipe
file; its steps are listed before it runs or is saved. The run is
:func:`..batch.run.run_batch` in a thread worker (:class:`.jobs.JobPanel`): the dock never
waits on the cluster, Cancel stops the steps in progress at their next plane or chunk (nothing
half-written) and records the unfinished files as cancelled, Resume runs only what an earlier
run did not finish. Each finished file becomes a row of the table; a row opens that file and
its outputs in the viewer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from ..batch.recipe import Recipe, load_recipe, recipe_from_spec
from ..config import ConfigError
from ..jobs import Done, Event
from .batch_table import ManifestTable, draw_results, record_details, summary_text
from .extras import missing_extra_label
from .jobs import JobPanel
from .provenance import layer_spec
from .scroll import scroll_layout

FROM_FILE = "recipe file"
LOCAL, ADDRESS = "local workers", "scheduler address"


def cluster_options(where: str, workers: int, threads: int, memory: str, scheduler: str) -> Any:
    """The dock's cluster fields as :class:`~..batch.run.ClusterOptions` (ValueError: bad)."""
    from ..batch.run import ClusterOptions

    if where == ADDRESS:
        address = scheduler.strip()
        if not address:
            raise ValueError("give the scheduler's address, e.g. tcp://host:8786")
        if "://" not in address:
            address = f"tcp://{address}"
        return ClusterOptions(scheduler=address)
    return ClusterOptions(
        workers=workers, threads_per_worker=threads, memory_limit=memory.strip() or None
    )


def split_inputs(text: str) -> list[str]:
    """The inputs typed in the dock: files, folders, globs or gs:// prefixes, ``;``-separated."""
    return [part.strip() for part in text.split(";") if part.strip()]


def _line(placeholder: str) -> QLineEdit:
    edit = QLineEdit()
    edit.setPlaceholderText(placeholder)
    return edit


def _with_button(edit: QLineEdit, text: str, slot: Any) -> QWidget:
    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(edit, 1)
    button = QPushButton(text)
    button.clicked.connect(slot)
    row.addWidget(button)
    return box


class BatchWidget(QWidget):
    """Dock: recipe, inputs, output folder, cluster; Run/Resume, progress, Cancel; results."""

    def __init__(self, napari_viewer: Any):
        super().__init__()
        self.viewer = napari_viewer
        self.recipe: Recipe | None = None
        self.result: Any = None

        # recipe
        self.recipe_from = QComboBox()
        self.recipe_path = _line("recipe.yaml (celldenoise recipe from OUTPUT -o ...)")
        self.recipe_path.editingFinished.connect(self._recipe_changed)
        self.steps = QPlainTextEdit()
        self.steps.setReadOnly(True)
        self.steps.setMaximumHeight(90)
        self.steps.setPlaceholderText("no recipe: choose an output layer or a recipe file")
        self.save_button = QPushButton("Save recipe…")
        self.save_button.clicked.connect(self._save_dialog)
        box = QGroupBox("Recipe: the steps that made an output, replayed on every file")
        form = QFormLayout(box)
        form.addRow("from:", self.recipe_from)
        form.addRow("file:", _with_button(self.recipe_path, "Open…", self._open_dialog))
        form.addRow(self.steps)
        form.addRow(self.save_button)

        # files and cluster
        self.inputs = _line("folder, glob (raw/*.tif) or gs://bucket/prefix; ';' between")
        self.outdir = _line("output folder (the input tree is mirrored there)")
        self.where = QComboBox()
        self.where.addItems([LOCAL, ADDRESS])
        self.workers = QSpinBox()
        self.workers.setRange(1, 256)
        self.workers.setValue(max(1, min(4, os.cpu_count() or 1)))
        self.threads = QSpinBox()
        self.threads.setRange(1, 64)
        self.threads.setValue(1)
        self.memory = _line("per worker, e.g. 2GB (default: share of the RAM)")
        self.scheduler = _line("tcp://host:8786 (dask scheduler, dask-jobqueue, Coiled)")
        files = QGroupBox("Files and workers")
        form = QFormLayout(files)
        form.addRow("inputs:", _with_button(self.inputs, "Folder…", self._inputs_dialog))
        form.addRow("output:", _with_button(self.outdir, "Folder…", self._outdir_dialog))
        form.addRow("run on:", self.where)
        form.addRow("workers:", self.workers)
        form.addRow("threads each:", self.threads)
        form.addRow("memory limit:", self.memory)
        form.addRow("scheduler:", self.scheduler)
        self.where.currentTextChanged.connect(self._where_changed)

        # run
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("run the recipe on every input file")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip(
            "run only the files an earlier run in this output folder did not finish with this "
            "recipe"
        )
        self.run_button.clicked.connect(lambda: self.start(resume=False))
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.resume_button)
        self.jobs = JobPanel()
        self.jobs.started.connect(lambda: self._set_running(True))
        self.jobs.finished.connect(lambda: self._set_running(False))
        self.table = ManifestTable()
        self.table.cellDoubleClicked.connect(lambda row, _col: self.open_row(row))
        self.details = QLabel("")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table.itemSelectionChanged.connect(self._show_details)
        self.open_button = QPushButton("Open selected file and its results")
        self.open_button.clicked.connect(self._open_selected)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        from .classical import _make_canvas

        self.canvas, self.axes = _make_canvas("results across files appear here")
        run_box = QGroupBox("Run")
        form = QFormLayout(run_box)
        form.addRow(buttons)
        form.addRow(self.jobs)
        form.addRow(self.table)
        form.addRow(self.details)
        form.addRow(self.open_button)
        form.addRow(self.summary)
        if self.canvas is not None:
            form.addRow(self.canvas)

        layout = scroll_layout(self)
        note = missing_extra_label(
            "cloud", "batch runs", disable=(self.run_button, self.resume_button)
        )
        if note is not None:
            layout.addWidget(note)
        layout.addWidget(box)
        layout.addWidget(files)
        layout.addWidget(run_box)
        layout.addStretch(1)

        self.recipe_from.currentTextChanged.connect(self._recipe_changed)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(self._refresh)
        self._where_changed(self.where.currentText())
        self._refresh()

    # -- recipe ------------------------------------------------------------------------------
    def _layers_with_spec(self) -> list[str]:
        names = []
        for layer in self.viewer.layers:
            try:
                if layer_spec(layer) is not None:
                    names.append(layer.name)
            except ConfigError:  # a spec from a newer version: not offered
                continue
        return names

    def _refresh(self, event: Any = None) -> None:
        current = self.recipe_from.currentText()
        names = [FROM_FILE, *(f"layer: {n}" for n in self._layers_with_spec())]
        self.recipe_from.blockSignals(True)
        self.recipe_from.clear()
        self.recipe_from.addItems(names)
        if current in names:
            self.recipe_from.setCurrentText(current)
        elif len(names) > 1 and not self.recipe_path.text():
            self.recipe_from.setCurrentIndex(len(names) - 1)  # the newest output layer
        self.recipe_from.blockSignals(False)
        self._recipe_changed()

    def _recipe_changed(self, *_: Any) -> None:
        choice = self.recipe_from.currentText()
        self.recipe_path.setEnabled(choice == FROM_FILE)
        try:
            self.recipe = self._build_recipe(choice)
        except (ConfigError, ValueError, OSError) as exc:
            self.recipe = None
            self.steps.setPlainText(f"cannot use this recipe: {exc}")
            return
        if self.recipe is None:
            self.steps.setPlainText("")
            return
        lines = self.recipe.describe()
        self.steps.setPlainText("\n".join([*lines, f"recipe {self.recipe.hash}"]))

    def _build_recipe(self, choice: str) -> Recipe | None:
        if choice == FROM_FILE:
            path = self.recipe_path.text().strip()
            return load_recipe(path) if path else None
        name = choice.removeprefix("layer: ")
        if name not in self.viewer.layers:
            return None
        spec = layer_spec(self.viewer.layers[name])
        return None if spec is None else recipe_from_spec(spec, source=f"layer {name}")

    def use_recipe_file(self, path: str | os.PathLike) -> Recipe | None:
        """Choose the recipe file ``path`` (what Open… does)."""
        self.recipe_path.setText(str(path))
        self.recipe_from.setCurrentText(FROM_FILE)
        self._recipe_changed()
        return self.recipe

    def save_recipe(self, path: str | os.PathLike) -> Path | None:
        """Save the recipe shown as YAML at ``path`` (what Save recipe… does)."""
        if self.recipe is None:
            show_error("no recipe to save: choose an output layer or a recipe file")
            return None
        try:
            saved = self.recipe.save(path)
        except OSError as exc:
            show_error(f"{path}: cannot save the recipe ({exc})")
            return None
        show_info(f"recipe {self.recipe.hash} saved to {saved}")
        return saved

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Recipe", "", "Recipe (*.yaml *.yml)")
        if path:
            self.use_recipe_file(path)

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save recipe", "recipe.yaml", "*.yaml")
        if path:
            self.save_recipe(path)

    def _inputs_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Input folder")
        if path:
            self.inputs.setText(path)

    def _outdir_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder")
        if path:
            self.outdir.setText(path)

    # -- run ---------------------------------------------------------------------------------
    def _where_changed(self, where: str) -> None:
        local = where == LOCAL
        for widget in (self.workers, self.threads, self.memory):
            widget.setEnabled(local)
        self.scheduler.setEnabled(not local)

    def _set_running(self, running: bool) -> None:
        for widget in (self.run_button, self.resume_button, self.recipe_from, self.save_button):
            widget.setEnabled(not running)

    def start(self, *, resume: bool = False) -> Any:
        """Run (or resume) the batch in a worker thread; returns the worker (None: refused)."""
        from ..batch.run import FileDone, run_batch

        recipe, inputs, outdir = self.recipe, split_inputs(self.inputs.text()), self.outdir.text()
        problem = (
            "choose a recipe (an output layer or a recipe file)"
            if recipe is None
            else "give the input folder, glob or gs:// prefix"
            if not inputs
            else "give the output folder"
            if not outdir.strip()
            else None
        )
        try:
            options = cluster_options(
                self.where.currentText(),
                self.workers.value(),
                self.threads.value(),
                self.memory.text(),
                self.scheduler.text(),
            )
        except ValueError as exc:
            problem = problem or str(exc)
        if problem:
            show_error(f"batch: {problem}")
            return None
        self.table.clear_rows()
        self.details.setText("")
        self.summary.setText("")
        self.result = None

        def factory(should_stop):
            return run_batch(
                recipe, inputs, outdir.strip(), options=options, resume=resume,
                should_stop=should_stop,
            )  # fmt: skip

        def on_event(event: Event) -> None:
            if isinstance(event, FileDone):
                self.table.add_record(event.record)
            elif isinstance(event, Done):
                self._show_result(event.result)

        label = "connecting to the scheduler" if options.scheduler else "starting local workers"
        return self.jobs.start(factory, on_event=on_event, label=label)

    def _show_result(self, result: Any) -> None:
        self.result = result
        self.summary.setText(summary_text(result))
        if self.canvas is not None and draw_results(self.axes, result.records):
            self.canvas.draw_idle()

    # -- results in the viewer ---------------------------------------------------------------
    def _show_details(self) -> None:
        record = self.table.selected_record()
        self.details.setText("" if record is None else record_details(record))

    def _open_selected(self) -> None:
        record = self.table.selected_record()
        if record is None:
            show_info("select a row of the table first")
            return
        self.open_record(record)

    def open_row(self, row: int) -> list[Any]:
        return self.open_record(self.table.records[row])

    def open_record(self, record: dict[str, Any]) -> list[Any]:
        """Add a file of the batch and its outputs (images, spots as points) to the viewer."""
        from napari.layers import Layer

        from ..plugin.reader import read_layers
        from ..plugin.spots_reader import read_spot_layers

        added = []
        for path in [record["input"], *(record.get("outputs") or [])]:
            read = read_spot_layers if path.lower().endswith(".csv") else read_layers
            for data in read(path):
                if data[0] is None:  # napari's "nothing to show"; the reader said why
                    continue
                added.append(self.viewer.add_layer(Layer.create(*data)))
        return added


__all__ = ["BatchWidget", "cluster_options", "split_inputs"]
