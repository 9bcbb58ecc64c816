"""Machine-learned sub-pixel centroids: faster than fitting, for data as it is acquired.

A model maps a spot's box (background-subtracted, scaled to sum 1) to the offset of its centre
from the box's central pixel. Two models:

``ridge``
    scikit-learn ridge regression on the normalised pixels and their row/column profiles.
``mlp``
    a small TensorFlow network (two hidden layers) trained in a spawned child process through
    :func:`napari_celldenoise.jobs.run_in_process`; its weights come back as arrays, so
    prediction is a few numpy matrix products (no TensorFlow in the caller's process).

Training data are the user's fitted good spots (:func:`training_set_from_table`) or simulated
spots (:func:`training_set_simulated`). Models are saved as ``.npz`` (arrays only, no pickle).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from numba import njit

from ..atomic import atomic_path
from ..jobs import Done, Epoch, Event, Log, Progress, ShouldStop, never_stop
from .boxes import normalise_boxes, side_background, spot_images
from .simulate import Camera, simulate_boxes


def features(boxes: np.ndarray) -> np.ndarray:
    """Model inputs: normalised pixels, then the column and row profiles."""
    z = normalise_boxes(boxes)
    n = len(z)
    return np.hstack([z.reshape(n, -1), z.sum(1), z.sum(2)])


@njit(cache=True)
def _linear_predict(boxes, weights, intercept, out):
    """``features(boxes) @ coef + intercept`` with the profiles folded into per-pixel
    ``weights`` (``(h, w, 2)``): one pass per box, no temporaries."""
    n, h, w = boxes.shape
    for s in range(n):
        b = boxes[s]
        bg = side_background(b)
        total = 0.0
        a0 = 0.0
        a1 = 0.0
        for i in range(h):
            for j in range(w):
                v = b[i, j] - bg
                if v > 0:
                    total += v
                a0 += weights[i, j, 0] * v
                a1 += weights[i, j, 1] * v
        if total < 1e-9:
            total = 1e-9
        out[s, 0] = a0 / total + intercept[0]
        out[s, 1] = a1 / total + intercept[1]


@dataclass(eq=False)
class CentroidModel:
    """A trained centroid regressor; ``predict(boxes)`` gives (dx, dy) from the box centre."""

    kind: str
    box: int
    weights: list[np.ndarray] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def predict(self, boxes: np.ndarray) -> np.ndarray:
        """``(n, 2)`` offsets (x, y) in px of each spot's centre from its box's centre pixel."""
        boxes = np.asarray(boxes)
        if boxes.ndim != 3 or boxes.shape[1:] != (self.box, self.box):
            raise ValueError(f"boxes must be (n, {self.box}, {self.box}), got {boxes.shape}")
        if self.kind == "ridge":
            coef, intercept = self.weights
            h, w = boxes.shape[1:]
            folded = (
                coef[: h * w].reshape(h, w, 2)
                + coef[h * w : h * w + w][None, :, :]
                + coef[h * w + w :][:, None, :]
            )
            out = np.empty((len(boxes), 2))
            _linear_predict(
                np.ascontiguousarray(boxes, np.float64),
                np.ascontiguousarray(folded),
                np.asarray(intercept, np.float64),
                out,
            )
            return out
        if self.kind == "mlp":
            h, w = boxes.shape[1:]
            mean, scale = self.weights[0], self.weights[1]
            layers = [np.asarray(a) for a in self.weights[2:]]
            # fold the standardisation and the row/column profiles into the first layer
            w1 = layers[0] / scale[:, None]
            b1 = layers[1] - (mean / scale) @ layers[0]
            w1 = (
                w1[: h * w].reshape(h, w, -1)
                + w1[h * w : h * w + w][None]
                + w1[h * w + w :][:, None]
            )
            # float32 for the network, as it was trained: half the memory traffic of float64
            z = normalise_boxes(boxes).reshape(len(boxes), -1).astype(np.float32)
            out = z @ w1.reshape(h * w, -1).astype(np.float32) + b1.astype(np.float32)
            for i in range(2, len(layers), 2):
                np.maximum(out, 0, out=out)
                out = out @ layers[i].astype(np.float32) + layers[i + 1].astype(np.float32)
            out = out.astype(np.float64)
            return out
        raise ValueError(f"unknown centroid model kind {self.kind!r}")

    def positions(self, boxes: np.ndarray, coords: np.ndarray) -> np.ndarray:
        """(y, x) in the frame for boxes cut around integer (row, col) ``coords``."""
        d = self.predict(boxes)
        return np.column_stack([coords[:, 0] + d[:, 1], coords[:, 1] + d[:, 0]])

    def save(self, path: str | os.PathLike) -> Path:
        arrays = {f"w{i}": w for i, w in enumerate(self.weights)}
        meta = np.array([self.kind, str(self.box), repr(sorted(self.info.items()))])
        with atomic_path(path, overwrite=True) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, meta=meta, **arrays)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CentroidModel:
        try:
            with np.load(path, allow_pickle=False) as data:
                kind, box, _ = (str(v) for v in data["meta"])
                weights = [data[f"w{i}"] for i in range(len(data.files) - 1)]
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{path}: not a centroid model ({exc})") from None
        return cls(kind, int(box), weights)


def training_set_simulated(
    n: int = 20000,
    box: int = 7,
    *,
    sigma: float = 1.3,
    photons: tuple[float, float] = (300.0, 5000.0),
    background: tuple[float, float] = (5.0, 40.0),
    camera: Camera | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated boxes (ADU) and their true offsets (x, y) from the box centre."""
    rng = np.random.default_rng(seed)
    ns = np.exp(rng.uniform(np.log(photons[0]), np.log(photons[1]), n))
    bs = rng.uniform(*background, n)
    boxes, truth = simulate_boxes(
        n, box, photons=ns, background=bs, sigma=sigma, camera=camera, seed=seed + 1
    )
    c = (box - 1) / 2
    return boxes.astype(np.float64), truth[:, :2] - c


