"""The Spots dock's "Detect" group: image, detection image, filter, threshold, PSF, fit box,
live preview switch and its count."""

from __future__ import annotations

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from ..spots.config import THRESHOLDS
from .axes_choice import AxesChoice

SAME_IMAGE = "(same image)"


def spin(value: float, low: float, high: float, step: float, decimals: int = 2) -> QDoubleSpinBox:
    """A double spin box with its range, step and decimals."""
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setValue(value)
    return box


def preview_text(candidates: int, kept: int | None = None) -> str:
    """What the preview label says: raw candidates, and what the last run kept there."""
    text = (
        f"{candidates} raw candidates on this frame, before the fit "
        "(the run keeps only significant fits)"
    )
    return text if kept is None else f"{text}; the last run kept {kept} here"


class DetectBox(QGroupBox):
    """Widgets that choose the image and how candidates are detected."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Detect", parent)
        form = QFormLayout(self)
        self.layer_combo = QComboBox()
        self.axes_choice = AxesChoice()  # "first axis is time" for an unlabelled 3D layer
        self.detect_combo = QComboBox()
        self.filter_combo = QComboBox()
        self.filter_combo.addItems(["wavelet", "dog", "log"])
        self.threshold_edit = QLineEdit(THRESHOLDS["wavelet"])
        self.threshold_edit.setToolTip(
            "a number or an expression over the filter images, e.g. 2*std(Wave.F1); "
            "functions: std, mean, median, mad, noise, localnoise, min, max, percentile, "
            "sqrt, abs (default: 0.7 x the local noise of Wave.F1)"
        )
        self.sigma_spin = spin(1.3, 0.3, 20.0, 0.1)
        self.box_spin = QSpinBox()
        self.box_spin.setRange(3, 31)
        self.box_spin.setSingleStep(2)
        self.box_spin.setValue(7)
        self.preview_check = QCheckBox("live preview of candidates on the current frame")
        self.preview_check.setChecked(True)
        self.preview_label = QLabel("")
        self.preview_label.setWordWrap(True)
        form.addRow("image", self.layer_combo)
        form.addRow("", self.axes_choice)
        form.addRow("detect on", self.detect_combo)
        form.addRow("filter", self.filter_combo)
        form.addRow("threshold", self.threshold_edit)
        form.addRow("PSF sigma (px)", self.sigma_spin)
        form.addRow("fit box (px)", self.box_spin)
        form.addRow(self.preview_check)
        form.addRow(self.preview_label)
        self.filter_combo.currentTextChanged.connect(
            lambda name: self.threshold_edit.setText(THRESHOLDS[name])
        )

    def set_layers(self, names: list[str]) -> None:
        """Offer ``names``; the current choices are kept when still there (no signals)."""
        for combo, extra in ((self.layer_combo, []), (self.detect_combo, [SAME_IMAGE])):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(extra + names)
            if current in extra + names:
                combo.setCurrentText(current)
            combo.blockSignals(False)

    def layer_names(self) -> list[str]:
        return [self.layer_combo.itemText(i) for i in range(self.layer_combo.count())]

    def detect_name(self) -> str | None:
        """The detection image's layer name, None for the image itself."""
        name = self.detect_combo.currentText()
        return name if name and name != SAME_IMAGE else None
