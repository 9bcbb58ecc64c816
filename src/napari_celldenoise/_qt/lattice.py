"""The "Lattice" dock: measure the crystal lattice of an atomic-resolution image.

Shows the power spectrum with the Bragg peaks found (the two that define the basis in red), the
lattice overlaid on the image (a points layer at the columns of the motif, a vectors layer for
``a1`` and ``a2``) and the measured numbers. The work runs in a thread worker; the numerics are
in :mod:`..em.lattice`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..em.lattice import Lattice, Motif

SUBLATTICE_COLOURS = ["#ff5050", "#50c8ff", "#ffd040", "#80ff80", "#d080ff"]


def plane_and_scale(layer: Any, step: tuple[int, ...]) -> tuple[np.ndarray, tuple, str]:
    """The displayed 2D plane of an image layer, its (y, x) pixel size and unit."""
    data = layer.data
    lead = tuple(int(s) for s in step[: data.ndim - 2])
    plane = np.asarray(data[lead] if lead else data, dtype=np.float64)
    scale = tuple(float(s) for s in layer.scale[-2:])
    units = [str(u) for u in getattr(layer, "units", ())][-2:] or ["pixel"]
    unit = {"nanometer": "nm", "micrometer": "µm", "angstrom": "Å"}.get(units[-1], units[-1])
    return plane, scale, unit


def lattice_points(lattice: Lattice, motif: Motif) -> tuple[np.ndarray, np.ndarray]:
    """Positions (y, x, px) of every column of the motif in the image and its sublattice."""
    from ..em.simulate import lattice_sites

    cells = tuple((float(u), float(v), 1.0) for u, v, _ in motif.columns)
    return lattice_sites(lattice.shape, lattice.basis, motif.origin, cells)


class LatticeWidget(QWidget):
    """Measure the lattice of the chosen image layer and overlay it."""

    def __init__(self, napari_viewer: Any):
        super().__init__()
        self.viewer = napari_viewer
        self.result: dict[str, Any] | None = None
        self.lattice: Lattice | None = None
        self.busy = False
        self._worker = None
        self.layer_combo = QComboBox()
        self.measure_button = QPushButton("Measure lattice")
        self.measure_button.setToolTip(
            "FFT (Hann window, zero padding) of the displayed plane: the two shortest "
            "non-collinear Bragg peaks give the basis; folding into the cell gives the motif"
        )
        self.status = QLabel("Choose an atomic-resolution image and press Measure.")
        self.status.setWordWrap(True)
        self.numbers = QLabel("")
        self.numbers.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.numbers.setStyleSheet("font-family: monospace;")
        self.numbers.setWordWrap(True)
        self.known_a = QDoubleSpinBox()
        self.known_a.setRange(0.0, 1000.0)
        self.known_a.setDecimals(4)
        self.known_a.setSingleStep(0.001)
        self.known_a.setSpecialValueText("off")
        self.known_a.setToolTip(
            "The lattice constant a in the image's unit (0.316 for MoS2 in nm): the report "
            "then gives the pixel size it implies and how far the file's is off (0 = off)"
        )
        form = QFormLayout()
        form.addRow("image:", self.layer_combo)
        form.addRow("known a:", self.known_a)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.measure_button)
        layout.addWidget(self.status)
        self.canvas, self.axes = _fft_canvas()
        if self.canvas is not None:
            layout.addWidget(self.canvas)
        layout.addWidget(self.numbers)
        layout.addStretch(1)
        self.measure_button.clicked.connect(self.measure)
        self.known_a.valueChanged.connect(self._report)
        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self._refresh_layers()

    # -- layers ----------------------------------------------------------------------------
    def _refresh_layers(self, event: Any = None) -> None:
        current = self.layer_combo.currentText()
        names = [
            ly.name
            for ly in self.viewer.layers
            if ly.__class__.__name__ == "Image" and not ly.rgb and ly.ndim >= 2
        ]
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        if current in names:
            self.layer_combo.setCurrentText(current)
        self.layer_combo.blockSignals(False)

    def set_layer(self, name: str) -> None:
        self.layer_combo.setCurrentText(name)

    def layer(self) -> Any:
        name = self.layer_combo.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    # -- measuring -------------------------------------------------------------------------
    def measure(self) -> None:
        layer = self.layer()
        if layer is None or self.busy:
            return
        from napari.qt.threading import create_worker

        plane, scale, unit = plane_and_scale(layer, tuple(self.viewer.dims.current_step))

        def work():
            from ..em.lattice import (
                LatticeNotFound,
                fft_image,
                measure_gain,
                measure_lattice,
                measure_motif,
            )

            try:
                lattice = measure_lattice(plane, scale=scale, unit=unit)
            except (LatticeNotFound, ValueError) as exc:  # an answer, not a failure
                return str(exc)  # (a returned exception would be re-raised by the worker)
            motif = measure_motif(plane, lattice)
            noise = measure_gain(plane, lattice)
            return lattice, motif, noise, fft_image(plane)

        self.busy = True
        self.measure_button.setEnabled(False)
        self.status.setText(f"Measuring the lattice of {layer.name} ...")
        worker = create_worker(work)
        worker.returned.connect(lambda res: self._done(res, layer))
        worker.errored.connect(self._failed)
        worker.finished.connect(self._finished)
        self._worker = worker
        worker.start()

    def _finished(self) -> None:
        self.busy = False
        self.measure_button.setEnabled(True)
        self._worker = None

    def _failed(self, exc: BaseException) -> None:
        from napari.utils.notifications import show_warning

        self.result = None
        self.lattice = None
        self.status.setText(str(exc))
        show_warning(str(exc))

    def _report(self, *_: Any) -> None:
        """The numbers, with the calibration from the known lattice constant when one is set
        (a change of ``known a`` after measuring updates them without measuring again)."""
        from ..em.lattice import calibration, format_report

        if self.result is None or self.lattice is None:
            return
        self.result.pop("calibration", None)
        if self.known_a.value() > 0:
            self.result["calibration"] = calibration(self.lattice, self.known_a.value())
        self.numbers.setText(format_report(self.result))

    def _done(self, result: tuple | str, layer: Any) -> None:
        if isinstance(result, str):
            self._failed(ValueError(result))
            return
        lattice, motif, noise, fft = result
        self.lattice = lattice
        self.result = {
            "lattice": lattice.to_dict(),
            "motif": motif.to_dict(float(np.mean(lattice.scale)), lattice.unit),
            "noise": noise,
        }
        self.status.setText(
            f"{lattice.kind.capitalize()} lattice of {layer.name}, confidence "
            f"{lattice.confidence:.3f}: the columns are overlaid on the image."
        )
        self.known_a.setSuffix(f" {lattice.unit}" if lattice.unit != "pixel" else "")
        self._report()
        self._overlay(layer, lattice, motif)
        self._plot_fft(fft, lattice)

    def _overlay(self, layer: Any, lattice: Lattice, motif: Motif) -> None:
        pos, which = lattice_points(lattice, motif)
        scale = tuple(layer.scale[-2:])
        translate = tuple(layer.translate[-2:])
        units = tuple(getattr(layer, "units", ())[-2:]) or None
        colours = [SUBLATTICE_COLOURS[k % len(SUBLATTICE_COLOURS)] for k in which]
        name = f"lattice of {layer.name}"
        size = max(1.0, 0.25 * min(lattice.lengths_px))
        if name in self.viewer.layers:
            pts = self.viewer.layers[name]
            pts.data = pos
            pts.face_color = colours
            pts.size = size
        else:
            self.viewer.add_points(
                pos,
                name=name,
                scale=scale,
                translate=translate,
                units=units,
                size=size,
                face_color=colours,
                border_color="transparent",
                opacity=0.6,
                features={"sublattice": which},
            )
        vectors = np.stack([np.stack([motif.origin, a]) for a in lattice.basis])
        vname = f"basis of {layer.name}"
        if vname in self.viewer.layers:
            self.viewer.layers[vname].data = vectors
        else:
            self.viewer.add_vectors(
                vectors,
                name=vname,
                scale=scale,
                translate=translate,
                units=units,
                edge_width=max(0.5, 0.06 * min(lattice.lengths_px)),
                edge_color="yellow",
                vector_style="arrow",
            )
        self.viewer.layers.selection.active = layer

    def _plot_fft(self, fft: np.ndarray, lattice: Lattice) -> None:
        if self.axes is None:
            return
        ax = self.axes
        ax.clear()
        n = fft.shape[0]
        c = n // 2
        reach = 1.6 * float(np.max(np.hypot(*lattice.reciprocal.T)))
        half = max(8, int(np.ceil(min(reach, 0.5) * n)))
        crop = fft[max(0, c - half) : c + half, max(0, c - half) : c + half]
        lo, hi = np.percentile(crop, [50, 99.9])
        extent = (-half / n, half / n, half / n, -half / n)
        ax.imshow(crop, cmap="gray", vmin=lo, vmax=hi, extent=extent)
        peaks = np.concatenate([lattice.peaks, -lattice.peaks])
        ax.scatter(
            peaks[:, 1],
            peaks[:, 0],
            s=30,
            facecolors="none",
            edgecolors="#50c8ff",
            linewidths=0.8,
            label="Bragg peaks",
        )
        basis = np.concatenate([lattice.reciprocal, -lattice.reciprocal])
        ax.scatter(
            basis[:, 1],
            basis[:, 0],
            s=60,
            facecolors="none",
            edgecolors="red",
            linewidths=1.5,
            label="g1, g2",
        )
        ax.set_xlim(-half / n, half / n)
        ax.set_ylim(half / n, -half / n)
        ax.set_xlabel("kx (1/px)")
        ax.set_ylabel("ky (1/px)")
        ax.set_title("power spectrum (log)", fontsize=9)
        ax.legend(loc="upper right", fontsize=7, framealpha=0.6)
        self.canvas.draw_idle()


def _fft_canvas() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure
    except ImportError:  # matplotlib is optional
        return None, None
    fig = Figure(figsize=(3.6, 3.4), dpi=90, tight_layout=True)
    canvas = FigureCanvasQTAgg(fig)
    canvas.setMinimumHeight(260)
    return canvas, fig.add_subplot(1, 1, 1)