def training_set_from_table(
    frames: np.ndarray, table: pd.DataFrame, box: int = 7
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes around the rounded fitted positions of ``table``'s spots and the fitted offsets.

    Uses the good spots only when the table has a ``class`` column.
    """
    if "class" in table:
        table = table[table["class"].astype(str) == "good"]
    half = box // 2
    frames = np.asarray(frames)
    boxes, offsets = [], []
    lead = frames.ndim - 2
    for _, row in table.iterrows():
        r, c = round(row["y"]), round(row["x"])
        if r < half or c < half or r >= frames.shape[-2] - half or c >= frames.shape[-1] - half:
            continue
        plane = frames[int(row["frame"])] if lead else frames
        boxes.append(np.asarray(plane[r - half : r + half + 1, c - half : c + half + 1], float))
        offsets.append((row["x"] - c, row["y"] - r))
    if not boxes:
        return np.empty((0, box, box)), np.empty((0, 2))
    return np.stack(boxes), np.asarray(offsets)


def train_ridge(boxes: np.ndarray, offsets: np.ndarray, *, alpha: float = 1e-4) -> CentroidModel:
    """Fit a ridge regression centroid model."""
    from sklearn.linear_model import Ridge

    if len(boxes) < 10:
        raise ValueError("centroid training needs at least 10 spots")
    model = Ridge(alpha=alpha).fit(features(boxes), offsets)
    return CentroidModel(
        "ridge", boxes.shape[1], [model.coef_.T.copy(), model.intercept_.copy()], {"n": len(boxes)}
    )


def train_mlp(
    boxes: np.ndarray,
    offsets: np.ndarray,
    *,
    hidden: int = 64,
    epochs: int = 30,
    batch: int = 256,
    learning_rate: float = 2e-3,
    seed: int = 0,
    should_stop: ShouldStop = never_stop,
) -> Iterator[Event]:
    """Job generator (run it through ``run_in_process``): train the TensorFlow MLP.

    Yields ``Epoch`` events and ``Done(CentroidModel)``. TensorFlow is imported here only.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.random.set_seed(seed)
    x = features(boxes).astype(np.float32)
    y = np.asarray(offsets, np.float32)
    mean = x.mean(0)
    scale = x.std(0) + 1e-6
    xs = (x - mean) / scale
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(xs))
    n_val = max(len(xs) // 10, 1)
    val, tr = idx[:n_val], idx[n_val:]
    model = tf.keras.Sequential(
        [
            tf.keras.Input((x.shape[1],)),
            tf.keras.layers.Dense(hidden, activation="relu"),
            tf.keras.layers.Dense(hidden, activation="relu"),
            tf.keras.layers.Dense(2),
        ]
    )
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate), loss="mse")
    best, best_w = np.inf, None
    stopped = False
    for epoch in range(1, epochs + 1):
        if should_stop():
            stopped = True
            break
        t0 = time.perf_counter()
        hist = model.fit(
            xs[tr],
            y[tr],
            batch_size=batch,
            epochs=1,
            verbose=0,
            shuffle=True,
            validation_data=(xs[val], y[val]),
        )
        loss = float(hist.history["loss"][-1])
        val_loss = float(hist.history["val_loss"][-1])
        if val_loss < best:
            best, best_w = val_loss, [w.copy() for w in model.get_weights()]
        yield Epoch(epoch, loss, val_loss, seconds=time.perf_counter() - t0)
    weights = best_w if best_w is not None else model.get_weights()
    if not weights:
        yield Done(None, stopped=True)
        return
    arrays = [mean.astype(np.float64), scale.astype(np.float64)]
    arrays += [np.asarray(w, np.float64) for w in weights]
    yield Log(f"centroid network: best validation RMSE {np.sqrt(best):.4f} px")
    yield Done(CentroidModel("mlp", boxes.shape[1], arrays, {"n": len(boxes)}), stopped=stopped)


