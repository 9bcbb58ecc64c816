"""The Spots dock's "Camera" group: preset, offset (checked against the image, with a
proposed value), sensitivity, read noise, EM gain, QE and the pixel size of the layer."""

from __future__ import annotations

from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QWidget,
)

from ..spots.camera import OffsetCheck
from ..spots.simulate import CAMERA_PRESETS
from .spots_detect import spin

DEFAULT_PIXEL_NM = 100.0
NOT_CALIBRATED = "not calibrated: the layer has no pixel size, enter it"


class CameraBox(QGroupBox):
    """Camera fields; :meth:`show_offset_check` and :meth:`set_layer_pixel_size` say how
    they fit the selected image."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Camera", parent)
        form = QFormLayout(self)
        self.preset_combo = QComboBox()
        self.preset_combo.addItems([*CAMERA_PRESETS, "custom"])
        self.offset_spin = spin(100.0, 0.0, 1e5, 1.0, 1)
        self.sensitivity_spin = spin(0.5, 0.001, 1000.0, 0.05, 3)
        self.read_noise_spin = spin(1.6, 0.0, 1000.0, 0.1)
        self.em_gain_spin = spin(1.0, 1.0, 10000.0, 1.0, 1)
        self.qe_spin = spin(1.0, 0.01, 1.0, 0.01)
        self.pixel_spin = spin(DEFAULT_PIXEL_NM, 1.0, 1e5, 1.0, 1)
        self.offset_label = QLabel("")
        self.offset_label.setWordWrap(True)
        self.offset_label.setStyleSheet("color: #ffb040")
        self.offset_button = QPushButton("")
        self.offset_button.setToolTip("set the offset to the image's dark level estimate")
        self.offset_button.hide()
        self.offset_label.hide()
        self.pixel_label = QLabel("")
        self.pixel_label.setStyleSheet("color: #ffb040")
        self.pixel_label.hide()
        self._estimate: float | None = None
        form.addRow("preset", self.preset_combo)
        form.addRow("offset (ADU)", self.offset_spin)
        form.addRow(self.offset_label)  # a row of its own, so the warning wraps to its height
        form.addRow(self.offset_button)
        form.addRow("sensitivity (e-/ADU)", self.sensitivity_spin)
        form.addRow("read noise (e-)", self.read_noise_spin)
        form.addRow("EM gain", self.em_gain_spin)
        form.addRow("quantum efficiency", self.qe_spin)
        form.addRow("pixel size (nm)", self.pixel_spin)
        form.addRow(self.pixel_label)
        self.preset_combo.currentTextChanged.connect(self.apply_preset)
        self.offset_button.clicked.connect(self.use_estimate)
        self.apply_preset(self.preset_combo.currentText())

    def apply_preset(self, name: str) -> None:
        camera = CAMERA_PRESETS.get(name)
        if camera is None:
            return
        self.offset_spin.setValue(camera.offset)
        self.sensitivity_spin.setValue(camera.sensitivity)
        self.read_noise_spin.setValue(camera.read_noise)
        self.em_gain_spin.setValue(camera.em_gain)
        self.qe_spin.setValue(camera.qe)

    # ------------------------------------------------------------------ offset
    def show_offset_check(self, check: OffsetCheck | None) -> None:
        """Say beside the offset whether it fits the image, with a button for the estimate."""
        bad = check is not None and check.verdict != "ok"
        self._estimate = check.estimate if bad else None
        self.offset_label.setVisible(bad)
        self.offset_button.setVisible(bad)
        if bad:
            self.offset_label.setText(f"⚠ {check.message}")
            self.offset_button.setText(f"Use {check.estimate:g}")

    def use_estimate(self) -> None:
        """Set the offset to the proposed estimate."""
        if self._estimate is not None:
            self.offset_spin.setValue(self._estimate)

    # ------------------------------------------------------------------ pixel size
    def set_layer_pixel_size(self, nm: float | None) -> None:
        """Follow the layer: its pixel size, or the default marked "not calibrated"."""
        self.pixel_spin.setValue(nm if nm else DEFAULT_PIXEL_NM)
        self.pixel_label.setText("" if nm else NOT_CALIBRATED)
        self.pixel_label.setVisible(not nm)
