"""The "Super-resolution" dock: render, drift-correct, merge and measure localizations.

It takes a spot table from a Points layer (the Spots dock's, whose ``features`` hold the rows its
filter shows) or from a CSV / Picasso HDF5 file, and

- renders it as an image layer in nm (histogram, or a Gaussian of each localization's own
  uncertainty, at a magnification), again whenever the Points layer changes (the Spots dock's
  range filter, a class mark);
- estimates the drift (:mod:`..spots.drift`: redundant cross-correlation or fiducials), plots
  x and y over frames and, ticked, corrects the positions;
- merges the blinks of a molecule (:mod:`..spots.merge`), with the counts before and after;
- measures the resolution (:mod:`..spots.resolution`: FRC with its curve, NeNA, median
  uncertainty);
- saves the render as OME-TIFF (nm scale) and the table as CSV or HDF5.

Every long step runs in :class:`~.jobs.JobPanel` (progress bar, Cancel) on a snapshot of the
table; only the main thread touches the viewer.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QWidget,
)

from ..classical.plots import draw_empty
from ..jobs import Done, Progress
from ..jobs.compose import forward
from .jobs import JobPanel
from .scroll import scroll_layout
from .spots import layer_pixel_size_nm

logger = logging.getLogger(__name__)

FILE_PREFIX = "file: "
RENDER_SUFFIX = " super-resolution"
BACKGROUND = "#262930"


class Steps(NamedTuple):
    """What the dock does to a table before it is rendered or measured (a snapshot)."""

    drift: Any = None  # a spots.drift.Drift to correct, or None
    merge: tuple[float, int] | None = None  # (radius nm, max gap frames), or None


def prepare(table: pd.DataFrame, steps: Steps) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(corrected, final)``: the table with the drift corrected, and then merged."""
    corrected = table
    if steps.drift is not None:
        from ..spots.drift import apply_drift

        corrected = apply_drift(table, steps.drift)
    final = corrected
    if steps.merge is not None:
        from ..spots.merge import merge_blinks

        radius, gap = steps.merge
        final = merge_blinks(corrected, radius_nm=radius, max_gap=gap)
    return corrected, final


def module_missing(name: str) -> str | None:
    """None when ``napari_celldenoise.spots.NAME`` can be imported, else why not."""
    import importlib.util

    if importlib.util.find_spec(f"napari_celldenoise.spots.{name}") is None:
        return f"needs napari_celldenoise.spots.{name}, not in this install"
    return None


def _canvas(height: int = 150) -> tuple[Any, Any]:
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.2, 1.8), dpi=90, tight_layout=True)
    figure.patch.set_facecolor(BACKGROUND)
    canvas = FigureCanvasQTAgg(figure)
    canvas.setMinimumHeight(height)
    ax = figure.subplots()
    _style(ax)
    draw_empty(ax, color="0.7")
    return canvas, ax


def _style(ax: Any) -> None:
    ax.set_facecolor(BACKGROUND)
    ax.tick_params(colors="white", labelsize=7)
    for side in ax.spines.values():
        side.set_color("0.6")
    ax.xaxis.label.set_color("white")
    ax.yaxis.label.set_color("white")