def train_mlp_in_process(
    boxes: np.ndarray, offsets: np.ndarray, *, should_stop: ShouldStop = never_stop, **options
) -> Iterator[Event]:
    """:func:`train_mlp` where :mod:`~napari_celldenoise.jobs.placement` puts the kind
    ``centroid-mlp``: a spawned child process (the only safe way next to a viewer)."""
    from ..jobs.placement import place

    yield Progress(0, 0, "starting the TensorFlow worker")
    yield from place("centroid-mlp", train_mlp, boxes, offsets, should_stop=should_stop, **options)


# --- training with a report, and localisation with a trained model ----------------------

CENTROID_KINDS = ("ridge", "mlp")


def centroid_report(
    model: CentroidModel, boxes: np.ndarray, offsets: np.ndarray, *, min_seconds: float = 0.2
) -> dict:
    """Standard deviation of ``model``'s predictions against reference ``offsets`` (the fit or
    the simulated truth) per axis, and its speed in predictions per second (best of 3 passes
    over at least 2000 boxes, on this process's threads)."""
    boxes = np.asarray(boxes, float)
    if len(boxes) == 0:
        return {"n": 0, "std_x": float("nan"), "std_y": float("nan"), "per_second": float("nan")}
    err = model.predict(boxes) - np.asarray(offsets, float)
    reps = max(1, int(np.ceil(2000 / len(boxes))))
    timed = np.concatenate([boxes] * reps) if reps > 1 else boxes
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        model.predict(timed)
        best = min(best, time.perf_counter() - t0)
        if best > min_seconds:
            break
    return {
        "n": len(boxes),
        "std_x": float(np.std(err[:, 0])),
        "std_y": float(np.std(err[:, 1])),
        "per_second": float(len(timed) / max(best, 1e-9)),
    }


def train_centroid(
    boxes: np.ndarray,
    offsets: np.ndarray,
    *,
    kind: str = "ridge",
    holdout: float = 0.2,
    seed: int = 0,
    should_stop: ShouldStop = never_stop,
    **options,
) -> Iterator[Event]:
    """Job generator: train a ``ridge`` or ``mlp`` centroid model on ``(boxes, offsets)`` and
    report it on a held-out part; ``Done(model)`` last, ``model.info`` holding the report
    (:func:`centroid_report`: ``std_x``, ``std_y`` against the held-out offsets, ``per_second``).

    The network trains in a spawned child process (:func:`train_mlp_in_process`): TensorFlow
    is never imported in the caller's process, which may hold a napari viewer. ``options`` go
    to :func:`train_mlp` (``epochs``, ``hidden``...).
    """
    if kind not in CENTROID_KINDS:
        raise ValueError(f"unknown centroid model {kind!r}; choose one of {CENTROID_KINDS}")
    boxes = np.asarray(boxes, float)
    offsets = np.asarray(offsets, float)
    if len(boxes) < 20:
        raise ValueError(f"centroid training needs at least 20 spots, got {len(boxes)}")
    idx = np.random.default_rng(seed).permutation(len(boxes))
    n_val = max(round(holdout * len(boxes)), 5)
    val, tr = idx[:n_val], idx[n_val:]
    model, stopped = None, False
    if kind == "ridge":
        yield Progress(0, 1, f"ridge on {len(tr)} spots")
        model = train_ridge(boxes[tr], offsets[tr])
    else:
        for event in train_mlp_in_process(
            boxes[tr], offsets[tr], should_stop=should_stop, seed=seed, **options
        ):
            if isinstance(event, Done):
                model, stopped = event.result, event.stopped
            else:
                yield event
    if model is None:
        yield Done(None, stopped=True)
        return
    report = centroid_report(model, boxes[val], offsets[val])
    model.info.update({"n_train": len(tr), **report})
    yield Progress(1, 1, "centroid model trained")
    yield Log(
        f"centroid {kind}: std {report['std_x']:.3f} / {report['std_y']:.3f} px (x / y) on "
        f"{len(val)} held-out spots, {report['per_second']:,.0f} predictions/s"
    )
    yield Done(model, stopped=stopped)


