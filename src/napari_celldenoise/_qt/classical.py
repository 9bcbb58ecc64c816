"""The "Classical denoise" dock: method, one slider per parameter, live preview, auto-tune, apply.

The preview filters the plane shown in the viewer (debounced while a slider moves). Light
methods run in the main thread (a few ms at 4 megapixels); heavy ones (``Method.heavy``, or any
method in true-3D mode) run in a thread worker, one at a time: a request made while one runs is
kept as the next one and results of outdated requests are dropped. Auto-tune and "Apply to stack"
run through the shared :class:`~._qt.jobs.JobPanel` (progress bar, Cancel).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from qtpy.QtCore import Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QWidget,
)

from ..classical.apply import NoiseInfo, describe_params, filter_block, noise_info, plan_blocks
from ..classical.params import ImageTooSmall, Param
from ..classical.registry import METHODS, Method
from ..jobs import Done
from ..jobs.specs import FilterSpec
from .axes_choice import AxesChoice
from .jobs import JobPanel
from .provenance import beside, input_axes, layer_source, spec_metadata
from .scroll import scroll_layout

PREVIEW = "preview"
SLAB = 4  # planes on each side of the current one for a true-3D preview


def current_index(viewer: Any, layer: Any) -> tuple[int, ...]:
    """Data index of the plane shown for every non-YX axis of ``layer``."""
    if layer.ndim <= 2:
        return ()
    point = np.asarray(viewer.dims.point)[-layer.ndim :]
    data_point = np.asarray(layer.world_to_data(point))
    shape = layer.data.shape
    return tuple(
        int(np.clip(round(float(v)), 0, shape[i] - 1)) for i, v in enumerate(data_point[:-2])
    )


class ParamSlider(QWidget):
    """A slider (linear or log) with its value and unit, or a combo box for choices."""

    changed = Signal()

    STEPS = 1000

    def __init__(self, spec: Param, sigma: float, parent: QWidget | None = None):
        super().__init__(parent)
        self.spec = spec
        self.lo, self.hi = spec.slider_range(sigma)
        self.value_label = QLabel()
        self.value_label.setMinimumWidth(90)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        if spec.kind == "choice":
            self.combo = QComboBox()
            self.combo.addItems(list(spec.choices))
            self.combo.currentIndexChanged.connect(lambda _: self.changed.emit())
            row.addWidget(self.combo, 1)
            self.slider = None
        else:
            self.combo = None
            self.slider = QSlider(Qt.Orientation.Horizontal)
            self.slider.setRange(0, self.STEPS)
            self.slider.valueChanged.connect(self._moved)
            row.addWidget(self.slider, 1)
            row.addWidget(self.value_label)
        self.set_value(spec.default_for(sigma))

    # position <-> value
    def _to_value(self, pos: int) -> Any:
        f = pos / self.STEPS
        lo, hi = self.lo, self.hi
        if self.spec.log and lo > 0:
            v = math.exp(math.log(lo) + f * (math.log(hi) - math.log(lo)))
        else:
            v = lo + f * (hi - lo)
        if self.spec.kind == "int":
            return round(v)
        if self.spec.kind == "odd":
            return round(v) | 1
        return float(v)

    def _to_pos(self, v: float) -> int:
        lo, hi = self.lo, self.hi
        v = min(max(float(v), lo), hi)
        if self.spec.log and lo > 0:
            f = (math.log(v) - math.log(lo)) / max(math.log(hi) - math.log(lo), 1e-12)
        else:
            f = (v - lo) / max(hi - lo, 1e-12)
        return round(f * self.STEPS)

    def value(self) -> Any:
        if self.combo is not None:
            return self.combo.currentText()
        return self._value

    def set_value(self, v: Any) -> None:
        if self.combo is not None:
            self.combo.setCurrentText(str(v))
            return
        self._value = self.spec.check(v)
        self.lo, self.hi = min(self.lo, float(v)), max(self.hi, float(v))
        self.slider.blockSignals(True)
        self.slider.setValue(self._to_pos(float(v)))
        self.slider.blockSignals(False)
        self._show()
        self.changed.emit()

    def _moved(self, pos: int) -> None:
        value = self._to_value(pos)
        try:
            self._value = self.spec.check(value)
        except ValueError:
            return
        self._show()
        self.changed.emit()

    def _show(self) -> None:
        v = self._value
        text = f"{v:.3g}" if isinstance(v, float) else str(v)
        unit = self.spec.unit if self.spec.unit not in ("", "iterations") else ""
        self.value_label.setText(f"{text} {unit}".strip())


class ClassicalDenoiseWidget(QWidget):
    """Dock: pick a layer and a method, move sliders, see the preview, tune, apply."""

    preview_updated = Signal()

    def __init__(self, napari_viewer: Any):
        super().__init__()
        self.viewer = napari_viewer
        self.layer_combo = QComboBox()
        self.axes_choice = AxesChoice()
        self.method_combo = QComboBox()
        for m in METHODS.values():
            self.method_combo.addItem(m.title, m.name)
        self.three_d = QCheckBox("true 3D (Z, or T without Z)")
        self.vst = QCheckBox("VST (Poisson-Gaussian, generalized Anscombe)")
        self.live = QCheckBox("live preview of the current plane")
        self.live.setChecked(True)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.form = QFormLayout()
        self.tune_button = QPushButton("Auto-tune")
        self.apply_button = QPushButton("Apply to stack")
        self.tune_label = QLabel("")
        self.tune_label.setWordWrap(True)
        self.size_note = QLabel("")  # why the method cannot run on this image
        self.size_note.setWordWrap(True)
        self.size_note.setStyleSheet("color: #e0a040")
        self.size_note.hide()
        self._size_message: str | None = None
        self.jobs = JobPanel()
        self.canvas, self.axes = _make_canvas("no data yet: Auto-tune plots its loss curve here")

        layout = scroll_layout(self)
        top = QFormLayout()
        top.addRow("image:", self.layer_combo)
        top.addRow("", self.axes_choice)
        top.addRow("method:", self.method_combo)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.three_d)
        layout.addWidget(self.vst)
        layout.addLayout(self.form)
        layout.addWidget(self.size_note)
        layout.addWidget(self.live)
        buttons = QHBoxLayout()
        buttons.addWidget(self.tune_button)
        buttons.addWidget(self.apply_button)
        layout.addLayout(buttons)
        layout.addWidget(self.jobs)
        layout.addWidget(self.tune_label)
        if self.canvas is not None:
            layout.addWidget(self.canvas)
        layout.addStretch(1)

        self.sliders: dict[str, ParamSlider] = {}
        self._noise: dict[tuple, NoiseInfo] = {}
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(60)
        self._timer.timeout.connect(self._preview_now)
        self._request = 0  # id of the newest preview request
        self._worker: Any = None
        self._pending = False
        self.last_preview_ms: float | None = None
        self.last_tune: Any = None

        self.method_combo.currentIndexChanged.connect(self._method_changed)
        self.layer_combo.currentIndexChanged.connect(self._layer_changed)
        self.three_d.toggled.connect(self._layer_changed)
        self.vst.toggled.connect(self._layer_changed)
        self.axes_choice.changed.connect(self._layer_changed)
        self.live.toggled.connect(lambda on: self.request_preview() if on else None)
        self.tune_button.clicked.connect(self.auto_tune)
        self.apply_button.clicked.connect(self.apply_to_stack)
        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self.viewer.dims.events.current_step.connect(lambda _: self.request_preview())
        self._refresh_layers()
        self._method_changed()

    # -- state -------------------------------------------------------------------------------
    @property
    def method(self) -> Method:
        return METHODS[self.method_combo.currentData()]

    def layer(self) -> Any:
        name = self.layer_combo.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def layer_axes(self, layer: Any) -> str:
        """The axes this dock reads ``layer`` with (see :class:`.AxesChoice`)."""
        return self.axes_choice.axes(layer)

    def params(self) -> dict[str, Any]:
        return {name: s.value() for name, s in self.sliders.items()}

    def set_method(self, name: str) -> None:
        self.method_combo.setCurrentIndex(self.method_combo.findData(name))

    def set_layer(self, name: str) -> None:
        self.layer_combo.setCurrentText(name)

    def noise(self) -> NoiseInfo | None:
        layer = self.layer()
        if layer is None:
            return None
        axes = self.layer_axes(layer)
        key = (id(layer), tuple(layer.data.shape), axes, self.vst.isChecked())
        if key not in self._noise:
            self._noise[key] = noise_info(layer.data, axes, vst=self.vst.isChecked())
        return self._noise[key]

    def _sigma_for_sliders(self) -> float:
        info = self.noise()
        if info is None:
            return 1.0
        return 1.0 if self.vst.isChecked() and not self.method.impulse else info.sigma

    def _refresh_layers(self, event: Any = None) -> None:
        current = self.layer_combo.currentText()
        names = [
            ly.name
            for ly in self.viewer.layers
            if ly.__class__.__name__ == "Image" and ly.name != PREVIEW and not ly.rgb
        ]
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        if current in names:
            self.layer_combo.setCurrentText(current)
        self.layer_combo.blockSignals(False)
        if current not in names:
            self._layer_changed()

    def _layer_changed(self, *args: Any) -> None:
        self.axes_choice.set_layer(self.layer())
        self._build_sliders()
        self.request_preview()

    def _method_changed(self, *args: Any) -> None:
        m = self.method
        self.summary.setText(m.summary + (" (computed in a worker)" if m.heavy else ""))
        self.tune_button.setEnabled(m.main is not None)
        self._build_sliders()
        self.request_preview()

    def _build_sliders(self) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.sliders = {}
        sigma = self._sigma_for_sliders()
        for spec in self.method.params:
            slider = ParamSlider(spec, sigma)
            slider.setToolTip(spec.help)
            slider.changed.connect(self.request_preview)
            self.sliders[spec.name] = slider
            label = spec.name.replace("_", " ")
            if spec.relative:
                label += " (intensity)"
            self.form.addRow(f"{label}:", slider)

    # -- preview -----------------------------------------------------------------------------
    def request_preview(self, *args: Any) -> None:
        """Debounced: the preview is computed 60 ms after the last change."""
        if self.live.isChecked() and self.layer() is not None:
            self._timer.start()
        else:
            self._timer.stop()

    def _preview_input(self) -> tuple[np.ndarray, int | None]:
        """The current plane (or a slab around it for 3D) and the index of the plane in it."""
        layer = self.layer()
        axes = self.layer_axes(layer)
        idx = current_index(self.viewer, layer)
        data = layer.data
        if self.three_d.isChecked() and layer.ndim >= 3:
            plan = plan_blocks(tuple(data.shape), axes, three_d=True)
            if len(plan.block_axes) == 3:
                third = axes.index(plan.block_axes[0])
                i = idx[third]
                # a full slab near the ends too: a method's minimum depth is met wherever
                # the volume is deep enough for it
                n = data.shape[third]
                lo = max(0, min(i - SLAB, n - (2 * SLAB + 1)))
                hi = min(n, lo + 2 * SLAB + 1)
                sel = [*list(idx), slice(None), slice(None)]
                sel[third] = slice(lo, hi)
                return np.asarray(data[tuple(sel)], dtype=np.float32), i - lo
        return np.asarray(data[idx], dtype=np.float32), None

    def _compute(self, block: np.ndarray, at: int | None, params: dict, info: NoiseInfo) -> Any:
        m = self.method
        gat = info.gat if self.vst.isChecked() else None
        out = filter_block(block, m, params, gat=gat, noise_sigma=info.sigma)
        return out if at is None else out[at]

    def _preview_now(self) -> None:
        layer = self.layer()
        if layer is None:
            return
        info = self.noise()
        params = self.params()
        block, at = self._preview_input()
        if self.refuse_small(block.shape, params):
            return
        self._request += 1
        request = self._request
        if not self.method.heavy and at is None:
            start = time.perf_counter()
            out = self._compute(block, at, params, info)
            self.last_preview_ms = 1000 * (time.perf_counter() - start)
            self._show_preview(out, layer)
            return
        if self._worker is not None:
            self._pending = True  # compute the newest request when this one ends
            return
        self._start_worker(block, at, params, info, request, layer)

    def _start_worker(self, block, at, params, info, request, layer) -> None:
        from napari.qt.threading import create_worker

        def work() -> tuple[int, np.ndarray, float]:
            start = time.perf_counter()
            out = self._compute(block, at, params, info)
            return request, out, 1000 * (time.perf_counter() - start)

        worker = create_worker(work)
        worker.returned.connect(lambda res: self._worker_done(res, layer))
        worker.errored.connect(self._worker_error)
        worker.finished.connect(self._worker_finished)
        self._worker = worker
        worker.start()

    def _worker_done(self, result: tuple, layer: Any) -> None:
        request, out, ms = result
        if request != self._request or not self.live.isChecked():
            return  # stale: a newer request is pending, or preview switched off
        self.last_preview_ms = ms
        self._show_preview(out, layer)

    def _worker_error(self, exc: BaseException) -> None:
        from napari.utils.notifications import show_error

        show_error(f"preview failed: {exc}")

    def _worker_finished(self) -> None:
        self._worker = None
        if self._pending:
            self._pending = False
            self._preview_now()

    @property
    def busy(self) -> bool:
        """A preview is being computed or waits for the debounce."""
        return self._worker is not None or self._timer.isActive()

    def _show_preview(self, out: np.ndarray, layer: Any) -> None:
        scale = tuple(layer.scale)[-2:]
        translate = tuple(layer.translate)[-2:]
        units = tuple(layer.units)[-2:]  # same units as the source, or napari drops all units
        if PREVIEW in self.viewer.layers:
            preview = self.viewer.layers[PREVIEW]
            if preview.data.shape == out.shape:
                preview.data = out
            else:
                self.viewer.layers.remove(preview)
        if PREVIEW not in self.viewer.layers:
            preview = self.viewer.add_image(
                out,
                name=PREVIEW,
                scale=scale,
                translate=translate,
                units=units,
                contrast_limits=tuple(layer.contrast_limits),
                colormap=layer.colormap,
            )
            self._refresh_layers()
        preview.scale = scale
        layers = self.viewer.layers
        at = layers.index(preview)
        if at != len(layers) - 1:  # results applied since stay below what is being tuned
            layers.move(at, len(layers))
        preview.metadata["source"] = layer.name
        preview.metadata["method"] = self.method.name
        self.preview_updated.emit()

    def refuse_small(self, shape: tuple[int, ...], params: dict, *, notify: bool = False) -> bool:
        """True (with the reason beside the sliders and as a notification) when the method
        cannot run on blocks of ``shape``; the notification is shown once per reason unless
        ``notify`` (a button was pressed)."""
        from napari.utils.notifications import show_warning

        try:
            self.method.check_size(shape, params)
        except ImageTooSmall as exc:
            message = str(exc)
            self.size_note.setText(message)
            self.size_note.show()
            if notify or message != self._size_message:
                show_warning(message)
            self._size_message = message
            return True
        self.size_note.hide()
        self._size_message = None
        return False

    # -- auto-tune and apply -------------------------------------------------------------------
    def auto_tune(self) -> Any:
        from ..classical.autotune import autotune_job

        layer, m = self.layer(), self.method
        if layer is None or m.main is None:
            return None
        info = self.noise()
        block, _ = self._preview_input()  # the plane, or in true 3D the slab around it
        gat = info.gat if self.vst.isChecked() else None
        params = {k: v for k, v in self.params().items() if k != m.main}
        if self.refuse_small(block.shape, self.params(), notify=True):
            return None
        max_pixels = 512 * 512 if block.ndim == 2 else 128 * 128

        def factory(should_stop):
            return autotune_job(
                block,
                m,
                params,
                gat=gat,
                noise_sigma=info.sigma,
                max_pixels=max_pixels,
                n_phases=2,  # half the time of 4 phases; 1/8 of the pixels still score
                should_stop=should_stop,
            )

        return self.jobs.start(factory, on_done=self._tuned, label=f"auto-tuning {m.main}")

    def _tuned(self, result: Any) -> None:
        if result is None:
            return
        self.last_tune = result
        slider = self.sliders.get(result.param)
        if slider is not None:
            slider.set_value(result.best)
        best = f"{result.best:.4g}" if isinstance(result.best, float) else str(result.best)
        self.tune_label.setText(
            f"auto-tune: {result.param} = {best} (Noise2Self loss {min(result.losses):.4g}, "
            f"{len(result.values)} values, {result.seconds:.1f} s)"
        )
        if self.canvas is not None:
            from ..classical.plots import draw_loss_curve

            draw_loss_curve(self.axes, result)
            self.canvas.draw_idle()

    def spec_for(
        self, layer: Any, axes: str, params: dict, three_d: bool, vst: Any
    ) -> FilterSpec | None:
        """The spec that makes "Apply to stack" of ``layer`` from its file (None: no file).

        The noise model the dock estimated goes in as it is, so a replay does not estimate
        it again and gives the same pixels."""
        from ..jobs.specs import classical_spec

        path, channel = layer_source(layer)
        if path is None:
            return None
        spec = classical_spec(
            path,
            beside(path, f"_{self.method.name}.ome.tif"),
            self.method.name,
            params,
            axes=input_axes(layer, axes),
            three_d=three_d,
            vst=bool(vst),
            noise=(vst.a, vst.b) if vst else None,
        )
        if channel is None:
            return spec
        return spec.model_copy(update={"input": spec.input.model_copy(update={"channel": channel})})

    def apply_to_stack(self) -> Any:
        from ..classical.apply import denoise_job

        layer, m = self.layer(), self.method
        if layer is None:
            return None
        info = self.noise()
        data = layer.data  # a snapshot reference: the job never touches the layer
        axes = self.layer_axes(layer)
        params = self.params()
        three_d = self.three_d.isChecked()
        plan = plan_blocks(tuple(data.shape), axes, three_d)
        if self.refuse_small(plan.block_shape(tuple(data.shape), axes), params, notify=True):
            return None
        vst = info.gat if self.vst.isChecked() else False
        scale = dict(zip(axes, layer.scale))
        name = f"{layer.name} {m.name}({describe_params(m, params)}){' vst' if vst else ''}"
        metadata = spec_metadata(
            self.spec_for(layer, axes, params, three_d, vst), method=m.name, params=params
        )

        def factory(should_stop):
            return denoise_job(
                data,
                axes,
                m,
                params,
                three_d=three_d,
                vst=vst,
                scale=scale,
                noise=info,
                should_stop=should_stop,
            )

        def on_event(event: Any) -> None:
            if not isinstance(event, Done) or event.stopped or event.result is None:
                return  # cancelled: no half-filtered layer
            result = event.result
            self.viewer.add_image(
                result,
                name=name,
                scale=tuple(layer.scale),
                translate=tuple(layer.translate),
                units=tuple(getattr(layer, "units", ())) or None,
                axis_labels=tuple(getattr(layer, "axis_labels", ())) or None,
                contrast_limits=tuple(layer.contrast_limits),
                metadata=metadata,
            )

        return self.jobs.start(factory, on_event=on_event, label=f"{m.name} on {layer.name}")


def _make_canvas(empty: str) -> tuple[Any, Any]:
    """A plot canvas for a dock; until something is drawn it shows ``empty`` (no fake axes)."""
    try:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure
    except ImportError:  # matplotlib is optional
        return None, None
    fig = Figure(figsize=(4, 2.6), dpi=90, tight_layout=True)
    canvas = FigureCanvasQTAgg(fig)
    canvas.setMinimumHeight(200)
    ax = fig.add_subplot(1, 1, 1)
    from ..classical.plots import draw_empty

    draw_empty(ax, empty)
    return canvas, ax


def demo_step(viewer: Any, out: Any, docks: dict[str, Any]) -> dict[str, Any]:
    """Demo: auto-tune TV inside the VST on "cells (noisy)", apply, PSNR against "cells (clean)".

    Also estimates the noise model in the Noise dock. Returns what was measured.
    """
    from qtpy.QtWidgets import QApplication

    from ..classical.metrics import psnr

    def wait(widget: Any, seconds: float = 60.0) -> None:
        end = time.monotonic() + seconds
        while (widget.jobs.running or widget.busy) and time.monotonic() < end:
            QApplication.processEvents()
            time.sleep(0.02)

    widget = docks["Classical denoise"]
    if widget.parentWidget() is not None:
        widget.parentWidget().raise_()
    noisy, clean = viewer.layers["cells (noisy)"], viewer.layers["cells (clean)"]
    widget.set_layer(noisy.name)
    widget.vst.setChecked(True)
    widget.set_method("tv")
    wait(widget)
    widget.auto_tune()
    wait(widget)
    tune = widget.last_tune
    before = set(viewer.layers)
    widget.apply_to_stack()
    wait(widget)
    new = [ly for ly in viewer.layers if ly not in before and ly.name != PREVIEW]
    ref = np.asarray(clean.data)
    data_range = float(ref.max() - ref.min())
    result: dict[str, Any] = {
        "classical": {
            "method": "tv + vst",
            "auto_tune": None if tune is None else {"param": tune.param, "best": tune.best},
            "psnr_noisy": psnr(np.asarray(noisy.data), ref, data_range),
            "psnr_denoised": psnr(np.asarray(new[0].data), ref, data_range) if new else None,
            "layer": new[0].name if new else None,
            "preview_ms": widget.last_preview_ms,
        }
    }
    noise_dock = docks.get("Noise")
    if noise_dock is not None:
        noise_dock.est_layer.setCurrentText(noisy.name)
        fit = noise_dock.estimate()
        if fit is not None:
            result["classical"]["noise"] = {"model": fit.model, "a": fit.a, "b": fit.b}
    viewer.layers.selection.active = new[0] if new else noisy
    return result
