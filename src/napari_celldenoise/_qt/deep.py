"""The "Deep denoise" dock: train N2V / structN2V / PG blind-spot in a child process.

TensorFlow never runs in the napari process (it segfaults beside a viewer on software
OpenGL): training and prediction go to a child (:mod:`napari_celldenoise.jobs.placement`)
and this dock only receives events: progress, a live loss plot, a preview layer per epoch,
the device, and the result layer.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

# the job functions the child processes run: imported with the dock (no TensorFlow in them),
# not on the first click, where importing them held the viewer for 0.1-0.45 s
from ..deep.api import predict, predict_file, train
from ..deep.config import (
    PredictConfig,
    TrainConfig,
    estimate_epoch_seconds,
    resume_config,
    train_config_from_widget,
)
from ..deep.masks import MIN_MASK_CORRELATION
from ..deep.model import ModelFolder
from ..deep.registry import METHODS, get_method
from ..io.layers import layer_axes
from ..jobs import Device, Epoch, Event, Preview, Timing
from ..jobs.placement import place
from .axes_choice import AxesChoice
from .deep_preview import PreviewLayer, is_preview_name
from .extras import missing_extra_label
from .jobs import JobPanel
from .provenance import beside, input_axes, layer_source, spec_metadata
from .scroll import scroll_layout

if TYPE_CHECKING:
    from ..jobs.specs import PredictSpec, TrainSpec

MASK_SIDE = 7


class MaskEditor(QWidget):
    """A 7x7 grid of toggles: the structN2V mask (the centre is the blind spot, always on).

    For a 3D network the mask is a 7x7x7 box edited one Z plane at a time (the "Z offset"
    spin box, shown in 3D only).
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        c = MASK_SIDE // 2
        self.cells = np.zeros((MASK_SIDE,) * 3, bool)
        self.cells[c, c, c] = True
        self.plane = c
        self.three_d = False
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.z_offset = QSpinBox()
        self.z_offset.setRange(-c, c)
        self.z_offset.setPrefix("Z offset ")
        self.z_offset.valueChanged.connect(lambda z: self._show_plane(c + z))
        self.z_offset.setVisible(False)
        outer.addWidget(self.z_offset, 0, Qt.AlignmentFlag.AlignLeft)
        grid = QGridLayout()
        grid.setSpacing(1)
        outer.addLayout(grid)
        self.buttons: list[list[QPushButton]] = []
        for y in range(MASK_SIDE):
            row = []
            for x in range(MASK_SIDE):
                b = QPushButton("")
                b.setCheckable(True)
                b.setFixedSize(18, 18)
                b.setStyleSheet("QPushButton:checked { background: #e08020; }")
                b.toggled.connect(lambda on, y=y, x=x: self._toggled(y, x, on))
                grid.addWidget(b, y, x)
                row.append(b)
            self.buttons.append(row)
        self._show_plane(c)

    def _toggled(self, y: int, x: int, on: bool) -> None:
        self.cells[self.plane, y, x] = on

    def _show_plane(self, plane: int) -> None:
        c = MASK_SIDE // 2
        self.plane = plane
        for y, row in enumerate(self.buttons):
            for x, b in enumerate(row):
                b.blockSignals(True)
                b.setChecked(bool(self.cells[plane, y, x]))
                b.setEnabled((plane, y, x) != (c, c, c))
                b.blockSignals(False)

    def set_three_d(self, on: bool) -> None:
        """Edit a ZYX mask (True) or the centre plane only (False)."""
        self.three_d = bool(on)
        self.z_offset.setVisible(self.three_d)
        if not self.three_d:
            self.z_offset.setValue(0)

    def set_mask(self, mask: Any) -> None:
        """Show ``mask`` (YX or ZYX, odd sides) centred in the grid; ZYX switches to 3D."""
        mask = np.asarray(mask, bool)
        box = mask if mask.ndim == 3 else mask[None]
        c = MASK_SIDE // 2
        self.cells[:] = False
        lo = [c - s // 2 for s in box.shape]
        src = tuple(slice(max(0, -o), min(s, MASK_SIDE - o)) for o, s in zip(lo, box.shape))
        dst = tuple(slice(max(0, o), min(o + s, MASK_SIDE)) for o, s in zip(lo, box.shape))
        self.cells[dst] = box[src]
        self.cells[c, c, c] = True
        self.set_three_d(mask.ndim == 3)
        self._show_plane(self.plane)

    def mask(self) -> list:
        """The smallest odd centred rectangle (3D: box) holding the checked cells."""
        c = MASK_SIDE // 2
        full = self.cells if self.three_d else self.cells[c]
        reach = [int(np.abs(idx - c).max()) for idx in np.nonzero(full)]
        return full[tuple(slice(c - r, c + r + 1) for r in reach)].astype(int).tolist()


class LossPlot(QWidget):
    """Training and validation loss per epoch (matplotlib canvas)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        from matplotlib.ticker import MaxNLocator

        from .figure_thread import ThreadedFigure

        # drawn in a worker thread: the first draw of this figure held the viewer ~1 s here
        self.view = ThreadedFigure((3.2, 2.0), 100, "white")
        self.figure = self.view.figure
        self.figure.set_layout_engine("tight")
        self.axes = self.figure.add_subplot(111)
        (self.loss_line,) = self.axes.plot([], [], "o-", label="loss", ms=3)
        (self.val_line,) = self.axes.plot([], [], "s-", label="val loss", ms=3)
        self.axes.set_xlabel("epoch")
        self.axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # no 1.2
        self._linear_ticks = MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10])
        self.axes.yaxis.set_major_locator(self._linear_ticks)
        self.axes.legend(fontsize=7)
        self.axes.tick_params(labelsize=7)
        self.hint = self.axes.text(
            0.5, 0.5, "losses appear here, epoch by epoch", transform=self.axes.transAxes,
            ha="center", va="center", fontsize=8, color="0.5",
        )  # fmt: skip
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self.setMinimumHeight(160)
        self.clear()

    def clear(self) -> None:
        self.epochs: list[int] = []
        self.loss: list[float] = []
        self.val: list[float] = []
        self.extra: dict[str, list[float]] = {name: [] for name in getattr(self, "lines", {})}
        self._redraw()

    def set_losses(self, names: tuple[str, ...]) -> None:
        """Draw these :attr:`Epoch.metrics` too (a method with several losses, e.g. a GAN's);
        ``loss`` and ``val_loss`` are the epoch's own and always drawn."""
        with self.view.lock:
            for line in getattr(self, "lines", {}).values():
                line.remove()
            self.lines = {
                name: self.axes.plot([], [], ".-", label=name.replace("_", " "), ms=3)[0]
                for name in names
                if name not in ("loss", "val_loss")
            }
            self._legend()
        self.clear()

    def _legend(self) -> None:
        """Two curves: a legend inside; more (a GAN's losses): beside the axes, where it
        covers no curve."""
        if getattr(self, "lines", None):
            self.axes.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                             borderaxespad=0.0, handlelength=1.2)  # fmt: skip
        else:
            self.axes.legend(fontsize=7)

    def add(self, event: Epoch) -> None:
        """Plot one epoch. An epoch already plotted is replaced (with any after it): Stop
        inside epoch 3 sends a partial Epoch 3 (its losses over the batches it ran), and
        Continue trains epoch 3 again, whole."""
        keep = next((i for i, e in enumerate(self.epochs) if e >= event.epoch), len(self.epochs))
        del self.epochs[keep:], self.loss[keep:], self.val[keep:]
        for values in self.extra.values():
            del values[keep:]
        self.epochs.append(event.epoch)
        self.loss.append(event.loss)
        self.val.append(event.val_loss if event.val_loss is not None else np.nan)
        for name, values in self.extra.items():
            values.append(event.metrics.get(name, np.nan))
        self._redraw()

    def _redraw(self) -> None:
        with self.view.lock:  # the worker may be drawing the previous state
            self.loss_line.set_data(self.epochs, self.loss)
            self.val_line.set_data(self.epochs, self.val)
            for name, line in getattr(self, "lines", {}).items():
                line.set_data(self.epochs, self.extra.get(name, []))
            empty = not self.epochs
            # no made-up axis values (matplotlib's -0.05..0.05) before the first epoch
            self.hint.set_visible(empty)
            self.axes.tick_params(labelleft=not empty, labelbottom=not empty)
            if not empty:
                self.axes.set_xlim(min(self.epochs) - 0.5, max(self.epochs) + 0.5)
                series = (self.loss, self.val, *self.extra.values())
                log = bool(self.extra) and spans_decades(*series)
                self.axes.set_yscale("log" if log else "linear")
                if not log:
                    self.axes.yaxis.set_major_locator(self._linear_ticks)
                self.axes.set_ylim(*loss_limits(*series, log=log))
        self.view.render()


def spans_decades(*series: list[float], decades: float = 2.0) -> bool:
    """Whether the positive finite losses span more than ``decades`` powers of ten (a GAN's
    total against its discriminator's): a linear axis would flatten the small ones to 0."""
    values = np.concatenate([np.asarray(s, dtype=float) for s in series])
    values = values[np.isfinite(values) & (values > 0)]
    return values.size > 1 and float(np.log10(values.max() / values.min())) > decades


def loss_limits(*series: list[float], log: bool = False) -> tuple[float, float]:
    """Y limits that hold every finite loss with room for its marker (``log``: the positive
    ones, a fifth of a decade of room each side).

    Matplotlib's autoscale gives one point (or a flat run) a range of +-5 % around it with
    ticks like 0.945 ... 1.05; here a flat run gets +-25 % of its value instead, and a
    varying one 8 % of its span on each side, so no marker is clipped at an edge."""
    values = np.concatenate([np.asarray(s, dtype=float) for s in series])
    values = values[np.isfinite(values) & ((values > 0) if log else True)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    if log:
        return lo / 10**0.2, hi * 10**0.2
    scale = max(abs(lo), abs(hi))
    if hi - lo <= 0.05 * scale:
        pad = 0.25 * scale if scale > 0 else 1.0
        return lo - pad, hi + pad
    pad = 0.08 * (hi - lo)
    return lo - pad, hi + pad


class DeepDenoiseWidget(QWidget):
    """Train, stop, continue and predict with a self-supervised denoiser."""

    def __init__(self, napari_viewer: Any):
        super().__init__()
        self.viewer = napari_viewer
        self.layer_combo = QComboBox()
        self.method = QComboBox()
        for m in METHODS.values():
            self.method.addItem(m.title, m.name)
            self.method.setItemData(self.method.count() - 1, m.summary, Qt.ItemDataRole.ToolTipRole)
        self.epochs = _spin(1, 10_000, 20)
        self.steps = _spin(1, 100_000, 100)
        self.patch = _spin(16, 512, 64, step=16)
        self.batch = _spin(1, 1024, 16)
        self.folder = QLineEdit(str(Path(tempfile.gettempdir()) / "celldenoise-model"))
        browse = QPushButton("…")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        self.val_combo = QComboBox()
        self.val_combo.setToolTip(
            "validation patches: a random 10 % of the patches, or those inside the first "
            "rectangle of a Shapes layer (training patches then come from outside it)"
        )
        self.tta = QCheckBox("test-time adaptation (PG)")
        self.tta.setChecked(True)
        self.tta_steps = _spin(1, 10_000, PredictConfig.model_fields["tta_steps"].default)
        self.tta_steps.setToolTip(
            "fine-tuning batches on the image being denoised: on FMD 200 and 400 added 0.06 "
            "and 0.14 dB to 100, for twice and four times the time"
        )
        self.tta.toggled.connect(self.tta_steps.setEnabled)
        tta_row = QHBoxLayout()
        tta_row.addWidget(self.tta)
        tta_row.addWidget(QLabel("steps:"))
        tta_row.addWidget(self.tta_steps)
        tta_row.addStretch(1)
        self.tta_box = QWidget()
        self.tta_box.setLayout(tta_row)
        tta_row.setContentsMargins(0, 0, 0, 0)
        self.ensemble = QCheckBox("average 8 flips/rotations (8x slower)")
        self.ensemble.setToolTip(
            "geometric self-ensemble: on FMD it helped PG (+0.1 to +0.2 dB) and cost N2V "
            "0.3 dB, whose noise there is correlated along rows: compare on your data"
        )
        self.target_combo = QComboBox()
        self.target_combo.setToolTip(
            "CycleGAN's clean domain: synthetic targets made from a clean (simulated) image of "
            "the crystal, any zoom and rotation, or from the lattice and motif measured on the "
            "noisy image (auto)"
        )
        self.target_box = QWidget()
        target_row = QHBoxLayout(self.target_box)
        target_row.setContentsMargins(0, 0, 0, 0)
        target_row.addWidget(QLabel("clean target:"))
        target_row.addWidget(self.target_combo, 1)
        self.gan_box = _gan_settings()
        self.three_d = QCheckBox("3D network (ZYX patches; else Z slices as images)")
        self.three_d.toggled.connect(self._dims_changed)

        self.axes_choice = AxesChoice()
        self.axes_choice.time.setToolTip(
            "The layer does not name its axes, so its first axis is read as Z (slices; a 3D "
            "network can train on them). Tick this for a time series: frames are then "
            "trained on and denoised as separate images."
        )
        form = QFormLayout()
        form.addRow("image:", self.layer_combo)
        form.addRow("", self.axes_choice)
        form.addRow("method:", self.method)
        form.addRow("epochs:", self.epochs)
        form.addRow("steps/epoch:", self.steps)
        form.addRow("patch:", self.patch)
        form.addRow("batch:", self.batch)
        form.addRow("validation:", self.val_combo)
        form.addRow("model folder:", folder_row)

        self.mask_box = QWidget()
        mask_layout = QVBoxLayout(self.mask_box)
        mask_layout.setContentsMargins(0, 0, 0, 0)
        mask_layout.addWidget(QLabel("structN2V mask (click to edit):"))
        self.mask_editor = MaskEditor()
        mask_layout.addWidget(self.mask_editor, 0, Qt.AlignmentFlag.AlignLeft)
        self.propose_button = QPushButton("Propose mask from the noise")
        self.propose_button.setToolTip(
            "autocorrelation of the noise in a drawn rectangle (a Shapes layer named "
            "'noise region'), else in the flattest parts of the image; hides the neighbours "
            f"correlated above {MIN_MASK_CORRELATION} (weaker correlation costs less than "
            "hiding them)"
        )
        self.propose_button.clicked.connect(self.propose_mask)
        mask_layout.addWidget(self.propose_button)

        self.device = QLabel("device: shown when training starts (GPU if present, else CPU)")
        self.device.setWordWrap(True)
        self.estimate = QLabel("")
        self.train_button = QPushButton("Train")
        self.continue_button = QPushButton("Continue")
        self.predict_button = QPushButton("Denoise")
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip(
            "save the model folder (N2V, structN2V) as a BioImage Model Zoo package (.zip), "
            "checked by bioimage.io's own test inference"
        )
        self.export_button.clicked.connect(lambda: self.start_export())
        self.train_button.clicked.connect(lambda: self.start_training(resume=False))
        self.continue_button.clicked.connect(lambda: self.start_training(resume=True))
        self.predict_button.clicked.connect(self.start_predict)
        buttons = QHBoxLayout()
        for b in (self.train_button, self.continue_button, self.predict_button, self.export_button):
            buttons.addWidget(b)
        self.panel = JobPanel()
        self.panel.cancel_button.setText("Stop")
        self.panel.started.connect(lambda: self._busy(True))
        self.panel.finished.connect(lambda: self._busy(False))
        self.preview = PreviewLayer(self.viewer)
        self.panel.finished.connect(self.preview.finish)
        self.plot = LossPlot()

        layout = scroll_layout(self)
        layout.addLayout(form)
        layout.addWidget(self.three_d)
        layout.addWidget(self.mask_box)
        layout.addWidget(self.target_box)
        if self.gan_box is not None:
            layout.addWidget(self.gan_box)
        layout.addWidget(self.tta_box)
        layout.addWidget(self.ensemble)
        layout.addWidget(self.estimate)
        layout.addWidget(self.device)
        layout.addLayout(buttons)
        layout.addWidget(self.panel)
        layout.addWidget(self.plot)
        layout.addStretch(1)
        # -- remote training (where: this computer / Cloud TPU VM / Colab): _qt/deep_remote.py
        from .deep_remote import RemoteTraining

        self.remote = RemoteTraining(self)
        layout.insertWidget(1, self.remote)
        QTimer.singleShot(0, self.remote.reattach)  # follow the job running at the last close
        # -- end remote training
        actions = (self.train_button, self.continue_button, self.predict_button, self.export_button)
        self.missing_extra = missing_extra_label("deep", disable=actions)
        if self.missing_extra is not None:  # said when the dock opens, not when a job fails
            layout.insertWidget(0, self.missing_extra)

        self.last_info: Any = None
        self.last_result: Any = None
        self.epoch_events: list[Epoch] = []
        # the specs of the trainings (Train, then each Continue) of a model folder, by folder:
        # a result layer denoised with that folder records them (None: one was not a file's)
        self.training_specs: dict[str, list[TrainSpec] | None] = {}
        # (folder, spec) of the training in progress: recorded once it ends with a model
        self._pending_spec: tuple[str, TrainSpec | None] | None = None
        # the time per epoch measured in the last training, and the settings it holds for
        self._measured: tuple[dict[str, Any], str] | None = None
        for w in (self.epochs, self.steps, self.patch, self.batch):
            w.valueChanged.connect(self._update_estimate)
        self.method.currentIndexChanged.connect(lambda _: self._method_changed(self.method_name()))
        self.layer_combo.currentTextChanged.connect(self._layer_changed)
        self.axes_choice.changed.connect(self._dims_changed)
        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self._refresh_layers()
        self._layer_changed()
        self._method_changed(self.method_name())

    # ------------------------------------------------------------------ state
    def _refresh_layers(self, event: Any = None) -> None:
        from napari.layers import Image

        current = self.layer_combo.currentText()
        names = [
            layer.name
            for layer in self.viewer.layers
            if isinstance(layer, Image)
            and not layer.name.endswith(("(denoised)", "autocorrelation"))
            and not is_preview_name(layer.name)
        ]
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        if current in names:
            self.layer_combo.setCurrentText(current)
        self.layer_combo.blockSignals(False)
        self._layer_changed()
        from napari.layers import Shapes

        target = self.target_combo.currentText()
        self.target_combo.blockSignals(True)
        self.target_combo.clear()
        self.target_combo.addItem(AUTO_TARGET)
        self.target_combo.addItems(names)
        if target in names:
            self.target_combo.setCurrentText(target)
        self.target_combo.blockSignals(False)
        chosen = self.val_combo.currentText()
        shapes = [layer.name for layer in self.viewer.layers if isinstance(layer, Shapes)]
        self.val_combo.blockSignals(True)
        self.val_combo.clear()
        self.val_combo.addItem(RANDOM_SPLIT)
        self.val_combo.addItems(shapes)
        if chosen in shapes:
            self.val_combo.setCurrentText(chosen)
        self.val_combo.blockSignals(False)

    def method_name(self) -> str:
        """The chosen method's registry name."""
        return self.method.currentData() or self.method.currentText()

    def set_method(self, name: str) -> None:
        """Choose the method registered as ``name``."""
        self.method.setCurrentIndex(self.method.findData(get_method(name).name))

    def _method_changed(self, method: str) -> None:
        chosen = get_method(method)
        options = chosen.dock
        self.mask_box.setVisible("mask" in options)
        self.tta_box.setVisible("tta" in options)
        self.target_box.setVisible("reference" in chosen.optional_inputs)
        if self.gan_box is not None:
            self.gan_box.setVisible("gan" in options)
        # a method with other patch and batch defaults (CycleGAN: 256, 1) brings its own; the
        # user's values stay between methods that share them
        defaults = _patch_and_batch(method)
        if defaults != _patch_and_batch(getattr(self, "_last_method", method)):
            self.patch.setValue(defaults[0])
            self.batch.setValue(defaults[1])
        self._last_method = method
        self._dims_changed()

    def _layer_changed(self, *_: Any) -> None:
        self.axes_choice.set_layer(self.selected_layer())
        self._dims_changed()

    def axes(self, layer: Any) -> str:
        """The axes this dock reads ``layer`` with (see :class:`.AxesChoice`)."""
        return self.axes_choice.axes(layer)

    def is_3d(self) -> bool:
        """A 3D network: chosen, the layer has a Z axis, and the method has a 3D network."""
        layer = self.selected_layer()
        has_z = layer is not None and "Z" in self.axes(layer)
        possible = has_z and get_method(self.method_name()).three_d
        self.three_d.setVisible(possible)
        return possible and self.three_d.isChecked()

    def _dims_changed(self, *_: Any) -> None:
        self.mask_editor.set_three_d(self.is_3d())
        self._update_estimate()

    def _busy(self, busy: bool) -> None:
        for b in (self.train_button, self.continue_button, self.predict_button, self.export_button):
            b.setEnabled(not busy and self.missing_extra is None)

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Model folder", self.folder.text())
        if path:
            self.folder.setText(path)

    def values(self) -> dict[str, Any]:
        """The widget values, named as :class:`TrainConfig` fields."""
        return {
            "method": self.method_name(),
            "epochs": self.epochs.value(),
            "steps": self.steps.value(),
            "patch": self.patch.value(),
            "batch": self.batch.value(),
            "mask": self.mask_editor.mask() if self.mask_box.isVisibleTo(self) else None,
            "dims": 3 if self.is_3d() else 2,
            "val_region": self.validation_region(),
            **({"target": self._target()[0]} if self.target_box.isVisibleTo(self) else {}),
            **self.gan_values(),
        }

    def gan_values(self) -> dict[str, Any]:
        """The CycleGAN settings group's values (none when the method has no such group)."""
        box = self.gan_box
        return box.values() if box is not None and box.isVisibleTo(self) else {}

    def _target(self) -> tuple[str, dict[str, Any]]:
        """CycleGAN's ``target`` setting and the extra images it trains on."""
        name = self.target_combo.currentText()
        if name == AUTO_TARGET or name not in self.viewer.layers:
            return "auto", {}
        return "reference", {"reference": np.asarray(self.viewer.layers[name].data)}

    def validation_region(self) -> list[list[int]] | None:
        """The chosen Shapes layer's first rectangle in the image's YX pixels (None: random)."""
        name = self.val_combo.currentText()
        layer = self.selected_layer()
        if name == RANDOM_SPLIT or not name or name not in self.viewer.layers or layer is None:
            return None
        region = shape_region(self.viewer.layers[name], layer)
        return (
            [[region[0].start, region[0].stop], [region[1].start, region[1].stop]]
            if region
            else None
        )

    def config(self) -> TrainConfig:
        return train_config_from_widget(self.values())

    def predict_config(self) -> PredictConfig:
        return PredictConfig(
            tta=self.tta.isChecked(),
            tta_steps=self.tta_steps.value(),
            ensemble=self.ensemble.isChecked(),
        )

    def _resume_config(self, folder: str) -> TrainConfig:
        """The folder's architecture (method, mask, dims...) and this run's epochs/steps/batch
        and loss settings (the CycleGAN group: its architecture ones stay the folder's)."""

        saved = ModelFolder(folder).read_info().train
        run = {
            "epochs": self.epochs.value(),
            "steps": self.steps.value(),
            "batch": self.batch.value(),
            **(self.gan_values() if saved.method == self.method_name() else {}),
        }
        return resume_config(saved, run)

    def _update_estimate(self, *_: Any) -> None:
        try:
            config = self.config()
        except ValueError as exc:
            self.estimate.setText(f"⚠ {_message(exc)}")
            return
        if self._measured is not None and self._measured[0] == _timing_key(config):
            self.estimate.setText(self._measured[1])  # still the settings it was measured on
            return
        seconds = estimate_epoch_seconds(config)
        rough = f"{seconds:.2g} s" if seconds < 90 else f"{seconds / 60:.2g} min"
        self.estimate.setText(f"≈ {rough} per epoch on this CPU (before measuring)")

    def selected_layer(self) -> Any:
        name = self.layer_combo.currentText()
        if not name or name not in self.viewer.layers:
            return None
        return self.viewer.layers[name]

    # --------------------------------------------------------------- actions
    def propose_mask(self) -> None:
        """Autocorrelation of the noise -> proposed mask in the editor, shown as a layer."""
        from ..deep.masks import mask_from_data

        layer = self.selected_layer()
        if layer is None:
            show_info("Select an image layer first.")
            return
        region = None
        if "noise region" in self.viewer.layers:
            region = shape_region(self.viewer.layers["noise region"], layer)
        try:
            dims = 3 if self.is_3d() else 2
            proposal = mask_from_data(
                np.asarray(layer.data), self.axes(layer), region=region, dims=dims
            )
        except ValueError as exc:
            show_error(str(exc))
            return
        self.mask_editor.set_mask(proposal.mask)
        name = "noise autocorrelation"
        if name in self.viewer.layers:
            self.viewer.layers[name].data = proposal.autocorrelation
        else:
            # lags are in pixels of the source: give them its physical size and units
            n = proposal.autocorrelation.ndim
            geometry = {"scale": tuple(layer.scale)[-n:], "units": tuple(layer.units)[-n:]}
            self.viewer.add_image(
                proposal.autocorrelation, name=name, colormap="magma", visible=False, **geometry
            )
        show_info(proposal.describe())

    def start_training(self, *, resume: bool = False) -> Any:
        """Train (or continue) in a child process; returns the worker (None if refused)."""

        self._pending_spec = None
        layer = self.selected_layer()
        if layer is None:
            show_error("Select an image layer to train on.")
            return None
        folder = self.folder.text().strip()
        if not folder:
            show_error("Choose a model folder.")
            return None
        try:
            config = self._resume_config(folder) if resume else self.config()
        except ValueError as exc:
            show_error(f"Invalid settings: {_message(exc)}")
            return None
        data = np.asarray(layer.data)
        axes = self.axes(layer)
        if not resume and ModelFolder(folder).is_taken():
            show_error(f"{folder} is not empty: choose a new folder, or press Continue")
            return None
        if self.remote.is_remote() and not resume:  # remote training: _qt/deep_remote.py
            return self.remote.start_training(layer, config)
        if not resume:
            self.plot.set_losses(get_method(config.method).losses)
        self.epoch_events = []
        self._source_layer = layer
        self._training_config = config

        extra = self._target()[1] if "target" in type(config).model_fields else {}
        self._pending_spec = (folder, self.train_spec_for(layer, axes, folder, config, resume))

        def factory(should_stop):
            return place(
                "train", train, data, axes, config, folder, resume=resume, extra=extra,
                should_stop=should_stop,
            )  # fmt: skip

        # the preview's layer, made on this click: adding a layer stalls the viewer (see
        # .deep_preview); before the child starts, it has the CPU to itself
        self.preview.prepare(layer, axes, config.method, config.patch_shape)
        worker = self.panel.start(
            factory,
            on_event=self._on_train_event,
            on_done=self._train_done,
            label="starting TensorFlow in a child process",
        )
        if worker is None:  # refused: another job runs
            self.preview.finish()
        return worker

    def _on_train_event(self, event: Event) -> None:
        if isinstance(event, Epoch):
            self.epoch_events.append(event)
            self.plot.add(event)
            eta = f", {event.eta_seconds:.0f} s left" if event.eta_seconds else ""
            self.panel.status.setText(
                f"epoch {event.epoch}: loss {event.loss:.4g}"
                + (f", val {event.val_loss:.4g}" if event.val_loss is not None else "")
                + f" ({event.seconds:.1f} s{eta})"
            )
        elif isinstance(event, Preview):
            self._show_preview(event)
        elif isinstance(event, Device):
            self._device_note = event.note
            self._show_device(event.description)
        elif isinstance(event, Timing):
            per = event.seconds_per_batch
            text = (
                f"measured: about {per * event.batches_per_epoch:.0f} s per epoch "
                f"({per:.2f} s per batch)"
            )
            self._measured = (_timing_key(self._training_config), text)
            self.estimate.setText(text)

    def _show_preview(self, event: Preview) -> None:
        """The denoised validation patch, over the place in the image it was cut from.

        Its name says where (``origin`` in the event's metadata); it keeps the source's
        scale, and its contrast limits (the same intensity units), so that it neither
        saturates when later epochs widen its range nor hides the image's corner. The layer
        is the one the click on Train made (:mod:`.deep_preview`).
        """
        src = getattr(self, "_source_layer", None)
        self.preview.show(event, src, self.axes(src) if src is not None else "")

    def _train_done(self, info: Any) -> None:
        self.last_info = info
        self._update_estimate()  # the measured time, while the settings stay those trained
        if info is not None:
            if self._pending_spec is not None:  # a stopped training's model too
                self._record_training(*self._pending_spec)
            self._pending_spec = None
            self._show_device(info.device)
            show_info(f"model saved in {self.folder.text()} ({info.epochs_done} epochs)")

    def _show_device(self, description: str) -> None:
        """The device line, with why a GPU this machine has is not used, when it is not."""
        note = getattr(self, "_device_note", "")
        self.device.setText(f"device: {description}" + (f"\n{note}" if note else ""))

    def start_predict(self) -> Any:
        """Denoise the selected layer with the model folder (child process)."""

        layer = self.selected_layer()
        if layer is None:
            show_error("Select an image layer to denoise.")
            return None
        axes, folder = self.axes(layer), self.folder.text().strip()
        config = self.predict_config()
        self._source_layer = layer
        self._predict_spec = self.predict_spec_for(layer, axes, folder, config)
        if hasattr(layer.data, "dask"):
            return self._predict_lazy(layer, axes, folder, config)
        data = np.asarray(layer.data)

        def factory(should_stop):
            return place("predict", predict, folder, data, axes, config, should_stop=should_stop)

        return self.panel.start(factory, on_done=self._predict_done, label="denoising")

    def train_spec_for(
        self, layer: Any, axes: str, folder: str, config: TrainConfig, resume: bool = False
    ) -> TrainSpec | None:
        """The spec of this Train (or Continue) of ``layer`` from its file into ``folder``
        (None: the layer, or the clean reference it trains towards, has no file)."""
        from ..jobs.specs import train_spec

        path, channel = layer_source(layer)
        if path is None or not folder:
            return None
        extra = {}
        if getattr(config, "target", None) == "reference":
            ref = self.viewer.layers[self.target_combo.currentText()]
            extra["reference"] = layer_source(ref)[0]
            if extra["reference"] is None:
                return None
        axes_given = input_axes(layer, axes)
        return train_spec(
            path, folder, config, axes=axes_given, channel=channel, resume=resume, extra=extra
        )

    def _record_training(self, folder: str, spec: TrainSpec | None) -> None:
        """Train starts a folder's list of specs, Continue adds to it; one without a spec
        leaves the folder none (its trainings can no longer be replayed)."""
        specs = self.training_specs.get(folder) if spec is not None and spec.resume else []
        self.training_specs[folder] = None if spec is None or specs is None else [*specs, spec]

    def predict_spec_for(
        self, layer: Any, axes: str, folder: str, config: PredictConfig
    ) -> PredictSpec | None:
        """The spec that makes Denoise of ``layer`` from its file (None: no file)."""
        from ..jobs.specs import predict_spec

        path, channel = layer_source(layer)
        if path is None or not folder:
            return None
        output = beside(path, "_denoised.ome.tif")
        axes_given = input_axes(layer, axes)
        return predict_spec(folder, path, output, config, axes=axes_given, channel=channel)

    def _predict_lazy(self, layer: Any, axes: str, folder: str, config: PredictConfig) -> Any:
        """A lazy layer: the child reopens its file and predicts into a memory-mapped .npy."""

        path = getattr(layer.source, "path", None)
        if not path:
            show_error("This lazy layer has no file to stream from: save it first.")
            return None
        scratch = tempfile.mkdtemp(prefix="celldenoise-predict-")
        # the result layer maps this file: it lives until napari exits, then goes
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        out = str(Path(scratch) / "denoised.npy")
        shape = tuple(layer.data.shape)

        def factory(should_stop):
            return place(
                "predict", predict_file, folder, path, shape, axes, config, out=out,
                should_stop=should_stop,
            )  # fmt: skip

        return self.panel.start(
            factory,
            on_done=lambda stored: self._predict_done(stored.open() if stored else None),
            label="denoising tile by tile (lazy layer)",
        )

    def start_export(self, path: str | None = None) -> Any:
        """Export the model folder to a bioimage.io zip (two child processes: export, check)."""
        from ..deep.export import export_and_check

        folder = self.folder.text().strip()
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "BioImage Model Zoo package", str(Path(folder).with_suffix(".zip")),
                "bioimage.io package (*.zip)",
            )  # fmt: skip
            if not path:
                return None
        kwargs: dict[str, Any] = {}
        layer = self.selected_layer()
        if layer is not None:
            kwargs = {"image": _test_crop(layer), "axes": self.axes(layer)}

        def factory(should_stop):
            return export_and_check(folder, path, overwrite=True, should_stop=should_stop, **kwargs)

        return self.panel.start(factory, on_done=self._export_done, label="exporting")

    def _export_done(self, result: Any) -> None:
        if result is not None:
            self.last_export = result
            show_info(f"exported {result[0]} ({result[1].splitlines()[0]})")

    def _predict_done(self, result: Any) -> None:
        if result is None:
            return
        self.last_result = result
        src = self._source_layer
        name = f"{src.name} (denoised)"
        kwargs = {
            "scale": src.scale,
            "translate": src.translate,
            "contrast_limits": src.contrast_limits,
            "metadata": self._result_metadata(),
        }
        for key in ("units", "axis_labels"):
            if hasattr(src, key):
                kwargs[key] = getattr(src, key)
        if name in self.viewer.layers:
            self.viewer.layers[name].data = result
            self.viewer.layers[name].metadata = kwargs["metadata"]
        else:
            self.viewer.add_image(result, name=name, **kwargs)

    def _result_metadata(self) -> dict[str, Any]:
        """The result layer's provenance: its predict spec, the model folder and the specs of
        the trainings that made the folder in this dock (``training``: Train, Continue...)."""
        folder = self.folder.text().strip()
        record: dict[str, Any] = {"model": folder}
        specs = self.training_specs.get(folder)
        if specs:
            record["training"] = [spec.to_dict() for spec in specs]
        return spec_metadata(self._predict_spec, **record)


RANDOM_SPLIT = "random split"


def _gan_settings() -> Any:
    """The folded settings group of the (first) method whose dock options name ``"gan"``."""
    from .deep_gan import GanSettings

    gan = next((m for m in METHODS.values() if "gan" in m.dock), None)
    if gan is None:
        return None
    shown = {"patch", "batch", "epochs", "steps", "target", "dims", "val_region", "mask"}
    return GanSettings(gan.config, shown=shown, title=f"{gan.name} settings")


def _patch_and_batch(method: str) -> tuple[int, int]:
    fields = get_method(method).config.model_fields
    return fields["patch"].default, fields["batch"].default


AUTO_TARGET = "auto (from the measured lattice)"


def _timing_key(config: TrainConfig) -> dict[str, Any]:
    """What an epoch's time depends on: every setting but the number of epochs."""
    return config.model_dump(exclude={"epochs", "version"})


def shape_region(shapes: Any, layer: Any) -> tuple[slice, slice] | None:
    """The first shape's bounding box in ``layer``'s YX pixels (world coordinates between)."""
    if not len(shapes.data):
        return None
    vertices = np.asarray(shapes.data[0])
    world = np.array([shapes.data_to_world(v) for v in vertices])
    pixels = np.array([layer.world_to_data(w) for w in world])[:, -2:]
    y0, x0 = np.floor(pixels.min(axis=0)).astype(int)
    y1, x1 = np.ceil(pixels.max(axis=0)).astype(int)
    return slice(max(int(y0), 0), int(y1)), slice(max(int(x0), 0), int(x1))


def _test_crop(layer: Any) -> np.ndarray:
    """A small numpy crop of the layer for the export's test input (lazy layers included)."""
    data = layer.data
    window = tuple(slice(max(0, n // 2 - 128), n // 2 + 128) for n in data.shape)
    return np.asarray(data[window], np.float32)


def _message(exc: Exception) -> str:
    from pydantic import ValidationError

    from ..config import format_validation_error

    return format_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)


def _spin(lo: int, hi: int, value: int, step: int = 1) -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setSingleStep(step)
    s.setValue(value)
    return s


def training_finished(widget: DeepDenoiseWidget) -> bool:
    """Whether the dock's job has ended (for scripts and the demo)."""
    return not widget.panel.running


__all__ = ["DeepDenoiseWidget", "LossPlot", "MaskEditor", "layer_axes"]
