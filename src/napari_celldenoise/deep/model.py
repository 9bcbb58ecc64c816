"""Model folders: everything needed to predict, continue training and inspect a trained network.

A model folder holds

- ``celldenoise.yaml``: :class:`ModelInfo` (the training config, data axes, normalisation,
  epochs trained, best validation loss, the context a tile needs); its presence is what makes a
  folder a model folder,
- ``weights_best.h5`` and ``weights_last.h5``: Keras weights at the best validation loss and
  at the end of the last epoch (kept when training is stopped),
- ``optimizer_last.npz``: the optimizer's state (Adam's step count and moments) beside the last
  weights, so that Continue goes on where the run stopped instead of from fresh moments,
- ``noise.yaml``: Poisson-Gaussian noise ``var = max(a * mean + b, floor)`` in image units,
- ``history.json``: one record per epoch, ``thumbnail.png``: the last validation preview,
- ``sample.npy``: a raw validation patch (the export's test input),
- ``n2v_config.json`` for N2V / structN2V models (n2v's own network description),
- ``calibration.json``: the output line fitted to each weights file (:mod:`.calibration`).

Every file is written atomically. Every file is read safely: YAML with ``safe_load``, JSON, ``.npz``
without pickles, Keras weights only into a network this package builds (never a saved
architecture). :meth:`ModelFolder.read_info` checks the files a prediction reads (and
:func:`prepare_new_folder` those a continued training reads) before any work starts: a folder of
another tool, a damaged or missing file gives one :class:`ModelFolderError` naming it.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import Field

from ..atomic import atomic_path, atomic_write
from ..config import Config, ConfigError
from .calibration import CALIBRATION
from .config import TrainConfig

INFO = "celldenoise.yaml"
BEST, LAST = "weights_best.h5", "weights_last.h5"
NOISE, HISTORY, THUMBNAIL = "noise.yaml", "history.json", "thumbnail.png"
N2V_CONFIG = "n2v_config.json"
OPTIMIZER = "optimizer_last.npz"
SAMPLE = "sample.npy"
"""A raw validation patch saved in the model folder at training (the export's test input)."""
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class ModelFolderError(ValueError):
    """The folder is not a (complete) model folder; the message says what is missing."""


class ModelInfo(Config):
    """What a model folder's ``celldenoise.yaml`` records."""

    train: TrainConfig
    axes: str = Field(description="axes of the training data, e.g. TYX")
    mean: float = 0.0
    std: float = Field(default=1.0, gt=0)
    epochs_done: int = Field(default=0, ge=0)
    best_val_loss: float | None = None
    overlap: int = Field(default=32, ge=0, description="context each tile needs (pixels)")
    device: str = ""


class ModelFolder:
    """Paths and readers/writers of one model folder."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"ModelFolder({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    def exists(self) -> bool:
        return self.file(INFO).is_file()

    def is_unfinished_start(self) -> bool:
        """A model folder that no epoch finished in: its info file but no weights."""
        return self.exists() and not self.has_weights()

    def is_taken(self) -> bool:
        """A new training may not use this path: it holds files other than a killed start's."""
        if not self.path.exists() or self.is_unfinished_start():
            return False
        return not self.path.is_dir() or any(self.path.iterdir())

    def clear(self) -> None:
        """Remove the files a training start wrote (the folder itself stays)."""
        for entry in self.path.iterdir():
            if entry.is_file() or entry.is_symlink():
                entry.unlink()

    # ------------------------------------------------------------------ info
    def read_info(self) -> ModelInfo:
        """The folder's :class:`ModelInfo`, after checking the files a prediction reads."""
        if self.path.is_file():
            raise ModelFolderError(f"{self.path}: {_foreign_file(self.path)}")
        if not self.path.is_dir():
            raise ModelFolderError(f"{self.path}: no such model folder")
        if not self.exists():
            foreign = _foreign_folder(self.path)
            like = f"; it looks like {foreign}" if foreign else ""
            raise ModelFolderError(
                f"{self.path}: not a model folder (no {INFO}{like}); train one with "
                "`celldenoise train`"
            )
        try:
            info = ModelInfo.from_yaml(self.file(INFO))
        except ConfigError as exc:
            raise ModelFolderError(str(exc)) from None
        self._check_side_files(info)
        return info

    def _check_side_files(self, info: ModelInfo) -> None:
        """Parse the small files prediction needs, so a damaged one is reported up front."""
        if self.file(NOISE).is_file() or (getattr(info.train, "vst", False) and self.has_weights()):
            if self.read_noise() is None:
                raise ModelFolderError(f"{self.path}: a vst model without {NOISE}")
        from .registry import method_of

        if self.has_weights():
            for name in method_of(info.train).side_files:
                if not isinstance(self.read_json(name), dict):
                    raise ModelFolderError(f"{self.file(name)}: not a network description")
        if self.file(CALIBRATION).is_file():
            lines = self.read_json(CALIBRATION)
            if not (isinstance(lines, dict) and all(_is_line(v) for v in lines.values())):
                raise ModelFolderError(f"{self.file(CALIBRATION)}: not output calibration lines")

    def write_info(self, info: ModelInfo) -> None:
        info.to_yaml(self.file(INFO))

    def has_weights(self) -> bool:
        return self.file(BEST).is_file() or self.file(LAST).is_file()

    def weights(self, which: str = "best") -> Path:
        """Path of the best (falls back to last) or last weights; raises when none exist.

        The file must be a complete HDF5 file (its signature, and HDF5's own end-of-file
        check, which catches a truncated copy) before TensorFlow is started for it.
        """
        order = [BEST, LAST] if which == "best" else [LAST, BEST]
        for name in order:
            if self.file(name).is_file():
                check_weights_file(self.file(name))
                return self.file(name)
        raise ModelFolderError(f"{self.path}: no trained weights ({BEST} or {LAST}) in the folder")

    def save_weights(self, keras_model: Any, which: str) -> Path:
        """Write the best or last weights; the output line fitted to the old file is dropped
        (the others stay, so a continued run that dies keeps the untouched file's line)."""
        target = self.file(BEST if which == "best" else LAST)
        lines = self.read_json(CALIBRATION) if self.file(CALIBRATION).is_file() else {}
        if target.name in lines:
            del lines[target.name]
            self.write_json(CALIBRATION, lines)
        with atomic_path(target, overwrite=True) as tmp:
            keras_model.save_weights(str(tmp), save_format="h5")
        return target

    def save_optimizer(self, optimizer: Any) -> None:
        """Keep the optimizer's variables (step count, moments) beside the last weights."""
        values = {f"v{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)}
        with atomic_path(self.file(OPTIMIZER), overwrite=True) as tmp, open(tmp, "wb") as out:
            np.savez(out, **values)

    def restore_optimizer(self, keras_model: Any) -> str:
        """Load the saved optimizer state into ``keras_model``'s optimizer; says what it did.

        Folders from before the state was kept, or whose state does not fit the network,
        continue with fresh moments (the message says so).
        """
        if not self.file(OPTIMIZER).is_file():
            return "no saved optimizer state: continuing with fresh Adam moments"
        optimizer = keras_model.optimizer
        optimizer.build(keras_model.trainable_variables)
        try:
            with np.load(self.file(OPTIMIZER), allow_pickle=False) as saved:
                values = [saved[name] for name in sorted(saved.files)]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            return f"{OPTIMIZER} is damaged: continuing with fresh Adam moments"
        variables = list(optimizer.variables)
        if len(values) != len(variables) or any(
            tuple(v.shape) != w.shape for v, w in zip(variables, values)
        ):
            return "saved optimizer state does not fit the network: fresh Adam moments"
        for v, w in zip(variables, values):
            v.assign(w)
        return f"optimizer state restored (after {int(optimizer.iterations.numpy())} steps)"

    # ------------------------------------------------------------------ noise
    def read_noise(self) -> dict[str, float] | None:
        """``{"a", "b"[, "floor"]}`` from ``noise.yaml``, None when absent; damaged: an error."""
        path = self.file(NOISE)
        if not path.is_file():
            return None
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            values = {str(k): float(v) for k, v in raw.items()}
        except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError, TypeError, ValueError):
            raise ModelFolderError(
                f"{path}: damaged noise parameters (not a YAML mapping of numbers)"
            ) from None
        if not {"a", "b"} <= set(values) or not all(math.isfinite(v) for v in values.values()):
            raise ModelFolderError(f"{path}: damaged noise parameters (needs finite a and b)")
        return values

    def write_noise(self, a: float, b: float, *, floor: float | None = None) -> None:
        values = {"a": float(a), "b": float(b)}
        if floor is not None:
            values["floor"] = float(floor)
        text = yaml.safe_dump(values, sort_keys=False)
        atomic_write(self.file(NOISE), text.encode(), overwrite=True)

    # ---------------------------------------------------------------- history
    def read_history(self) -> list[dict[str, Any]]:
        """One record per finished epoch; ``[]`` when absent; damaged: an error."""
        if not self.file(HISTORY).is_file():
            return []
        history = self.read_json(HISTORY)
        if not (isinstance(history, list) and all(isinstance(r, dict) for r in history)):
            raise ModelFolderError(
                f"{self.file(HISTORY)}: not a training history (a list of epochs)"
            )
        return history

    def write_history(self, history: list[dict[str, Any]]) -> None:
        atomic_write(self.file(HISTORY), json.dumps(history, indent=1).encode(), overwrite=True)

    def write_thumbnail(self, image: np.ndarray) -> None:
        """Save a 2D preview as an 8-bit PNG (1-99.5 percentile stretch)."""
        import cv2

        img = np.asarray(image, np.float32)
        while img.ndim > 2:
            img = img[img.shape[0] // 2]
        lo, hi = np.percentile(img, [1, 99.5])
        u8 = np.clip((img - lo) / max(hi - lo, 1e-12) * 255, 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".png", u8)
        if ok:
            atomic_write(self.file(THUMBNAIL), buf.tobytes(), overwrite=True)

    def write_json(self, name: str, data: Any) -> None:
        atomic_write(self.file(name), json.dumps(data, indent=1).encode(), overwrite=True)

    def read_json(self, name: str) -> Any:
        path = self.file(name)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelFolderError(f"{path}: missing from the model folder") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) else "not valid JSON"
            raise ModelFolderError(f"{path}: damaged ({detail})") from None


def check_weights_file(path: Path) -> None:
    """A :class:`ModelFolderError` unless ``path`` is a complete, readable HDF5 file."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(HDF5_SIGNATURE))
    except OSError as exc:
        raise ModelFolderError(f"{path}: cannot read the weights ({exc.strerror})") from None
    if head != HDF5_SIGNATURE:
        raise ModelFolderError(f"{path}: not a Keras weights file (no HDF5 signature)")
    try:
        import h5py
    except ImportError:  # pragma: no cover - installed with TensorFlow
        return
    try:
        with h5py.File(path, "r") as h5:
            if not len(h5.keys()) and not len(h5.attrs):
                raise ModelFolderError(f"{path}: an empty weights file")
    except ModelFolderError:
        raise
    except Exception as exc:  # h5py raises OSError, KeyError, RuntimeError on damage
        detail = " ".join(str(exc).split())[:160]
        raise ModelFolderError(f"{path}: damaged weights file ({detail})") from None


def _is_line(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and math.isfinite(v) for v in value)
    )


def _foreign_file(path: Path) -> str:
    """What a file given as a model folder is (a bioimage.io package, another file)."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (OSError, zipfile.BadZipFile):
            names = []
        if any(n.endswith(("rdf.yaml", "bioimageio.yaml")) for n in names):
            return (
                "a BioImage Model Zoo package, not a model folder; napari-celldenoise predicts "
                "with its own model folders (the folder this package was exported from)"
            )
        return "a zip file, not a model folder"
    return "a file, not a model folder"


def _foreign_folder(path: Path) -> str:
    """The tool whose model folder ``path`` looks like, as a phrase, or ``""``."""
    names = {p.name for p in path.iterdir()} if path.is_dir() else set()
    if names & {"rdf.yaml", "bioimageio.yaml"} or any(
        n.endswith(".bioimage.io.yaml") for n in names
    ):
        return "an unpacked BioImage Model Zoo package"
    if names & {"careamics.yaml", "careamics.yml"} or any(n.endswith(".ckpt") for n in names):
        return "a CAREamics model folder"
    if "config.json" in names and names & {BEST, LAST}:
        return "an n2v / CSBDeep model folder"
    return ""


def prepare_new_folder(path: str | os.PathLike, *, resume: bool) -> ModelFolder:
    """Check ``path`` for a new training (must be absent or empty) or for resuming.

    A model folder without weights (a start that was killed before its first epoch ended)
    counts as empty: nothing trained is in it, so a new training replaces it. Nothing is
    created here; the trainer creates the folder once all inputs are checked.
    """
    folder = ModelFolder(path)
    if resume:
        folder.read_info()
        folder.weights("last")
        folder.read_history()
    elif folder.is_taken():
        raise ModelFolderError(
            f"{folder.path}: already exists and is not empty (use --resume to continue it, "
            "or choose a new folder)"
        )
    elif folder.is_unfinished_start():
        folder.clear()
    return folder
