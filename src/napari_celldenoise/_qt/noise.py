"""The "Noise" dock: estimate the noise model (with its variance/mean plot), add noise, compare.

Estimation and comparison are quick numpy work on a snapshot of the layer data and run in the
main thread; adding noise creates a new layer with the same scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QSpinBox,
    QWidget,
)

from ..classical.metrics import compare
from ..classical.noise import (
    NOISE_KINDS,
    estimate_noise,
    estimate_noise_stack,
)
from ..io.layers import layer_axes
from ..jobs.specs import AddNoiseSpec, NoiseConfig
from .axes_choice import AxesChoice
from .classical import PREVIEW, _make_canvas
from .provenance import beside, input_axes, layer_source, spec_metadata
from .scroll import scroll_layout


def _spin(lo: float, hi: float, value: float, decimals: int = 3) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(decimals)
    box.setValue(value)
    return box


class NoiseWidget(QWidget):
    """Dock with three boxes: Estimate, Add noise, Compare."""

    def __init__(self, napari_viewer: Any):
        super().__init__()
        self.viewer = napari_viewer
        self.last_fit: Any = None
        self.last_metrics: dict[str, float] | None = None

        # estimate
        self.est_layer = QComboBox()
        self.est_axes = AxesChoice()
        self.est_stack = QCheckBox("repeated frames (per-pixel mean/variance along T or Z)")
        self.est_button = QPushButton("Estimate")
        self.est_result = QLabel("")
        self.est_result.setWordWrap(True)
        self.canvas, self.axes = _make_canvas("no data yet: Estimate plots variance against mean")
        est = QGroupBox("Estimate noise: variance = a x mean + b")
        form = QFormLayout(est)
        form.addRow("image:", self.est_layer)
        form.addRow("", self.est_axes)
        form.addRow(self.est_stack)
        form.addRow(self.est_button)
        form.addRow(self.est_result)
        if self.canvas is not None:
            form.addRow(self.canvas)

        # add noise
        self.add_layer = QComboBox()
        self.kind = QComboBox()
        self.kind.addItems(list(NOISE_KINDS))
        self.sigma = _spin(0.0, 1e6, 5.0)
        self.gain = _spin(1e-4, 1e6, 1.0, 4)
        self.read_var = _spin(0.0, 1e9, 4.0)
        self.amount = _spin(0.0, 1.0, 0.05)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.add_button = QPushButton("Add noise")
        add = QGroupBox("Add noise (new layer)")
        form = QFormLayout(add)
        form.addRow("image:", self.add_layer)
        form.addRow("kind:", self.kind)
        form.addRow("gaussian sigma:", self.sigma)
        form.addRow("poisson gain a:", self.gain)
        form.addRow("gaussian variance b:", self.read_var)
        form.addRow("salt-pepper amount:", self.amount)
        form.addRow("seed:", self.seed)
        form.addRow(self.add_button)

        # compare
        self.cmp_image = QComboBox()
        self.cmp_ref = QComboBox()
        self.cmp_button = QPushButton("Compare")
        self.cmp_result = QLabel("")
        self.cmp_result.setWordWrap(True)
        self.cmp_lattice = QCheckBox("atomic lattice (EM): columns, vacancies, dents")
        self.cmp_lattice.setToolTip(
            "also score what matters in an atomic-resolution image, against the columns, "
            "vacancies and thickness map found in the (clean) reference: PSNR and SSIM after an "
            "affine fit, column F1 within a quarter of the spacing, position RMSE and bias, the "
            "share of the reference's vacancies the image fills, the dent-contrast error"
        )
        self.lattice_result = QLabel("")
        self.lattice_result.setWordWrap(True)
        self.last_lattice: dict[str, Any] | None = None
        self._lattice_worker: Any = None
        cmp_box = QGroupBox("Compare with a reference (PSNR, SSIM)")
        form = QFormLayout(cmp_box)
        form.addRow("image:", self.cmp_image)
        form.addRow("reference:", self.cmp_ref)
        form.addRow(self.cmp_lattice)
        form.addRow(self.cmp_button)
        form.addRow(self.lattice_result)
        form.addRow(self.cmp_result)

        layout = scroll_layout(self)
        layout.addWidget(est)
        layout.addWidget(add)
        layout.addWidget(cmp_box)
        layout.addStretch(1)

        self.est_button.clicked.connect(self.estimate)
        self.est_layer.currentIndexChanged.connect(
            lambda _: self.est_axes.set_layer(self._layer(self.est_layer))
        )
        self.add_button.clicked.connect(self.add_noise)
        self.cmp_button.clicked.connect(self.compare)
        self.viewer.layers.events.inserted.connect(self._refresh)
        self.viewer.layers.events.removed.connect(self._refresh)
        self._refresh()

    def _refresh(self, event: Any = None) -> None:
        names = [
            ly.name
            for ly in self.viewer.layers
            if ly.__class__.__name__ == "Image" and not ly.rgb and ly.name != PREVIEW
        ]
        for box in (self.est_layer, self.add_layer, self.cmp_image, self.cmp_ref):
            current = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems(names)
            if current in names:
                box.setCurrentText(current)
            box.blockSignals(False)
        self.est_axes.set_layer(self._layer(self.est_layer))

    def _layer(self, box: QComboBox) -> Any:
        name = box.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    # -- actions -----------------------------------------------------------------------------
    def estimate(self) -> Any:
        from napari.utils.notifications import show_error

        layer = self._layer(self.est_layer)
        if layer is None:
            return None
        axes = self.est_axes.axes(layer)
        data = np.asarray(layer.data, dtype=np.float32)
        try:
            if self.est_stack.isChecked():
                axis = "T" if "T" in axes else ("Z" if "Z" in axes else None)
                if axis is None or layer.ndim < 3:
                    raise ValueError("repeated frames need a T or Z axis")
                frames = np.moveaxis(data, axes.index(axis), 0)
                fit = estimate_noise_stack(frames.reshape(frames.shape[0], -1, frames.shape[-1]))
            else:
                fit = estimate_noise(data.reshape(-1, *data.shape[-2:]))
        except ValueError as exc:
            show_error(f"noise estimate: {exc}")
            return None
        self.last_fit = fit
        self.est_result.setText(
            f"{fit.model}: a = {fit.a:.4g}, b = {fit.b:.4g}, sigma = {fit.sigma:.4g}\n"
            f"fit r2 = {fit.r2:.3f}, {fit.n_bins} bins, {fit.n_samples} samples ({fit.source})"
        )
        if self.canvas is not None:
            from ..classical.plots import draw_noise_fit

            draw_noise_fit(self.axes, fit, title=layer.name)
            self.canvas.draw_idle()
        return fit

    def noise_config(self) -> NoiseConfig:
        """The noise the "Add noise" button adds, from the dock's settings."""
        kind = self.kind.currentText()
        return NoiseConfig(
            noise=kind,
            sigma=self.sigma.value() if kind == "gaussian" else None,
            a=self.gain.value() if kind == "poisson-gaussian" else None,
            b=self.read_var.value() if kind == "poisson-gaussian" else 0.0,
            amount=self.amount.value(),
            seed=self.seed.value(),
        )

    def add_noise(self) -> Any:
        from napari.utils.notifications import show_error

        layer = self._layer(self.add_layer)
        if layer is None:
            return None
        try:
            config = self.noise_config()
            noisy = config.apply(layer.data)
        except ValueError as exc:
            show_error(f"add noise: {exc}")
            return None
        return self.viewer.add_image(
            noisy,
            name=f"{layer.name} + {config.noise} ({config.label()})",
            scale=tuple(layer.scale),
            translate=tuple(layer.translate),
            units=tuple(getattr(layer, "units", ())) or None,
            axis_labels=tuple(getattr(layer, "axis_labels", ())) or None,
            metadata=spec_metadata(self.noise_spec_for(layer, config)),
        )

    def noise_spec_for(self, layer: Any, config: NoiseConfig) -> AddNoiseSpec | None:
        """The spec that makes "Add noise" of ``layer`` from its file (None: no file)."""
        from ..jobs.specs import add_noise_spec

        path, channel = layer_source(layer)
        if path is None:
            return None
        axes = input_axes(layer, layer_axes(layer))
        output = beside(path, f"_{config.noise}.ome.tif")
        return add_noise_spec(path, output, config, axes=axes, channel=channel)

    def compare(self) -> dict[str, float] | None:
        from napari.utils.notifications import show_error

        image, ref = self._layer(self.cmp_image), self._layer(self.cmp_ref)
        if image is None or ref is None:
            return None
        a, b = np.asarray(image.data), np.asarray(ref.data)
        if a.shape != b.shape:
            show_error(f"compare: shapes differ, {a.shape} vs {b.shape}")
            return None
        values = compare(a, b)
        self.last_metrics = values
        self.cmp_result.setText(
            f"PSNR {values['psnr']:.2f} dB, SSIM {values['ssim']:.4f}, "
            f"affine-fitted PSNR {values['psnr_affine']:.2f} dB (data range "
            f"{values['data_range']:.4g})"
        )
        if self.cmp_lattice.isChecked():
            self.compare_lattice(image, ref)
        return values

    def compare_lattice(self, image: Any, ref: Any) -> Any:
        """The lattice metrics of the displayed plane against the reference's, in a thread."""
        from napari.qt.threading import create_worker

        from ..io.em import length_in_nm
        from .lattice import plane_and_scale

        step = tuple(self.viewer.dims.current_step)
        out, _, _ = plane_and_scale(image, step)
        truth_plane, scale, unit = plane_and_scale(ref, step)
        nm, unit = length_in_nm(scale[-1], unit)
        pixel = nm if unit == "nm" else 1e-3  # no physical size: positions in px ("pm" = px/1000)

        def work():
            from ..em.errors import LatticeNotFound
            from ..em.metrics import lattice_metrics, truth_from_reference

            try:
                truth = truth_from_reference(truth_plane, pixel_size=pixel)
            except (LatticeNotFound, ValueError) as exc:  # an answer, not a failure
                return f"reference: {exc}"
            return lattice_metrics(out, truth)

        self.last_lattice = None
        self.lattice_result.setText("measuring the lattice metrics ...")
        self.cmp_button.setEnabled(False)
        worker = create_worker(work)
        worker.returned.connect(lambda res: self._lattice_done(res, unit == "nm"))
        worker.errored.connect(lambda exc: self._lattice_done(f"lattice metrics: {exc}", True))
        worker.finished.connect(lambda: self.cmp_button.setEnabled(True))
        self._lattice_worker = worker
        worker.start()
        return worker

    def _lattice_done(self, result: dict[str, Any] | str, physical: bool) -> None:
        from napari.utils.notifications import show_warning

        if isinstance(result, str):
            self.lattice_result.setText(result)
            show_warning(result)
            return
        self.last_lattice = result
        unit = "pm" if physical else "px / 1000"
        self.lattice_result.setText(format_lattice_metrics(result, unit))


def format_lattice_metrics(m: dict[str, Any], unit: str = "pm") -> str:
    """The lattice metrics (:func:`..em.metrics.lattice_metrics`) as lines for a person."""

    def pct(v: float) -> str:
        return "-" if not np.isfinite(v) else f"{100 * v:.1f} %"

    return "\n".join(
        [
            f"lattice: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.3f} (after an affine fit)",
            f"columns: F1 {m['f1']:.3f} (precision {m['precision']:.3f}, recall "
            f"{m['recall']:.3f} of {m['columns']}), RMSE {m['rmse_pm']:.1f} {unit}, "
            f"bias {m['bias_pm']:.1f} {unit}",
            f"vacancies filled: {pct(m['vacancies_filled'])} of {m['vacancies']}",
            f"dent contrast error: {pct(m['dent_contrast_error'])}",
        ]
    )