def training_set_from_spots(
    stack: np.ndarray, table: pd.DataFrame, box: int = 7, axes: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (as in the data) around the rounded positions of ``table``'s good spots, and the
    fitted offsets (x, y) from the box centres; stacks of any axes (``T``, ``Z``)."""
    if "class" in table:
        table = table[table["class"].astype(str) == "good"]
    boxes = spot_images(stack, table, box, axes, normalise=False)
    x, y = table["x"].to_numpy(float), table["y"].to_numpy(float)
    return boxes, np.column_stack([x - np.rint(x), y - np.rint(y)])


def locate_with_model(
    stack: np.ndarray,
    model: CentroidModel,
    config=None,
    *,
    axes: str | None = None,
    should_stop: ShouldStop = never_stop,
) -> Iterator[Event]:
    """Job generator: detect candidates as :func:`~.pipeline.find_spots` does, then place each
    spot with ``model`` instead of fitting (fast: for data as it is acquired).

    Nothing is fitted, so every candidate, background maxima included, would be a spot: each
    box gets a cheap likelihood-ratio test instead (:func:`~.significance.box_significance`: a
    spot of the configured PSF ``sigma`` at the predicted centre, its photons and background
    maximised, against a flat background, under the camera's Poisson + read-noise model).
    ``significance``, ``photons`` and ``background`` come from that test; a spot is ``good``
    when its significance reaches ``config.min_significance`` (the fit path's cut), ``bad``
    otherwise. Two candidates placed on the same centre are one spot (the more significant is
    kept, :func:`~.table.drop_duplicates`). The fit's other columns (width, bounds,
    likelihood) are NaN and ``table.attrs["centroid_model"]`` names the model.
    """
    from .config import SpotsConfig
    from .fit import read_variance, to_photoelectrons
    from .pipeline import find_spots
    from .significance import box_significance
    from .table import drop_duplicates

    config = (config or SpotsConfig()).model_copy(update={"fit": "none", "box": model.box})
    table = None
    for event in find_spots(stack, config, axes=axes, should_stop=should_stop):
        if isinstance(event, Done):
            table, stopped = event.result, event.stopped
        else:
            yield event
    if table is None:  # pragma: no cover - find_spots always ends with Done
        return
    if len(table):
        axes_used = table.attrs.get("axes")
        boxes = spot_images(stack, table, model.box, axes_used, normalise=False)
        d = model.predict(boxes)
        table = table.copy()
        table["x"] = table["x"].to_numpy(float) + d[:, 0]
        table["y"] = table["y"].to_numpy(float) + d[:, 1]
        camera = config.camera
        electrons = to_photoelectrons(boxes, camera)
        centre = d + model.box // 2
        sig, nb = box_significance(electrons, centre, config.sigma, read_variance(camera))
        table["significance"] = sig
        table["photons"], table["background"] = nb[:, 0] / camera.qe, nb[:, 1] / camera.qe
        table["class"] = np.where(sig >= config.min_significance, "good", "bad").astype(object)
        # two candidates on one spot are placed on the same centre: keep one, as the fit does
        table = drop_duplicates(table, config.duplicate_distance)
    table.attrs["centroid_model"] = model.kind
    yield Done(table, stopped=stopped)
