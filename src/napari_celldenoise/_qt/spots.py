"""The "Spots" dock: detect, fit, classify and export spots of an image layer.

Numerics live in :mod:`napari_celldenoise.spots`; this module only builds a
:class:`~napari_celldenoise.spots.config.SpotsConfig` from the widgets (:meth:`SpotsWidget.config`),
runs the pipeline on a snapshot of the layer through :class:`~._qt.jobs.JobPanel`, and shows
the table as a Points layer (coloured by class, sized by sigma, every fit value in
``features``) with a feature table, histograms and range sliders.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

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
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..io.layers import layer_axes
from ..jobs import Done, Progress
from ..plugin.spots_reader import class_colors, point_sizes, table_to_points
from ..spots.classify import (
    RuleSet,
    SpotClassifier,
    default_rules,
    spot_images,
    train_classifier,
)
from ..spots.config import THRESHOLDS, SpotsConfig
from ..spots.detect import detect_frame
from ..spots.expr import ExpressionError
from ..spots.pipeline import find_spots
from ..spots.simulate import CAMERA_PRESETS
from .jobs import JobPanel
from .spots_results import FeatureFilter, FeatureTable, Histograms

logger = logging.getLogger(__name__)

PREVIEW_NAME = "spots preview"
_UNIT_NM = {"nm": 1.0, "nanometer": 1.0, "µm": 1000.0, "um": 1000.0, "micrometer": 1000.0}


def _spin(value: float, low: float, high: float, step: float, decimals: int = 2) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setValue(value)
    return box


def layer_pixel_size_nm(layer: Any) -> float | None:
    """nm per pixel from the layer's X scale and unit, None when it has no physical unit."""
    units = [str(u) for u in getattr(layer, "units", ())]
    unit = units[-1] if units else "pixel"
    factor = _UNIT_NM.get(unit)
    if factor is None:
        return None
    nm = float(layer.scale[-1]) * factor
    return nm if 1.0 <= nm <= 100_000.0 else None  # some TIFFs claim picometre pixels


def points_name(image: str) -> str:
    """The spots layer of ``image``: "cells spots", but "spots (found)" for an image "spots"."""
    return f"{image} (found)" if "spot" in image.lower() else f"{image} spots"