class SuperResolutionWidget(QWidget):
    """Dock: localizations in, a rendered image, drift, merging and resolution out."""

    def __init__(self, napari_viewer: Any):
        super().__init__()
        self.viewer = napari_viewer
        self.files: dict[str, pd.DataFrame] = {}
        self.drift: Any = None
        self.rendered: Any = None  # the last spots.render.Rendered
        self.render_layer: Any = None
        self.last_table: pd.DataFrame | None = None  # what the last render showed
        self.frc: Any = None
        self._watched: Any = None
        self._chosen = ""
        self._pending = False
        self._live_timer = QTimer(self)
        self._live_timer.setSingleShot(True)
        self._live_timer.setInterval(200)
        self._live_timer.timeout.connect(self._live_render)
        layout = scroll_layout(self)

        # --- localizations
        box = QGroupBox("Localizations")
        form = QFormLayout(box)
        self.source_combo = QComboBox()
        self.open_button = QPushButton("Open CSV / HDF5…")
        self.pixel_spin = _spin(1.0, 100_000.0, 100.0, 1, " nm")
        self.pixel_spin.setToolTip("camera pixel: the table's x and y are in camera pixels")
        self.good_check = QCheckBox("good spots only")
        self.good_check.setChecked(True)
        self.source_label = QLabel("no localizations")
        self.source_label.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.source_combo, 1)
        row.addWidget(self.open_button)
        form.addRow("table", row)
        form.addRow("camera pixel", self.pixel_spin)
        form.addRow(self.good_check)
        form.addRow(self.source_label)
        layout.addWidget(box)

        # --- render
        box = QGroupBox("Render")
        form = QFormLayout(box)
        self.method_combo = QComboBox()
        self.method_combo.addItems(["gaussian", "histogram"])
        self.method_combo.setToolTip(
            "gaussian: each localization a Gaussian of its own uncertainty; "
            "histogram: localizations per pixel"
        )
        self.magnification_spin = _spin(1.0, 200.0, 10.0, 1, " x")
        self.live_check = QCheckBox("render again when the localizations change")
        self.live_check.setChecked(True)
        self.render_button = QPushButton("Render")
        form.addRow("method", self.method_combo)
        form.addRow("magnification", self.magnification_spin)
        form.addRow(self.live_check)
        form.addRow(self.render_button)
        layout.addWidget(box)

        # --- drift
        box = QGroupBox("Drift")
        form = QFormLayout(box)
        self.drift_method = QComboBox()
        self.drift_method.addItems(["rcc", "fiducials"])
        self.drift_method.setToolTip(
            "rcc: redundant cross-correlation of time-binned renders (Wang et al. 2014); "
            "fiducials: bright spots present in most frames"
        )
        self.segments_spin = QSpinBox()
        self.segments_spin.setRange(0, 1000)
        self.segments_spin.setSpecialValueText("auto")
        self.segments_spin.setToolTip("time bins of the RCC (auto: from the number of frames)")
        self.drift_button = QPushButton("Estimate drift")
        self.apply_drift_check = QCheckBox("correct the positions")
        self.apply_drift_check.setEnabled(False)
        self.drift_label = QLabel("")
        self.drift_label.setWordWrap(True)
        self.drift_canvas, self.drift_ax = _canvas()
        form.addRow("method", self.drift_method)
        form.addRow("segments", self.segments_spin)
        form.addRow(self.drift_button)
        form.addRow(self.apply_drift_check)
        form.addRow(self.drift_canvas)
        form.addRow(self.drift_label)
        layout.addWidget(box)

        # --- merging
        box = QGroupBox("Merge blinks")
        form = QFormLayout(box)
        self.merge_check = QCheckBox("one molecule per blink series")
        self.radius_spin = _spin(1.0, 1000.0, 50.0, 1, " nm")
        self.gap_spin = QSpinBox()
        self.gap_spin.setRange(0, 1000)
        self.gap_spin.setValue(1)
        self.gap_spin.setSuffix(" frames")
        self.merge_label = QLabel("")
        self.merge_label.setWordWrap(True)
        form.addRow(self.merge_check)
        form.addRow("radius", self.radius_spin)
        form.addRow("allowed gap", self.gap_spin)
        form.addRow(self.merge_label)
        layout.addWidget(box)

        # --- resolution
        box = QGroupBox("Resolution")
        form = QFormLayout(box)
        self.split_combo = QComboBox()
        self.split_combo.addItems(["random", "blocks"])
        self.split_combo.setToolTip(
            "halves of single localizations at random, or of blocks of frames (a molecule's "
            "repeated blinks stay in one half)"
        )
        self.frc_button = QPushButton("Measure resolution (FRC)")
        self.frc_canvas, self.frc_ax = _canvas()
        self.frc_label = QLabel("")
        self.frc_label.setWordWrap(True)
        form.addRow("halves", self.split_combo)
        form.addRow(self.frc_button)
        form.addRow(self.frc_canvas)
        form.addRow(self.frc_label)
        layout.addWidget(box)

        # --- export and jobs
        box = QGroupBox("Export")
        form = QFormLayout(box)
        self.save_image_button = QPushButton("Save render (OME-TIFF)…")
        self.save_table_button = QPushButton("Save table (CSV / HDF5)…")
        form.addRow(self.save_image_button)
        form.addRow(self.save_table_button)
        layout.addWidget(box)
        self.jobs = JobPanel()
        layout.addWidget(self.jobs)
        layout.addStretch(1)

        for name, widgets in (
            ("drift", (self.drift_button, self.apply_drift_check)),
            ("merge", (self.merge_check,)),
        ):
            why = module_missing(name)
            if why is not None:
                for w in widgets:
                    w.setEnabled(False)
                    w.setToolTip(why)
                (self.drift_label if name == "drift" else self.merge_label).setText(why)

        # --- wiring
        self.source_combo.currentTextChanged.connect(self._source_changed)
        self.open_button.clicked.connect(self._open_dialog)
        self.render_button.clicked.connect(self.render)
        self.drift_button.clicked.connect(self.estimate_drift)
        self.frc_button.clicked.connect(self.measure_resolution)
        self.save_image_button.clicked.connect(self._save_image_dialog)
        self.save_table_button.clicked.connect(self._save_table_dialog)
        for signal in (
            self.good_check.toggled,
            self.method_combo.currentTextChanged,
            self.magnification_spin.valueChanged,
            self.pixel_spin.valueChanged,
            self.apply_drift_check.toggled,
            self.merge_check.toggled,
            self.radius_spin.valueChanged,
            self.gap_spin.valueChanged,
        ):
            signal.connect(self._schedule_live)
        self.jobs.finished.connect(self._job_finished)
        self.viewer.layers.events.inserted.connect(self._refresh_sources)
        self.viewer.layers.events.inserted.connect(lambda event: self._follow(event.value))
        self.viewer.layers.events.removed.connect(self._refresh_sources)
        for layer in self.viewer.layers:
            self._follow(layer)
        self._refresh_sources()

    # ------------------------------------------------------------------ sources
    def _points_layers(self) -> list[Any]:
        from napari.layers import Points

        return [
            layer
            for layer in self.viewer.layers
            if isinstance(layer, Points) and {"x", "y"} <= set(layer.features.columns)
        ]

    def _follow(self, layer: Any) -> None:
        """List a layer again when it is renamed or gets its table: the Spots dock turns its
        preview layer into the result ("spots preview" becomes "spots (found)")."""
        layer.events.name.connect(self._refresh_sources)
        if hasattr(layer.events, "features"):
            layer.events.features.connect(self._refresh_sources)

    def _refresh_sources(self, event: Any = None) -> None:
        # the table last chosen, back when its layer is: a rerun of Spots replaces its layer
        current = self._chosen or self.source_combo.currentText()
        names = [layer.name for layer in self._points_layers()] + list(self.files)
        if names == [self.source_combo.itemText(i) for i in range(self.source_combo.count())]:
            return
        self.source_combo.blockSignals(True)
        self.source_combo.clear()
        self.source_combo.addItems(names)
        if current in names:
            self.source_combo.setCurrentText(current)
        self.source_combo.blockSignals(False)
        self._source_changed(self.source_combo.currentText(), chosen=False)

    def set_source(self, name: str) -> None:
        """Choose the Points layer (or loaded file) to work on."""
        self.source_combo.setCurrentText(name)

    def _source_changed(self, name: str, chosen: bool = True) -> None:
        if chosen:
            self._chosen = name
        layer = self.viewer.layers[name] if name in self.viewer.layers else None
        self._watch(layer)
        if name in self.files:
            self.pixel_spin.setValue(float(self.files[name].attrs.get("pixel_size") or 100.0))
        elif layer is not None:
            nm = layer_pixel_size_nm(layer)
            if nm is not None:
                self.pixel_spin.setValue(nm)
        # another table: its drift is unknown, and it renders when asked (then live)
        self.drift, self.rendered, self.last_table = None, None, None
        self._live_timer.stop()
        self.apply_drift_check.setChecked(False)
        self.apply_drift_check.setEnabled(False)
        self._update_source_label()

    def _watch(self, layer: Any) -> None:
        """Follow ``layer``'s rows: the Spots dock sets its data and features on a filter."""
        if self._watched is not None:
            for emitter in (self._watched.events.data, self._watched.events.features):
                try:
                    emitter.disconnect(self._layer_changed)
                except (TypeError, ValueError, RuntimeError):
                    pass
        self._watched = layer
        if layer is not None:
            layer.events.data.connect(self._layer_changed)
            layer.events.features.connect(self._layer_changed)

    def _layer_changed(self, event: Any = None) -> None:
        self._update_source_label()
        self._schedule_live()

    def source_table(self) -> pd.DataFrame | None:
        """A copy of the chosen table (px), the camera pixel in ``attrs``; good rows only when
        ticked. None when nothing is chosen."""
        name = self.source_combo.currentText()
        if name in self.files:
            table = self.files[name].copy()
        elif name in self.viewer.layers:
            table = self.viewer.layers[name].features.copy()
        else:
            return None
        if self.good_check.isChecked() and "class" in table:
            table = table[table["class"].astype(str) == "good"].reset_index(drop=True)
        table.attrs = {"pixel_size": float(self.pixel_spin.value())}
        return table

    def _update_source_label(self) -> None:
        table = self.source_table()
        if table is None:
            self.source_label.setText("no localizations: run Spots, or open a table")
            return
        frames = int(table["frame"].max()) + 1 if "frame" in table and len(table) else 0
        self.source_label.setText(f"{len(table):,} localizations in {frames:,} frames")

    def open_table(self, path: str) -> str:
        """Load a CSV or Picasso HDF5 table and choose it; returns its name in the list."""
        from ..io.locs import read_localizations

        table = read_localizations(path)
        name = FILE_PREFIX + Path(path).name
        self.files[name] = table
        self._refresh_sources()
        self.set_source(name)
        return name

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open localizations", "", "localizations (*.csv *.hdf5 *.h5)"
        )
        if path:
            self._guard(self.open_table, path)

    # ------------------------------------------------------------------ steps
    def steps(self) -> Steps:
        drift = self.drift if self.apply_drift_check.isChecked() else None
        merge = None
        if self.merge_check.isChecked() and self.merge_check.isEnabled():
            merge = (float(self.radius_spin.value()), int(self.gap_spin.value()))
        return Steps(drift, merge)

    # ------------------------------------------------------------------ render
    def _schedule_live(self, *args: Any) -> None:
        if self.live_check.isChecked() and self.rendered is not None:
            self._live_timer.start()

    def _live_render(self) -> None:
        if self.rendered is None:  # the table changed since: it renders when asked
            return
        if self.jobs.running:
            self._pending = True  # once the running job is done
            return
        self.render()

    def _job_finished(self) -> None:
        if self._pending:
            self._pending = False
            self._live_timer.start()

    def render(self) -> Any:
        """Prepare (drift, merge) and render the table in a worker; an image layer in nm."""
        from ..spots.render_job import render_table_job

        table = self.source_table()
        if table is None or len(table) == 0:
            show_info("Super-resolution: no localizations to render.")
            return None
        steps, method = self.steps(), self.method_combo.currentText()
        magnification = float(self.magnification_spin.value())

        def factory(should_stop):
            yield Progress(0, 0, "preparing the localizations")
            _, final = prepare(table, steps)
            done = yield from forward(
                render_table_job(
                    final, method=method, magnification=magnification, should_stop=should_stop
                )
            )
            yield Done(None if done.stopped else (len(table), final, done.result), done.stopped)

        return self.jobs.start(factory, on_done=self._rendered, label="rendering")

    def _rendered(self, result: Any) -> None:
        if result is None:
            return
        n_in, table, rendered = result
        self.rendered, self.last_table = rendered, table
        if self.merge_check.isChecked():
            self.merge_label.setText(f"{n_in:,} localizations → {len(table):,} molecules")
        name = self.source_combo.currentText().removeprefix(FILE_PREFIX) + RENDER_SUFFIX
        ps, p = float(table.attrs.get("pixel_size") or self.pixel_spin.value()), rendered.pixel_nm
        # a render pixel's centre, in the camera frame's nm (whose pixel i is centred at i * ps)
        translate = (rendered.origin_nm[1] - ps / 2 + p / 2, rendered.origin_nm[0] - ps / 2 + p / 2)
        hi = (
            float(np.percentile(rendered.image[rendered.image > 0], 99.5))
            if rendered.image.any()
            else 1
        )
        meta = {"celldenoise": {"pixel_nm": p, "origin_nm": rendered.origin_nm}}
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            layer.data, layer.scale, layer.translate = rendered.image, (p, p), translate
            layer.metadata = {**layer.metadata, **meta}
            layer.contrast_limits = (0.0, max(hi, 1e-6))
        else:
            layer = self.viewer.add_image(
                rendered.image,
                name=name,
                scale=(p, p),
                translate=translate,
                units=("nm", "nm"),
                colormap="magma",
                contrast_limits=(0.0, max(hi, 1e-6)),
                metadata=meta,
            )
        self.render_layer = layer

    # ------------------------------------------------------------------ drift
    def estimate_drift(self) -> Any:
        """Estimate the drift of the (unmerged) table in a worker; plot it."""
        from ..jobs.callback import callback_job

        table = self.source_table()
        if table is None or len(table) == 0:
            show_info("Super-resolution: no localizations for a drift estimate.")
            return None
        method = self.drift_method.currentText()
        segments = self.segments_spin.value() or None

        def factory(should_stop):
            from ..spots.drift import estimate_drift

            return callback_job(
                estimate_drift,
                table,
                method=method,
                segments=segments,
                message=f"drift ({method})",
                should_stop=should_stop,
            )

        return self.jobs.start(factory, on_done=self._drift_done, label="estimating the drift")

    def _drift_done(self, drift: Any) -> None:
        if drift is None:
            return
        self.drift = drift
        ax = self.drift_ax
        ax.clear()
        _style(ax)
        ax.plot(drift.frames, drift.x_nm, color="#ff7050", lw=1.2, label="x")
        ax.plot(drift.frames, drift.y_nm, color="#50c8ff", lw=1.2, label="y")
        ax.set_xlabel("frame", fontsize=7)
        ax.set_ylabel("drift (nm)", fontsize=7)
        ax.legend(fontsize=7, facecolor=BACKGROUND, labelcolor="white", edgecolor="0.5")
        self.drift_canvas.draw_idle()
        span = np.hypot(np.ptp(drift.x_nm), np.ptp(drift.y_nm))
        self.drift_label.setText(
            f"{drift.method}: {span:.0f} nm over {len(drift.frames):,} frames "
            f"(x {np.ptp(drift.x_nm):.0f} nm, y {np.ptp(drift.y_nm):.0f} nm)"
        )
        self.apply_drift_check.setEnabled(True)
        self.apply_drift_check.setChecked(True)  # a re-render follows, when live

    # ------------------------------------------------------------------ resolution
    def measure_resolution(self) -> Any:
        """FRC (and NeNA, median uncertainty) of the prepared table in a worker; plot it."""
        from ..spots.resolution import frc_table_job, precision_summary

        table = self.source_table()
        if table is None or len(table) == 0:
            show_info("Super-resolution: no localizations to measure.")
            return None
        steps, split = self.steps(), self.split_combo.currentText()

        def factory(should_stop):
            yield Progress(0, 0, "preparing the localizations")
            corrected, final = prepare(table, steps)
            summary = precision_summary(corrected)  # NeNA needs the blinks unmerged
            done = yield from forward(frc_table_job(final, split=split, should_stop=should_stop))
            yield Done(None if done.stopped else (done.result, summary), done.stopped)

        return self.jobs.start(factory, on_done=self._frc_done, label="measuring the resolution")

    def _frc_done(self, result: Any) -> None:
        from ..spots.resolution import summary_text

        if result is None:
            return
        frc, summary = result
        self.frc = frc
        ax = self.frc_ax
        ax.clear()
        _style(ax)
        ax.plot(frc.frequency * 1000, frc.frc, color="0.6", lw=0.8, label="FRC")
        ax.plot(frc.frequency * 1000, frc.smoothed, color="#ffd040", lw=1.4, label="smoothed")
        ax.axhline(frc.threshold, color="#ff5050", lw=0.8, ls="--", label="1/7")
        if np.isfinite(frc.resolution_nm):
            ax.axvline(1000 / frc.resolution_nm, color="#ff5050", lw=0.8)
        ax.set_xlabel("spatial frequency (1/µm)", fontsize=7)
        ax.set_ylabel("FRC", fontsize=7)
        ax.set_ylim(-0.1, 1.05)
        ax.legend(fontsize=7, facecolor=BACKGROUND, labelcolor="white", edgecolor="0.5")
        self.frc_canvas.draw_idle()
        head = (
            f"FRC resolution {frc.resolution_nm:.1f} nm ({frc.split} halves, "
            f"{frc.pixel_nm:g} nm pixels)"
            if np.isfinite(frc.resolution_nm)
            else f"no FRC resolution: {frc.message}"
        )
        self.frc_label.setText(f"{head}\n{summary_text(summary)}")

    # ------------------------------------------------------------------ export
    def save_image(self, path: str) -> str:
        """The last render as OME-TIFF with its pixel size in nm."""
        from ..io import ImageData, write_ome_tiff
        from ..jobs.provenance import SOFTWARE

        if self.rendered is None:
            raise ValueError("render first: there is no image to save")
        p = self.rendered.pixel_nm
        image = ImageData(
            self.rendered.image, "YX", scale={"Y": p, "X": p}, units={"Y": "nm", "X": "nm"}
        )
        return write_ome_tiff(path, image, overwrite=True, provenance={"software": SOFTWARE})

    def save_table(self, path: str) -> Path:
        """The table of the last render (drift corrected, merged) as CSV or Picasso HDF5."""
        from ..io.locs import write_localizations

        table = self.last_table
        if table is None:
            table = self.source_table()
            if table is None:
                raise ValueError("no localizations to save")
            table = prepare(table, self.steps())[1]
        return write_localizations(path, table, overwrite=True)

    def _save_image_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save render", "render.ome.tif", "OME-TIFF (*.ome.tif *.tif)"
        )
        if path:
            self._guard(self.save_image, path)

    def _save_table_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save localizations", "locs.hdf5", "Picasso HDF5 (*.hdf5);;CSV (*.csv)"
        )
        if path:
            self._guard(self.save_table, path)

    def _guard(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except OSError as exc:
            where = f"{Path(args[0]).name}: " if args else ""
            show_error(f"Super-resolution: {where}{exc.strerror or exc}")
        except ValueError as exc:
            show_error(f"Super-resolution: {exc}")


def _spin(lo: float, hi: float, value: float, decimals: int, suffix: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(lo, hi)
    spin.setDecimals(decimals)
    spin.setValue(value)
    spin.setSuffix(suffix)
    return spin
