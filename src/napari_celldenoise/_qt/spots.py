"""The "Spots" dock: detect, fit, classify and export spots of an image layer.

Numerics live in :mod:`napari_celldenoise.spots`; the dock's state (the last run's source and
table, filter ranges, user marks, models) is the Qt-free
:class:`~napari_celldenoise.spots.dock_state.SpotsDockState`, which this widget renders. It
builds a :class:`~napari_celldenoise.spots.config.SpotsConfig` from the widgets
(:meth:`SpotsWidget.config`), runs the pipeline on a snapshot of the layer through
:class:`~._qt.jobs.JobPanel`, and shows the spots the filter keeps as a Points layer (coloured
by class, sized by sigma, every fit value in ``features``) with a feature table, histograms and
range sliders. The groups are sub-widgets: :mod:`.spots_detect`, :mod:`.spots_camera`,
:mod:`.spots_results` and :mod:`.spots_classify`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..jobs.specs import SpotsSpec, spots_spec
from ..plugin.spots_reader import class_colors, point_sizes, table_to_points
from ..spots.camera import check_offset
from ..spots.classify import RuleSet, SpotClassifier, default_rules, retrain_classifier, spot_images
from ..spots.config import SpotsConfig
from ..spots.detect import detect_frame
from ..spots.dock_state import SourceSnapshot, SpotsDockState
from ..spots.expr import ExpressionError
from ..spots.pipeline import find_spots, plane_indices
from ..spots.stream import SERIAL_BELOW, find_spots_streamed
from ..spots.zmerge import merged_in_z
from .extras import missing_extra_label
from .jobs import JobPanel, drain
from .provenance import beside, input_axes, layer_source, spec_metadata
from .scroll import scroll_layout
from .spots_camera import CameraBox
from .spots_classify import CentroidBox, ClassifyBox
from .spots_detect import DetectBox, preview_text
from .spots_results import FeatureFilter, FeatureTable, Histograms

logger = logging.getLogger(__name__)

PREVIEW_NAME = "spots preview"
_UNIT_NM = {"nm": 1.0, "nanometer": 1.0, "µm": 1000.0, "um": 1000.0, "micrometer": 1000.0}


def layer_pixel_size_nm(layer: Any) -> float | None:
    """nm per pixel from the layer's X scale and unit, None when it has no physical unit."""
    units = [str(u) for u in getattr(layer, "units", ())]
    unit = units[-1] if units else "pixel"
    factor = _UNIT_NM.get(unit)
    if factor is None:
        return None
    nm = float(layer.scale[-1]) * factor
    return nm if 1.0 <= nm <= 100_000.0 else None  # some TIFFs claim picometre pixels


def set_if_changed(layer: Any, key: str, value: Any) -> None:
    """Set a layer property only when it differs: napari refreshes the layer (and the
    viewer's dimensions, for ``scale``) on every assignment, also of the same value."""
    current = getattr(layer, key)
    try:
        if key == "metadata":
            same = current == value
        elif isinstance(value, str) and key.endswith("color"):  # a colour for every point
            from napari.utils.colormaps.standardize_color import transform_color

            same = len(current) > 0 and bool(np.all(current == transform_color(value)))
        else:
            same = bool(np.array_equal(current, value))
    except (TypeError, ValueError):
        same = False
    if not same:
        setattr(layer, key, value)


def points_name(image: str) -> str:
    """The spots layer of ``image``: "cells spots", but "spots (found)" for an image "spots"."""
    return f"{image} (found)" if "spot" in image.lower() else f"{image} spots"


def is_preview_layer(name: str) -> bool:
    """A preview another dock draws ("preview", "... preview"): never an input."""
    return name == "preview" or name.endswith(" preview")