class SpotsWidget(QWidget):
    """Dock: layer, filter + threshold with live preview, camera, fit, run, classify, save."""

    def __init__(self, napari_viewer: Any):
        super().__init__()
        self.viewer = napari_viewer
        self.table: pd.DataFrame | None = None
        self.points: Any = None
        self.classifier: SpotClassifier | None = None
        self._source: tuple[Any, str] | None = None  # (snapshot stack, axes) of the last run
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(150)
        self._preview_timer.timeout.connect(self.update_preview)

        inner = QWidget()
        layout = QVBoxLayout(inner)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        # --- input and detection
        box = QGroupBox("Detect")
        form = QFormLayout(box)
        self.layer_combo = QComboBox()
        self.detect_combo = QComboBox()
        self.filter_combo = QComboBox()
        self.filter_combo.addItems(["wavelet", "dog", "log"])
        self.threshold_edit = QLineEdit(THRESHOLDS["wavelet"])
        self.threshold_edit.setToolTip(
            "a number or an expression over the filter images, e.g. 2*std(Wave.F1); "
            "functions: std, mean, median, mad, noise, localnoise, min, max, percentile, "
            "sqrt, abs (default: 0.7 x the local noise of Wave.F1)"
        )
        self.sigma_spin = _spin(1.3, 0.3, 20.0, 0.1)
        self.box_spin = QSpinBox()
        self.box_spin.setRange(3, 31)
        self.box_spin.setSingleStep(2)
        self.box_spin.setValue(7)
        self.preview_check = QCheckBox("live preview of candidates on the current frame")
        self.preview_check.setChecked(True)
        self.preview_label = QLabel("")
        form.addRow("image", self.layer_combo)
        form.addRow("detect on", self.detect_combo)
        form.addRow("filter", self.filter_combo)
        form.addRow("threshold", self.threshold_edit)
        form.addRow("PSF sigma (px)", self.sigma_spin)
        form.addRow("fit box (px)", self.box_spin)
        form.addRow(self.preview_check)
        form.addRow(self.preview_label)
        layout.addWidget(box)

        # --- camera
        box = QGroupBox("Camera")
        form = QFormLayout(box)
        self.preset_combo = QComboBox()
        self.preset_combo.addItems([*CAMERA_PRESETS, "custom"])
        self.offset_spin = _spin(100.0, 0.0, 1e5, 1.0, 1)
        self.sensitivity_spin = _spin(0.5, 0.001, 1000.0, 0.05, 3)
        self.read_noise_spin = _spin(1.6, 0.0, 1000.0, 0.1)
        self.em_gain_spin = _spin(1.0, 1.0, 10000.0, 1.0, 1)
        self.qe_spin = _spin(1.0, 0.01, 1.0, 0.01)
        self.pixel_spin = _spin(100.0, 1.0, 1e5, 1.0, 1)
        form.addRow("preset", self.preset_combo)
        form.addRow("offset (ADU)", self.offset_spin)
        form.addRow("sensitivity (e-/ADU)", self.sensitivity_spin)
        form.addRow("read noise (e-)", self.read_noise_spin)
        form.addRow("EM gain", self.em_gain_spin)
        form.addRow("quantum efficiency", self.qe_spin)
        form.addRow("pixel size (nm)", self.pixel_spin)
        layout.addWidget(box)

        # --- fit and run
        box = QGroupBox("Fit")
        form = QFormLayout(box)
        self.fit_combo = QComboBox()
        self.fit_combo.addItems(["mle", "lsq"])
        self.elliptical_check = QCheckBox("elliptical (sigma x, sigma y)")
        self.run_button = QPushButton("Run on the whole stack")
        self.jobs = JobPanel()
        form.addRow("method", self.fit_combo)
        form.addRow(self.elliptical_check)
        form.addRow(self.run_button)
        form.addRow(self.jobs)
        layout.addWidget(box)

        # --- results
        box = QGroupBox("Results")
        col = QVBoxLayout(box)
        self.summary = QLabel("no spots yet")
        self.table_view = FeatureTable()
        self.histograms = Histograms()
        self.filter = FeatureFilter()
        self.save_button = QPushButton("Save CSV…")
        col.addWidget(self.summary)
        col.addWidget(self.histograms)
        col.addWidget(self.filter)
        col.addWidget(self.table_view)
        col.addWidget(self.save_button)
        layout.addWidget(box)

        # --- classification
        box = QGroupBox("Classify good / bad")
        col = QVBoxLayout(box)
        row = QHBoxLayout()
        self.good_button = QPushButton("Mark good (G)")
        self.bad_button = QPushButton("Mark bad (B)")
        row.addWidget(self.good_button)
        row.addWidget(self.bad_button)
        col.addLayout(row)
        self.rules_edit = QPlainTextEdit(default_rules(1.3).to_yaml())
        self.rules_edit.setMaximumHeight(110)
        self.rules_button = QPushButton("Apply rules")
        col.addWidget(QLabel("rules (YAML: feature, low, high)"))
        col.addWidget(self.rules_edit)
        col.addWidget(self.rules_button)
        row = QHBoxLayout()
        self.retrain_button = QPushButton("Retrain classifier")
        self.save_model_button = QPushButton("Save…")
        self.load_model_button = QPushButton("Load…")
        row.addWidget(self.retrain_button)
        row.addWidget(self.save_model_button)
        row.addWidget(self.load_model_button)
        col.addLayout(row)
        self.classifier_label = QLabel("classifier: none (rules)")
        col.addWidget(self.classifier_label)
        layout.addWidget(box)

        # --- ML centroids
        box = QGroupBox("ML centroids (faster than fitting)")
        form = QFormLayout(box)
        self.centroid_kind = QComboBox()
        self.centroid_kind.addItems(["ridge", "mlp"])
        self.centroid_source = QComboBox()
        self.centroid_source.addItems(["good fitted spots", "simulated spots"])
        self.centroid_train_button = QPushButton("Train")
        self.centroid_apply_button = QPushButton("Localise with the model")
        self.centroid_label = QLabel("centroid model: none")
        self.centroid_label.setWordWrap(True)
        form.addRow("model", self.centroid_kind)
        form.addRow("train on", self.centroid_source)
        row = QHBoxLayout()
        row.addWidget(self.centroid_train_button)
        row.addWidget(self.centroid_apply_button)
        form.addRow(row)
        form.addRow(self.centroid_label)
        layout.addWidget(box)
        layout.addStretch(1)
        self.centroid_model: Any = None

        # --- wiring
        for w in (self.filter_combo,):
            w.currentTextChanged.connect(self._filter_changed)
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
        self.preset_combo.currentTextChanged.connect(self.apply_preset)
        self.run_button.clicked.connect(self.run)
        self.save_button.clicked.connect(self._save_dialog)
        self.good_button.clicked.connect(lambda: self.mark_selected("good"))
        self.bad_button.clicked.connect(lambda: self.mark_selected("bad"))
        self.rules_button.clicked.connect(self.apply_rules)
        self.retrain_button.clicked.connect(self.retrain)
        self.save_model_button.clicked.connect(self._save_model_dialog)
        self.load_model_button.clicked.connect(self._load_model_dialog)
        self.centroid_train_button.clicked.connect(self.train_centroid)
        self.centroid_apply_button.clicked.connect(self.apply_centroid)
        self.filter.changed.connect(self._filter_points)
        self.table_view.spot_clicked.connect(self._go_to_spot)
        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self.viewer.dims.events.current_step.connect(self.schedule_preview)
        self._refresh_layers()
        self.apply_preset(self.preset_combo.currentText())

    # ----------------------------------------------------------------- settings
    def _image_layers(self) -> list[Any]:
        from napari.layers import Image

        return [
            layer
            for layer in self.viewer.layers
            if isinstance(layer, Image) and not layer.rgb and layer.ndim in (2, 3, 4)
        ]

    def _refresh_layers(self, event: Any = None) -> None:
        names = [layer.name for layer in self._image_layers()]
        if event is not None and names == [
            self.layer_combo.itemText(i) for i in range(self.layer_combo.count())
        ]:
            return  # a points layer came or went: nothing to update
        for combo, extra in ((self.layer_combo, []), (self.detect_combo, ["(same image)"])):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(extra + names)
            if current in extra + names:
                combo.setCurrentText(current)
            combo.blockSignals(False)
        self._layer_changed(self.layer_combo.currentText())

    def _layer_changed(self, name: str) -> None:
        layer = self.image_layer()
        if layer is not None:
            ps = layer_pixel_size_nm(layer)
            if ps:
                self.pixel_spin.setValue(ps)
        self.schedule_preview()

    def image_layer(self) -> Any:
        name = self.layer_combo.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def _filter_changed(self, name: str) -> None:
        self.threshold_edit.setText(THRESHOLDS[name])

    def apply_preset(self, name: str) -> None:
        camera = CAMERA_PRESETS.get(name)
        if camera is None:
            return
        self.offset_spin.setValue(camera.offset)
        self.sensitivity_spin.setValue(camera.sensitivity)
        self.read_noise_spin.setValue(camera.read_noise)
        self.em_gain_spin.setValue(camera.em_gain)
        self.qe_spin.setValue(camera.qe)

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
        }

    def config(self) -> SpotsConfig:
        """The one place the dock builds its config (raises pydantic's ValidationError)."""
        return SpotsConfig(**self.values())

    # ----------------------------------------------------------------- preview
    def schedule_preview(self, *args: Any) -> None:
        self._preview_timer.start()

    def _current_plane(self, layer: Any) -> tuple[np.ndarray, tuple[int, ...]]:
        lead = layer.ndim - 2
        if lead == 0:
            return np.asarray(layer.data), ()
        point = layer.world_to_data(self.viewer.dims.point)
        index = tuple(
            int(np.clip(round(point[i]), 0, layer.data.shape[i] - 1)) for i in range(lead)
        )
        return np.asarray(layer.data[index]), index

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
        self.preview_label.setText(f"{len(coords)} candidates on this frame")
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
        name = self.detect_combo.currentText()
        if name and name != "(same image)" and name in self.viewer.layers:
            return self.viewer.layers[name]
        return None

    # ----------------------------------------------------------------- run
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
        axes = layer_axes(layer)
        if not axes:
            show_error(f"Spots: cannot find spots in a {layer.ndim}-dimensional layer")
            return None
        stack = layer.data  # a snapshot reference: the worker never touches the layer
        other = self._detect_layer()
        detect_on = None if other is None else other.data
        self._source = (stack, axes, layer.name, tuple(layer.scale), tuple(layer.units))

        def factory(should_stop):
            return find_spots(stack, cfg, axes=axes, detect_on=detect_on, should_stop=should_stop)

        return self.jobs.start(factory, on_done=self._show_result, label="finding spots")

    def _show_result(self, table: pd.DataFrame | None) -> None:
        if table is None or self._source is None:
            return
        psf = table.attrs.get("psf_sigma")
        table = table.copy()
        table["user"] = False
        self.table = table
        if psf:  # the rules the pipeline applied, around the PSF width the data show
            self.rules_edit.setPlainText(default_rules(float(psf)).to_yaml())
        self._update_points()

    def _update_points(self) -> None:
        assert self.table is not None and self._source is not None
        _, axes, name, scale, units = self._source
        table = self.table
        ndim = len(axes)
        data, meta, _ = table_to_points(table, name=points_name(name), ndim=3 if ndim >= 3 else 2)
        if ndim == 4:  # (T, Z, Y, X)
            data = np.column_stack([table["frame"], table["z"], table["y"], table["x"]])
        elif ndim == 3 and axes[0] == "Z":
            data[:, 0] = table["z"].to_numpy()
        meta["scale"] = scale
        meta["units"] = units
        meta.pop("axis_labels", None)
        layer_name = meta.pop("name")
        kind = table.attrs.get("centroid_model")
        if kind:  # placed by an ML model: its own layer, beside the fitted one
            layer_name = f"{name} {kind} centroids"
        if layer_name in self.viewer.layers:  # a rerun replaces the layer of its own kind
            self.viewer.layers.remove(layer_name)
        self.points = self.viewer.add_points(data.reshape(-1, ndim), name=layer_name, **meta)
        self.points.bind_key("g", lambda _layer: self.mark_selected("good"), overwrite=True)
        self.points.bind_key("b", lambda _layer: self.mark_selected("bad"), overwrite=True)
        self.filter.set_table(table)
        self._refresh_views()
        # the results replace the preview; ticking the box brings it back
        self.preview_check.setChecked(False)
        self._remove_preview()

    def _refresh_views(self) -> None:
        if self.table is None:
            return
        table = self.table
        shown = self.filter.mask(table)
        if self.points is not None:
            self.points.shown = shown
        n_good = int((table["class"] == "good").sum())
        frames = table["frame"].nunique() if len(table) else 0
        self.summary.setText(
            f"{len(table)} spots in {frames} frame(s): {n_good} good, {len(table) - n_good} bad"
        )
        self.table_view.show_table(table)
        self.histograms.show_table(table, self.pixel_spin.value(), shown)

    def _filter_points(self) -> None:
        self._refresh_views()

    def _go_to_spot(self, row: int) -> None:
        if self.points is None or self.table is None or row >= len(self.table):
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
        """Set ``class`` (all rows or ``rows``); recolours the points and the views."""
        if self.table is None:
            return
        idx = np.arange(len(self.table)) if rows is None else np.asarray(rows, int)
        col = self.table.columns.get_loc("class")
        self.table.iloc[idx, col] = np.asarray(classes, object)
        if user:
            self.table.iloc[idx, self.table.columns.get_loc("user")] = True
        if self.points is not None:
            self.points.features = self.table.reset_index(drop=True)
            self.points.border_color = class_colors(self.table["class"].to_numpy())
            self.points.size = point_sizes(self.table)
        self._refresh_views()

    def mark_selected(self, label: str) -> None:
        """Mark the selected points ``good`` or ``bad`` (the G and B keys)."""
        if self.points is None or not self.points.selected_data:
            show_info("Select spots in the points layer first (S key, then click or drag).")
            return
        rows = np.array(sorted(self.points.selected_data))
        self.set_classes(np.full(len(rows), label, object), rows=rows, user=True)

    def rules(self) -> RuleSet:
        import yaml

        data = yaml.safe_load(self.rules_edit.toPlainText()) or {}
        return RuleSet.from_dict(data if isinstance(data, dict) else {})

    def apply_rules(self) -> None:
        """Classify with the rules in the editor; the user's own marks are kept."""
        if self.table is None:
            return
        try:
            classes = self.rules().classify(self.table)
        except (ValueError, KeyError) as exc:
            show_error(f"Spots rules: {exc}")
            return
        keep = self.table["user"].to_numpy(bool)
        classes[keep] = self.table["class"].to_numpy()[keep]
        self.set_classes(classes)

    def retrain(self) -> Any:
        """Train the classifier on the current classes in a worker, then apply it."""
        if self.table is None or self._source is None:
            show_info("Run the spot finder first.")
            return None
        table = self.table.copy()
        labels = table["class"].to_numpy()
        stack, axes = self._source[0], self._source[1]
        box = self.box_spin.value()

        def factory(should_stop):
            images = spot_images(stack, table, box, axes)
            clf = None
            for event in train_classifier(table, labels, images, box=box, should_stop=should_stop):
                if isinstance(event, Done):
                    clf = event.result
                    break
                yield event
            predicted = clf.predict(table, images) if clf is not None else None
            yield Progress(1, 1, "classifier trained")
            yield Done((clf, predicted))

        return self.jobs.start(factory, on_done=self._trained, label="training the classifier")

    def _trained(self, result: Any) -> None:
        clf, predicted = result
        if clf is None or self.table is None:
            return
        self.classifier = clf
        keep = self.table["user"].to_numpy(bool)
        classes = np.asarray(predicted, object)
        classes[keep] = self.table["class"].to_numpy()[keep]
        self.set_classes(classes)
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
        elif self.table is None or self._source is None:
            show_info("Run the spot finder first, or train on simulated spots.")
            return None
        else:
            source = (self._source[0], self.table.copy(), self._source[1])

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
        self.centroid_model = model
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
        axes = layer_axes(layer) if layer is not None else ""
        if not axes:
            show_info("Open an image first: the Spots dock works on an image layer.")
            return None
        cfg, model, stack = self.config(), self.centroid_model, layer.data
        self._source = (stack, axes, layer.name, tuple(layer.scale), tuple(layer.units))

        def factory(should_stop):
            return locate_with_model(stack, model, cfg, axes=axes, should_stop=should_stop)

        return self.jobs.start(factory, on_done=self._show_result, label="ML centroids")

    def save_classifier(self, path: str) -> Path:
        if self.classifier is None:
            raise ValueError("no classifier yet: retrain first")
        return self.classifier.save(path)

    def load_classifier(self, path: str) -> None:
        """Load a classifier and apply it to the current spots (user marks kept)."""
        self.classifier = SpotClassifier.load(path)
        self.classifier_label.setText(f"classifier: {Path(path).name}")
        if self.table is not None and self._source is not None:
            images = (
                spot_images(self._source[0], self.table, self.classifier.box, self._source[1])
                if self.classifier.use_image
                else None
            )
            classes = self.classifier.predict(self.table, images)
            keep = self.table["user"].to_numpy(bool)
            classes[keep] = self.table["class"].to_numpy()[keep]
            self.set_classes(classes)

    def save_csv(self, path: str) -> Path:
        from ..io.spots_csv import write_spots_csv

        if self.table is None:
            raise ValueError("no spots to save")
        table = self.table.drop(columns=["user"])
        return write_spots_csv(path, table, pixel_size=self.pixel_spin.value(), overwrite=True)

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save spots", "spots.csv", "CSV (*.csv)")
        if path:
            self._guard(self.save_csv, path)

    def _save_model_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save classifier", "spots.joblib", "classifier (*.joblib)"
        )
        if path:
            self._guard(self.save_classifier, path)

    def _load_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load classifier", "", "classifier (*.joblib)")
        if path:
            self._guard(self.load_classifier, path)

    def _guard(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except (ValueError, OSError) as exc:
            show_error(f"Spots: {exc}")