class SpotsWidget(QWidget):
    """Dock: layer, filter + threshold with live preview, camera, fit, run, classify, save."""

    def __init__(self, napari_viewer: Any):
        super().__init__()
        self.viewer = napari_viewer
        self.state = SpotsDockState()
        self.points: Any = None
        self.spec: SpotsSpec | None = None  # what makes the last run's table from its file
        self.spec_matches = False  # the table is still what the spec makes (no edits)
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(150)
        self._preview_timer.timeout.connect(self.update_live)

        layout = scroll_layout(self)

        self.detect = DetectBox()
        self.camera = CameraBox()
        self.classify = ClassifyBox()
        self.centroids = CentroidBox()
        # the groups' fields, under the names scripts and the demo use
        d, c, k, m = self.detect, self.camera, self.classify, self.centroids
        self.layer_combo, self.detect_combo = d.layer_combo, d.detect_combo
        self.axes_choice = d.axes_choice
        self.filter_combo, self.threshold_edit = d.filter_combo, d.threshold_edit
        self.sigma_spin, self.box_spin = d.sigma_spin, d.box_spin
        self.preview_check, self.preview_label = d.preview_check, d.preview_label
        self.preset_combo, self.offset_spin = c.preset_combo, c.offset_spin
        self.sensitivity_spin, self.read_noise_spin = c.sensitivity_spin, c.read_noise_spin
        self.em_gain_spin, self.qe_spin, self.pixel_spin = c.em_gain_spin, c.qe_spin, c.pixel_spin
        self.rules_edit, self.classifier_label = k.rules_edit, k.classifier_label
        self.centroid_kind, self.centroid_source = m.centroid_kind, m.centroid_source
        self.centroid_label = m.centroid_label
        self.missing_extra = missing_extra_label("deep", "the centroid network (mlp)")
        if self.missing_extra is not None:
            m.centroid_kind.removeItem(m.centroid_kind.findText("mlp"))
            m.layout().addRow(self.missing_extra)
        layout.addWidget(self.detect)
        layout.addWidget(self.camera)

        # --- fit and run
        box = QGroupBox("Fit")
        form = QFormLayout(box)
        self.fit_combo = QComboBox()
        self.fit_combo.addItems(["mle", "lsq"])
        self.elliptical_check = QCheckBox("elliptical (sigma x, sigma y)")
        self.merge_z_check = QCheckBox("volumes: one spot across consecutive slices")
        self.merge_z_check.setChecked(True)
        self.merge_z_check.setToolTip(
            "a spot found at the same place in consecutive slices is one spot (its brightest "
            "fit); unticked, 2D spots are reported per slice"
        )
        self.run_button = QPushButton("Run on the whole stack")
        self.jobs = JobPanel()
        form.addRow("method", self.fit_combo)
        form.addRow(self.elliptical_check)
        form.addRow(self.merge_z_check)
        form.addRow(self.run_button)
        form.addRow(self.jobs)
        layout.addWidget(box)

        # --- results
        box = QGroupBox("Results")
        col = QVBoxLayout(box)
        self.summary = QLabel("no spots yet")
        self.summary.setWordWrap(True)
        self.table_view = FeatureTable()
        self.histograms = Histograms()
        self.filter = FeatureFilter()
        self.save_button = QPushButton("Save CSV…")
        self.save_button.setToolTip("the spots the filter shows")
        col.addWidget(self.summary)
        col.addWidget(self.histograms)
        col.addWidget(self.filter)
        col.addWidget(self.table_view)
        col.addWidget(self.save_button)
        layout.addWidget(box)
        layout.addWidget(self.classify)
        layout.addWidget(self.centroids)
        layout.addStretch(1)

        # --- wiring
        for signal in (
            self.threshold_edit.textChanged,
            self.sigma_spin.valueChanged,
            self.box_spin.valueChanged,
            self.layer_combo.currentTextChanged,
            self.detect_combo.currentTextChanged,
            self.preview_check.toggled,
            self.offset_spin.valueChanged,
            self.sensitivity_spin.valueChanged,
        ):
            signal.connect(self.schedule_preview)
        self.layer_combo.currentTextChanged.connect(self._layer_changed)
        self.axes_choice.changed.connect(self.schedule_preview)
        self.run_button.clicked.connect(self.run)
        self.save_button.clicked.connect(self._save_dialog)
        k.good_button.clicked.connect(lambda: self.mark_selected("good"))
        k.bad_button.clicked.connect(lambda: self.mark_selected("bad"))
        k.rules_button.clicked.connect(self.apply_rules)
        k.retrain_button.clicked.connect(self.retrain)
        k.save_model_button.clicked.connect(self._save_model_dialog)
        k.load_model_button.clicked.connect(self._load_model_dialog)
        m.centroid_train_button.clicked.connect(self.train_centroid)
        m.centroid_apply_button.clicked.connect(self.apply_centroid)
        self.filter.changed.connect(self._filter_points)
        self.table_view.spot_clicked.connect(self._go_to_spot)
        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self.viewer.dims.events.current_step.connect(self.schedule_preview)
        self._refresh_layers()

    # ----------------------------------------------------------------- state
    @property
    def table(self) -> pd.DataFrame | None:
        """Every spot of the last run (the filter does not remove rows from it)."""
        return self.state.table

    @property
    def classifier(self) -> SpotClassifier | None:
        return self.state.classifier

    @property
    def centroid_model(self) -> Any:
        return self.state.centroid_model

    # ----------------------------------------------------------------- settings
    def _image_layers(self) -> list[Any]:
        from napari.layers import Image

        return [
            layer
            for layer in self.viewer.layers
            if isinstance(layer, Image)
            and not layer.rgb
            and layer.ndim in (2, 3, 4)
            and not is_preview_layer(layer.name)
        ]

    def _refresh_layers(self, event: Any = None) -> None:
        names = [layer.name for layer in self._image_layers()]
        if event is not None and names == self.detect.layer_names():
            return  # a points layer came or went: nothing to update
        self.detect.set_layers(names)
        self._layer_changed(self.layer_combo.currentText())

    def _layer_changed(self, name: str) -> None:
        layer = self.image_layer()
        self.axes_choice.set_layer(layer)
        if layer is not None:
            self.camera.set_layer_pixel_size(layer_pixel_size_nm(layer))
        self.schedule_preview()

    def image_layer(self) -> Any:
        name = self.layer_combo.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def layer_axes(self, layer: Any) -> str:
        """The axes this dock reads ``layer`` with (see :class:`.AxesChoice`)."""
        return self.axes_choice.axes(layer) if layer is not None else ""

    def apply_preset(self, name: str) -> None:
        self.camera.apply_preset(name)

    def values(self) -> dict[str, Any]:
        """The widget values, named as :class:`SpotsConfig` fields."""
        return {
            "filter": self.filter_combo.currentText(),
            "threshold": self.threshold_edit.text().strip(),
            "sigma": self.sigma_spin.value(),
            "box": self.box_spin.value(),
            "fit": self.fit_combo.currentText(),
            "elliptical": self.elliptical_check.isChecked(),
            "offset": self.offset_spin.value(),
            "sensitivity": self.sensitivity_spin.value(),
            "read_noise": self.read_noise_spin.value(),
            "em_gain": self.em_gain_spin.value(),
            "qe": self.qe_spin.value(),
            "pixel_size": self.pixel_spin.value(),
            "merge_z": self.merge_z_check.isChecked(),
        }

    def config(self) -> SpotsConfig:
        """The one place the dock builds its config (raises pydantic's ValidationError)."""
        return SpotsConfig(**self.values())

    # ----------------------------------------------------------------- preview
    def schedule_preview(self, *args: Any) -> None:
        self._preview_timer.start()

    def update_live(self) -> None:
        """What follows the settings and the current plane: the offset check, the preview."""
        self.update_offset_check()
        self.update_preview()

    def _current_plane(self, layer: Any) -> tuple[np.ndarray, tuple[int, ...]]:
        lead = layer.ndim - 2
        if lead == 0:
            return np.asarray(layer.data), ()
        point = layer.world_to_data(self.viewer.dims.point)
        index = tuple(
            int(np.clip(round(point[i]), 0, layer.data.shape[i] - 1)) for i in range(lead)
        )
        return np.asarray(layer.data[index]), index

    def update_offset_check(self) -> None:
        """Compare the camera offset with the current plane; propose an estimate if it is off."""
        layer = self.image_layer()
        if layer is None:
            self.camera.show_offset_check(None)
            return
        frame, _ = self._current_plane(layer)
        self.camera.show_offset_check(check_offset(frame, self.offset_spin.value()))

    def update_preview(self) -> None:
        """Candidates of the current frame with the current filter and threshold."""
        layer = self.image_layer()
        if layer is None or not self.preview_check.isChecked():
            self._remove_preview()
            return
        try:
            cfg = self.config()
            frame, index = self._current_plane(layer)
            other = self._detect_layer()
            det = None if other is None else self._current_plane(other)[0]
            coords, _ = detect_frame(
                frame,
                filter=cfg.filter,
                threshold=cfg.threshold,
                sigma=cfg.sigma,
                min_distance=cfg.min_distance,
                border=cfg.border_px,
                detect_on=det,
                **cfg.filter_options(),
            )
        except (ValueError, ExpressionError) as exc:
            self.preview_label.setText(f"⚠ {' '.join(str(exc).split())[:200]}")
            return
        data = np.column_stack([np.tile(index, (len(coords), 1)), coords]) if index else coords
        data = data.reshape(-1, layer.ndim).astype(float)
        source = self.state.source
        kept = self.state.kept_on_plane(index) if source and source.name == layer.name else None
        self.preview_label.setText(preview_text(len(coords), kept))
        if PREVIEW_NAME in self.viewer.layers:
            preview = self.viewer.layers[PREVIEW_NAME]
            if preview.ndim == layer.ndim:
                preview.data = data
                return
            self.viewer.layers.remove(preview)
        self.viewer.add_points(
            data,
            name=PREVIEW_NAME,
            scale=layer.scale,
            units=layer.units,
            size=2.5 * cfg.sigma,
            face_color="transparent",
            border_color="yellow",
            border_width=0.1,
            border_width_is_relative=True,
            out_of_slice_display=False,
        )
        self.viewer.layers.selection.active = layer

    def _remove_preview(self) -> None:
        if PREVIEW_NAME in self.viewer.layers:
            self.viewer.layers.remove(PREVIEW_NAME)
        self.preview_label.setText("")

    def _detect_layer(self) -> Any:
        name = self.detect.detect_name()
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    # ----------------------------------------------------------------- run
    def _snapshot(self, layer: Any, axes: str, pixel_size: float) -> SourceSnapshot:
        return SourceSnapshot(
            layer.data, axes, layer.name, tuple(layer.scale), tuple(layer.units), pixel_size
        )

    def run(self) -> Any:
        """Detect and fit on the whole stack in a worker (progress, Cancel)."""
        layer = self.image_layer()
        if layer is None:
            show_info("Open an image first: the Spots dock works on an image layer.")
            return None
        try:
            cfg = self.config()
        except ValueError as exc:
            show_error(f"Spots: {' '.join(str(exc).split())}")
            return None
        axes = self.layer_axes(layer)
        if not axes:
            show_error(f"Spots: cannot find spots in a {layer.ndim}-dimensional layer")
            return None
        source = self._snapshot(layer, axes, cfg.pixel_size)  # the worker never touches the layer
        stack = source.stack
        other = self._detect_layer()
        detect_on = None if other is None else other.data
        merge = source.is_volume and cfg.merge_z  # as the CLI does (spots.file_job)
        spec = self.spec_for(layer, axes, cfg) if other is None else None

        # a long movie streams through one worker process per core, its spots via the disk
        stream = not merge and len(plane_indices(tuple(stack.shape))) >= SERIAL_BELOW
        find = find_spots_streamed if stream else find_spots

        def factory(should_stop):
            events = find(stack, cfg, axes=axes, detect_on=detect_on, should_stop=should_stop)
            return merged_in_z(events, distance=cfg.merge_distance) if merge else events

        return self.jobs.start(
            factory, on_done=lambda t: self._result_steps(t, source, spec), label="finding spots"
        )

    def spec_for(self, layer: Any, axes: str, cfg: SpotsConfig) -> SpotsSpec | None:
        """The spec that makes this run's spot table from ``layer``'s file (None: no file).

        A run on another detection image has no spec: a spec reads one image."""
        path, channel = layer_source(layer)
        if path is None:
            return None
        output = beside(path, "_spots.csv")
        return spots_spec(path, output, cfg, axes=input_axes(layer, axes), channel=channel)

    def _show_result(
        self, table: pd.DataFrame | None, source: SourceSnapshot, spec: SpotsSpec | None = None
    ) -> None:
        drain(self._result_steps(table, source, spec))

    def _result_steps(
        self, table: pd.DataFrame | None, source: SourceSnapshot, spec: SpotsSpec | None = None
    ) -> Iterator[None]:
        """Show a run's result in steps (a job's ``on_done``: one per event-loop turn).

        Each step is one napari update (the layer, its points, its features, its colours)
        or one view; a whole stack's spots at once held the viewer for over 100 ms."""
        if table is None:
            return
        psf = table.attrs.get("psf_sigma")
        self.state.set_result(source, table)
        self.spec, self.spec_matches = spec, spec is not None
        if psf:  # the rules the pipeline applied, around the PSF width the data show
            self.rules_edit.setPlainText(default_rules(float(psf)).to_yaml())
        yield
        yield from self._points_steps()

    def _update_points(self) -> None:
        drain(self._points_steps())

    def _points_steps(self) -> Iterator[None]:
        state = self.state
        assert state.table is not None and state.source is not None
        source = state.source
        table = state.layer_table()
        ndim = len(source.axes)
        _, meta, _ = table_to_points(table, name=points_name(source.name), ndim=min(ndim, 3))
        meta["scale"] = source.scale
        meta["units"] = source.units
        meta.pop("axis_labels", None)
        layer_name = meta.pop("name")
        kind = state.table.attrs.get("centroid_model")
        if kind:  # placed by an ML model: its own layer, beside the fitted one
            layer_name = f"{source.name} {kind} centroids"
        meta["metadata"] = spec_metadata(self.spec if not kind else None)
        # the results replace the preview (ticking the box brings it back): unticked now,
        # so that no preview is drawn between the steps below
        self.preview_check.setChecked(False)
        self.points = self._reuse_points_layer(layer_name, meta)
        if self.points is None:
            self.points = self.viewer.add_points(state.coords(table), name=layer_name, **meta)
        self.points.bind_key("g", lambda _layer: self.mark_selected("good"), overwrite=True)
        self.points.bind_key("b", lambda _layer: self.mark_selected("bad"), overwrite=True)
        yield
        self.filter.set_table(state.table)
        state.ranges = dict(self.filter.ranges)
        yield
        yield from self._view_steps()
        self._remove_preview()

    def _reuse_points_layer(self, name: str, meta: dict[str, Any]) -> Any:
        """The layer of a rerun's own kind, else the preview the results replace, restyled
        as the result layer ``name``; None when neither fits (a new layer is added).

        Reusing a layer keeps the viewer responsive: napari takes ~0.3-0.5 s (on a 2-core
        machine with software OpenGL) to add a layer and as long to remove one (a full
        ``gc.collect()`` per removal). The data, features, colours and sizes follow in
        :meth:`_render_steps`.
        """
        from napari.layers import Points

        ndim = len(meta["scale"])
        for candidate in (name, PREVIEW_NAME):
            layer = self.viewer.layers[candidate] if candidate in self.viewer.layers else None
            if isinstance(layer, Points) and layer.ndim == ndim:
                break
        else:
            return None
        static = ("scale", "units", "face_color", "border_width", "border_width_is_relative")
        with layer._block_refresh():  # its data follow (and refresh it) in _render_steps
            layer.selected_data = set()
            for key in (*static, "metadata"):
                set_if_changed(layer, key, meta[key])
            layer.out_of_slice_display = meta["out_of_slice_display"]  # its getter warns
        if layer.name != name:
            if name in self.viewer.layers:  # of another dimensionality: replaced
                self.viewer.layers.remove(name)
            layer.name = name
        return layer

    def _render_steps(self) -> Iterator[None]:
        """The points layer holds the shown rows only: napari draws every point of a layer
        whose dimensions are all displayed, whatever ``shown`` says."""
        if self.points is None or self.state.table is None:
            return
        table = self.state.layer_table()
        layer = self.points
        # napari refreshes (slices, redraws, updates the thumbnail) after each of these
        # setters, several 10 ms each with a whole stack's spots: one per step. (Blocking
        # the refreshes is no way out: napari's drawing then reads a stale slice.)
        layer.selected_data = set()
        layer.data = self.state.coords(table)
        yield
        layer.features = table
        yield
        layer.border_color = class_colors(table["class"].to_numpy())
        yield
        layer.size = point_sizes(table)

    def _refresh_views(self) -> None:
        drain(self._view_steps())

    def _view_steps(self) -> Iterator[None]:
        state = self.state
        if state.table is None or state.source is None:
            return
        shown = self.filter.mask(state.table)
        yield from self._render_steps()
        yield
        note = state.layer_note()
        self.summary.setText(f"{state.summary()}. {note}" if note else state.summary())
        self.table_view.show_table(state.layer_table(), volume=state.source.is_volume)
        yield
        self.histograms.show_table(state.table, state.source.pixel_size, shown)

    def _filter_points(self) -> None:
        self.state.ranges = dict(self.filter.ranges)
        self._refresh_views()

    def _go_to_spot(self, row: int) -> None:
        if self.points is None or row >= len(self.points.data):
            return
        self.points.selected_data = {row}
        if self.points.ndim > 2:
            step = list(self.viewer.dims.current_step)
            offset = self.viewer.dims.ndim - self.points.ndim
            for i in range(self.points.ndim - 2):
                step[offset + i] = int(self.points.data[row, i])
            self.viewer.dims.current_step = tuple(step)

    # ----------------------------------------------------------------- classes
    def set_classes(
        self, classes: np.ndarray, *, rows: np.ndarray | None = None, user: bool = False
    ) -> None:
        """Set ``class`` (all rows or ``rows`` of :attr:`table`); recolours points and views."""
        if self.state.table is None:
            return
        self.state.set_classes(classes, rows=rows, user=user)
        self.spec_matches = False  # the table is no longer what the spec makes
        if self.points is not None:
            self.points.metadata = {**self.points.metadata, **spec_metadata(None, edited=True)}
        self._refresh_views()

    def mark_selected(self, label: str) -> None:
        """Mark the selected points ``good`` or ``bad`` (the G and B keys)."""
        if self.points is None or not self.points.selected_data:
            show_info("Select spots in the points layer first (S key, then click or drag).")
            return
        selected = np.array(sorted(self.points.selected_data), int)
        rows = self.state.layer_rows()[selected]  # the layer holds (some of) the shown rows
        self.set_classes(np.full(len(rows), label, object), rows=rows, user=True)

    def rules(self) -> RuleSet:
        import yaml

        data = yaml.safe_load(self.rules_edit.toPlainText()) or {}
        return RuleSet.from_dict(data if isinstance(data, dict) else {})

    def apply_rules(self) -> None:
        """Classify with the rules in the editor; the user's own marks are kept."""
        if self.state.table is None:
            return
        try:
            classes = self.rules().classify(self.state.table)
        except (ValueError, KeyError) as exc:
            show_error(f"Spots rules: {exc}")
            return
        self.set_classes(self.state.keep_user_marks(classes))

    def retrain(self) -> Any:
        """Train the classifier on the current classes in a worker, then apply it."""
        state = self.state
        if state.table is None or state.source is None:
            show_info("Run the spot finder first.")
            return None
        table = state.table.copy()
        labels = table["class"].to_numpy()
        stack, axes = state.source.stack, state.source.axes
        box = self.box_spin.value()

        def factory(should_stop):
            return retrain_classifier(
                stack, table, labels, axes=axes, box=box, should_stop=should_stop
            )

        return self.jobs.start(factory, on_done=self._trained, label="training the classifier")

    def _trained(self, result: Any) -> None:
        clf, predicted = result
        if clf is None or self.state.table is None:
            return
        self.state.classifier = clf
        self.set_classes(self.state.keep_user_marks(predicted))
        self.classifier_label.setText(
            f"classifier: trained on {clf.info.get('n_good')} good, "
            f"{clf.info.get('n_bad')} bad spots"
        )

    # ----------------------------------------------------------------- ML centroids
    def train_centroid(self) -> Any:
        """Train the centroid model in a worker (the network in a child process) on the good
        fitted spots or simulated ones; the label shows its std and predictions/s."""
        from ..spots.centroid import train_centroid, training_set_from_spots, training_set_simulated

        kind = self.centroid_kind.currentText()
        simulated = self.centroid_source.currentIndex() == 1
        cfg = self.config()
        if simulated:
            source = None
        elif not self.state.has_result:
            show_info("Run the spot finder first, or train on simulated spots.")
            return None
        else:
            run = self.state.source
            source = (run.stack, self.state.table.copy(), run.axes)

        def factory(should_stop):
            if source is None:
                boxes, offsets = training_set_simulated(
                    5000, cfg.box, sigma=cfg.sigma, camera=cfg.camera
                )
            else:
                boxes, offsets = training_set_from_spots(source[0], source[1], cfg.box, source[2])
            return train_centroid(
                boxes,
                offsets,
                kind=kind,
                should_stop=should_stop,
                **({"epochs": 10} if kind == "mlp" else {}),
            )

        self._centroid_against = "simulated truth" if simulated else "the fit"
        return self.jobs.start(
            factory, on_done=self._centroid_trained, label=f"training the {kind} centroid model"
        )

    def _centroid_trained(self, model: Any) -> None:
        if model is None:
            return
        self.state.centroid_model = model
        i = model.info
        self.centroid_label.setText(
            f"centroid {model.kind}: std {i['std_x']:.3f} / {i['std_y']:.3f} px (x / y) vs "
            f"{self._centroid_against} on {i['n']} held-out spots; "
            f"{i['per_second']:,.0f} predictions/s"
        )

    def apply_centroid(self) -> Any:
        """Detect and place every spot with the trained model in a worker; a Points layer."""
        from ..spots.centroid import locate_with_model

        if self.centroid_model is None:
            show_info("Train a centroid model first.")
            return None
        layer = self.image_layer()
        axes = self.layer_axes(layer)
        if not axes:
            show_info("Open an image first: the Spots dock works on an image layer.")
            return None
        cfg, model = self.config(), self.centroid_model
        source = self._snapshot(layer, axes, cfg.pixel_size)
        stack = source.stack

        def factory(should_stop):
            return locate_with_model(stack, model, cfg, axes=axes, should_stop=should_stop)

        return self.jobs.start(
            factory, on_done=lambda t: self._result_steps(t, source), label="ML centroids"
        )

    def save_classifier(self, path: str) -> Path:
        if self.classifier is None:
            raise ValueError("no classifier yet: retrain first")
        return self.classifier.save(path)

    def load_classifier(self, path: str) -> None:
        """Load a classifier and apply it to the current spots (user marks kept)."""
        from ..spots.classifier_file import UntrustedPickle
        from .spots_classify import confirm_pickle

        state = self.state
        try:
            clf = SpotClassifier.load(path)
        except UntrustedPickle:
            if not confirm_pickle(self, path):
                show_info(f"Spots: {Path(path).name} not opened (a pickle you did not trust)")
                return
            clf = SpotClassifier.load(path, trust=True)
        state.classifier = clf
        self.classifier_label.setText(f"classifier: {Path(path).name}")
        if state.table is not None and state.source is not None:
            images = (
                spot_images(state.source.stack, state.table, clf.box, state.source.axes)
                if clf.use_image
                else None
            )
            self.set_classes(state.keep_user_marks(clf.predict(state.table, images)))

    def save_csv(self, path: str) -> Path:
        """Write the spots the filter shows, at the pixel size the run used."""
        from ..io.spots_csv import write_spots_csv

        table = self.state.export_table()  # ValueError when there are no spots
        assert self.state.source is not None and self.state.table is not None
        pixel_size = self.state.source.pixel_size
        provenance = None
        if self.spec is not None and self.spec_matches and len(table) == len(self.state.table):
            from ..jobs.provenance import provenance_for

            provenance = provenance_for(self.spec, self.spec.input.path)  # as run() had made it
        return write_spots_csv(
            path, table, pixel_size=pixel_size, overwrite=True, provenance=provenance
        )

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save spots", "spots.csv", "CSV (*.csv)")
        if path:
            self._guard(self.save_csv, path)

    def _save_model_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save classifier", "spots.skops", "classifier (*.skops)"
        )
        if path:
            self._guard(self.save_classifier, path)

    def _load_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load classifier", "", "classifier (*.skops);;old pickle classifier (*.joblib)"
        )
        if path:
            self._guard(self.load_classifier, path)

    def _guard(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except OSError as exc:  # a full disk, a read-only folder: name the file, not a temp
            where = f"{Path(args[0]).name}: " if args else ""
            show_error(f"Spots: {where}{exc.strerror or exc}")
        except ValueError as exc:
            show_error(f"Spots: {exc}")
