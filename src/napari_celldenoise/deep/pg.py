"""Poisson-Gaussian blind-spot denoising with test-time adaptation, in TensorFlow.

Khademi, Rao & Ventura, "Self-Supervised Poisson-Gaussian Denoising", WACV 2021, on the
blind-spot architecture of Laine, Karras, Lehtinen & Aila, "High-Quality Self-Supervised Deep
Image Denoising", NeurIPS 2019.

The network sees every pixel's surroundings but never the pixel itself: one U-Net branch whose
convolutions and poolings only look *up* (each is padded on top and cropped at the bottom, and
the branch output is shifted down by one pixel) is applied to the image rotated by 0, 90, 180
and 270 degrees; the four outputs are rotated back and merged by 1x1 convolutions. Each rotation
is its own layer object holding its own ``k`` (the authors' public code builds them with a
``Lambda`` closing over the loop variable, so under TensorFlow 2 all four branches rotate by the
last angle and half of the receptive field is lost; the blind-spot test here checks all four
directions).

The network predicts a Gaussian prior ``N(mu, s2)`` of the clean value from the surroundings.
With the Poisson-Gaussian noise ``var = a x + b`` approximated at ``x = mu``, the noisy pixel is
``N(mu, s2 + a mu + b)``: its negative log-likelihood is the loss (no loss hyper-parameter;
its gradient is weighted per pixel by the predicted variance, :func:`pg_loss`), and the output
is the posterior mean ``(y s2 + mu (a mu + b)) / (s2 + a mu + b)``.
Noise parameters come from the classical estimator (or are learned, ``learn_noise``); test-time
adaptation re-estimates them on the image being denoised and fine-tunes the network on it for a
few steps. The prior mean is blind at every pixel, so the line ``y ~ alpha mu + beta`` fitted on
noisy pixels corrects its gain and offset (:mod:`.calibration`; +0.2 dB on FMD after 3 minutes):
after training on the validation patches, and again on the image itself with test-time
adaptation.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..jobs import Calibration, Device, Event, Log, Progress, ShouldStop, never_stop
from ._tf import (
    compute_precision,
    device_description,
    import_tensorflow,
    keras,
    unusable_gpu,
)
from .calibration import CALIBRATION, describe, fit_affine, read_lines
from .config import PredictConfig, TrainConfig
from .data import augment, check_finite, draw_seed, structure_weights, validation_subset
from .model import ModelFolder, ModelInfo
from .training import cosine_rate
from .upsampling import xla_friendly_layers

_EPS = 1e-6
# test-time fine-tuning's (peak) learning rate, as a fraction of training's: 4e-4 after the
# default 1e-3 (on a 5-minute model, peaks of 0.8, 2 and 4 x 1e-4 gave +0.13, +0.29, +0.33 dB;
# under the weighted loss, on an 8-epoch model, 0.1 / 0.2 / 0.4 / 0.8 scored 40.39 / 40.41 /
# 40.43 / 40.31 dB)
TTA_LR = 0.4


def receptive_radius(depth: int) -> int:
    """Context (pixels) a tile needs; the branch reaches about ``8 * 2**depth`` rows up.

    Counted per level: two 2-row convolutions going down, the bottom one, two per level coming
    up, plus the shifts before pooling; a margin of ``4 * 2**depth`` covers the columns.
    """
    return int(12 * 2**depth)


# --------------------------------------------------------------------------- noise parameters
def estimate_noise_params(data: np.ndarray) -> tuple[float, float]:
    """Poisson-Gaussian ``(a, b)`` of ``var = a * mean + b`` (image units), classical estimate."""
    a, b, _ = estimate_noise_model(data)
    return a, b


def estimate_noise_model(data: np.ndarray) -> tuple[float, float, float]:
    """``(a, b, floor)``: ``var = max(a * mean + b, floor)`` in image units.

    ``a, b`` come from :func:`napari_celldenoise.classical.noise.estimate_noise` (Foi et al.
    2008). The linear model often has ``b < 0`` (camera offset, clipping of 8-bit data) and then
    predicts almost no noise in the dark background, where most pixels are: the variance
    measured in the darkest intensity bin is kept as a floor (on FMD confocal data: fit
    ``3.7 x - 12.5``, floor about 4, the stack's per-pixel variance at mean 2-5 is 4.1).
    """
    from ..classical.noise import estimate_noise

    fit = estimate_noise(np.asarray(data, np.float32))
    a, b = float(fit.a), float(fit.b)
    if not np.isfinite(a) or a < 0:
        a = 0.0
    if not np.isfinite(b):
        b = float(fit.sigma) ** 2
    if fit.means.size:
        floor = float(fit.variances[int(np.argmin(fit.means))])
    else:
        floor = 0.25 * float(fit.sigma) ** 2
    floor = max(floor, 1e-6 * max(float(np.var(data)), 1e-12))
    return a, b, floor


def normalised_noise(
    a: float, b: float, mean: float, std: float, floor: float = 0.0
) -> tuple[float, float, float]:
    """``(a, b, floor)`` for data normalised as ``(y - mean) / std``."""
    return a / std, (a * mean + b) / std**2, floor / std**2


# ------------------------------------------------------------------------------------ layers
def _layers() -> Any:
    """Custom Keras layers (defined lazily: TensorFlow is imported only here)."""
    tf = import_tensorflow()
    k = keras()

    class Rot90(k.layers.Layer):
        """Rotate NHWC images by ``turns`` x 90° counter-clockwise (an explicit per-layer k)."""

        def __init__(self, turns: int, **kwargs: Any):
            super().__init__(**kwargs)
            self.turns = int(turns) % 4

        def call(self, x: Any) -> Any:
            return tf.image.rot90(x, k=self.turns)

        def get_config(self) -> dict:
            return {**super().get_config(), "turns": self.turns}

    class ShiftDown(k.layers.Layer):
        """Shift down by ``n`` rows: ``n`` zero rows padded on top, ``n`` cropped at the bottom."""

        def __init__(self, n: int = 1, **kwargs: Any):
            super().__init__(**kwargs)
            self.n = int(n)

        def call(self, x: Any) -> Any:
            return tf.pad(x, [[0, 0], [self.n, 0], [0, 0], [0, 0]])[:, : tf.shape(x)[1]]

        def get_config(self) -> dict:
            return {**super().get_config(), "n": self.n}

    class UpConv(k.layers.Layer):
        """A 3x3 convolution that sees only the rows at and above the output row."""

        def __init__(self, filters: int, **kwargs: Any):
            super().__init__(**kwargs)
            self.filters = filters
            self.conv = k.layers.Conv2D(filters, 3, padding="valid", dtype=kwargs.get("dtype"))

        def call(self, x: Any) -> Any:
            # rows y-2..y and columns x-1..x+1 of the input feed output (y, x)
            padded = tf.pad(x, [[0, 0], [2, 0], [1, 1], [0, 0]])
            return tf.nn.leaky_relu(self.conv(padded), alpha=0.1)

        def get_config(self) -> dict:
            return {**super().get_config(), "filters": self.filters}

    class NoiseVariance(k.layers.Layer):
        """``max(a * mu + b, floor)`` with ``a, b`` (normalised units) fixed or learned."""

        def __init__(
            self, a: float, b: float, floor: float = 0.0, learn: bool = False, **kwargs: Any
        ):
            super().__init__(**kwargs)
            self.a0, self.b0, self.learn = float(a), float(b), bool(learn)
            self.floor0 = float(floor)

        def build(self, input_shape: Any) -> None:
            self.a = self.add_weight(
                name="a",
                shape=(),
                trainable=self.learn,
                initializer=k.initializers.Constant(self.a0),
            )
            self.b = self.add_weight(
                name="b",
                shape=(),
                trainable=self.learn,
                initializer=k.initializers.Constant(self.b0),
            )
            self.floor = self.add_weight(
                name="floor",
                shape=(),
                trainable=False,
                initializer=k.initializers.Constant(self.floor0),
            )

        def call(self, mu: Any) -> Any:
            return tf.maximum(tf.nn.relu(self.a) * mu + self.b, tf.maximum(self.floor, _EPS))

        def get_config(self) -> dict:
            return {**super().get_config(), "a": self.a0, "b": self.b0, "floor": self.floor0,
                    "learn": self.learn}  # fmt: skip

    return tf, k, Rot90, ShiftDown, UpConv, NoiseVariance


def build_blindspot(
    *,
    depth: int = 3,
    features: int = 32,
    a: float = 0.0,
    b: float = 1.0,
    floor: float = 0.0,
    learn: bool = False,
    precision: str = "float32",
) -> Any:
    """The four-branch blind-spot network; output channels ``mu, s2, noise_var``.

    Input ``(batch, H, W, 1)`` normalised, H and W multiples of ``2**depth``.
    ``precision="mixed_bfloat16"`` computes the branches and the merging 1x1 convolutions in
    bfloat16 (weights stay float32); the prior head, the noise model and the loss stay float32.
    """
    tf, k, Rot90, ShiftDown, UpConv, NoiseVariance = _layers()
    L = k.layers
    UpSampling2D, _ = xla_friendly_layers(tf)
    dt = {"dtype": precision}

    # one branch with shared weights, applied to four rotations
    x_in = L.Input((None, None, 1))
    skips = []
    h = UpConv(features, **dt)(x_in)
    for level in range(depth):
        h = UpConv(features, **dt)(h)
        skips.append(h)
        h = L.MaxPooling2D(2, **dt)(ShiftDown(1, **dt)(h))
        del level
    h = UpConv(features, **dt)(h)
    for skip in reversed(skips):
        h = UpSampling2D(2, **dt)(h)
        h = L.Concatenate(**dt)([h, skip])
        h = UpConv(2 * features, **dt)(h)
        h = UpConv(2 * features, **dt)(h)
    h = ShiftDown(1, **dt)(h)  # the blind spot: the output row never sees its own pixel
    branch = k.Model(x_in, h, name="half_plane_branch")

    inp = L.Input((None, None, 1), name="noisy")
    rotations = [
        Rot90(0, name="rot0", **dt),
        Rot90(1, name="rot90", **dt),
        Rot90(2, name="rot180", **dt),
        Rot90(3, name="rot270", **dt),
    ]
    undo = [
        Rot90(0, name="unrot0", **dt),
        Rot90(3, name="unrot90", **dt),
        Rot90(2, name="unrot180", **dt),
        Rot90(1, name="unrot270", **dt),
    ]
    outs = [u(branch(r(inp))) for r, u in zip(rotations, undo)]
    h = L.Concatenate(**dt)(outs)
    h = L.Conv2D(4 * features, 1, activation=lambda t: tf.nn.leaky_relu(t, 0.1), **dt)(h)
    h = L.Conv2D(2 * features, 1, activation=lambda t: tf.nn.leaky_relu(t, 0.1), **dt)(h)
    raw = L.Conv2D(2, 1, name="prior", dtype="float32")(h)
    mu = raw[..., :1]
    s2 = tf.nn.softplus(raw[..., 1:2]) + _EPS
    noise_var = NoiseVariance(a, b, floor, learn, name="noise")(mu)
    out = L.Concatenate(name="prior_and_noise")([mu, s2, noise_var])
    return k.Model(inp, out, name="pg_blindspot")


def pg_loss(y_true: Any, y_pred: Any) -> Any:
    """Negative log-likelihood of the noisy pixel under prior (*) Poisson-Gaussian noise.

    The value is the mean NLL; its gradient is each pixel's NLL gradient times that pixel's
    predicted variance ``s2 + nv`` (held constant): beta-NLL with beta = 1, Seitzer et al.,
    "On the Pitfalls of Heteroscedastic Uncertainty Estimation with Probabilistic Neural
    Networks", ICLR 2022. The plain NLL divides the prior mean's error by the variance, so the
    bright, noisy cells (Poisson: variance grows with the signal) taught the mean far less than
    the dark background; weighted, the mean's gradient is the squared error's, and the variance
    keeps its stationary point ``s2 + nv = E(y - mu)^2``. Measured on FMD (8 epochs x 40 steps,
    one core, last weights): prior mean 38.93 -> 40.09 dB, posterior 39.55 -> 40.40 dB.
    """
    tf = import_tensorflow()
    y = y_true[..., :1]
    mu, s2, nv = y_pred[..., :1], y_pred[..., 1:2], y_pred[..., 2:3]
    total = s2 + nv
    nll = 0.5 * tf.math.log(total) + 0.5 * tf.square(y - mu) / total
    weighted = tf.stop_gradient(total) * nll
    return tf.reduce_mean(tf.stop_gradient(nll) + weighted - tf.stop_gradient(weighted))


def posterior_mean(
    y: np.ndarray, out: np.ndarray, line: tuple[float, float] = (1.0, 0.0)
) -> np.ndarray:
    """``E[x | y]`` for prior ``N(alpha mu + beta, s2)`` and noise variance ``nv``.

    ``mu, s2, nv`` are the channels of ``out``; ``line`` is the prior mean's calibration.
    """
    mu, s2, nv = line[0] * out[..., 0] + line[1], out[..., 1], out[..., 2]
    return (y * s2 + mu * nv) / (s2 + nv)


def prior_line(model: Any, samples: np.ndarray, batch: int = 8) -> tuple[float, float]:
    """Calibration line of the prior mean on normalised ``samples`` (``N,Y,X,1``)."""
    mu = np.concatenate(
        [
            model(samples[i : i + batch], training=False).numpy()[..., 0]
            for i in range(0, len(samples), batch)
        ]
    )
    return fit_affine(samples[..., 0], mu)


# ---------------------------------------------------------------------------------- training
def _compile(model: Any, learning_rate: float) -> None:
    k = keras()
    model.compile(optimizer=k.optimizers.Adam(learning_rate=learning_rate), loss=pg_loss)


def _batches(
    x: np.ndarray,
    batch: int,
    patch: int,
    rng: np.random.Generator,
    aug: bool,
    weights: np.ndarray | None = None,
):
    """Random crops of ``patch`` from the patch set ``x`` (``N,Y,X,1``), augmented.

    ``weights``: each patch's probability of being drawn (:func:`.data.structure_weights`);
    uniform when ``None``.
    """
    while True:
        if weights is None:
            idx = rng.integers(0, len(x), batch)
        else:
            idx = rng.choice(len(x), batch, p=weights)
        out = np.empty((batch, patch, patch, 1), np.float32)
        for j, i in enumerate(idx):
            y0 = int(rng.integers(0, x.shape[1] - patch + 1))
            x0 = int(rng.integers(0, x.shape[2] - patch + 1))
            out[j] = x[i, y0 : y0 + patch, x0 : x0 + patch]
        if aug:
            (out,) = augment(out, rng)
        yield out, out


def train_pg(
    train: np.ndarray,
    val: np.ndarray,
    config: TrainConfig,
    folder: ModelFolder,
    info: ModelInfo,
    *,
    resume: bool,
    should_stop: ShouldStop,
) -> Iterator[Event]:
    """Train (or continue) the PG blind-spot network; yields events, returns ``(info, stopped)``."""
    from .training import cosine_schedule, fit_events

    tf = import_tensorflow()
    tf.random.set_seed(config.seed)
    if resume:
        mean, std = info.mean, info.std
        noise = folder.read_noise() or {}
        a, b = noise.get("a", 0.0), noise.get("b", std**2)
        floor = noise.get("floor", 0.0)
    else:
        mean, std = float(train.mean()), float(train.std())
        a, b, floor = estimate_noise_model(train[: min(len(train), 64)])
        folder.write_noise(a, b, floor=floor)
    an, bn, fn = normalised_noise(a, b, mean, std, floor)
    precision = compute_precision(config.precision)
    network = functools.partial(
        build_blindspot,
        depth=config.depth,
        features=config.features,
        a=an,
        b=bn,
        floor=fn,
        learn=config.learn_noise,
    )
    from . import strategy  # built and compiled in the worker's tf.distribute scope, if any

    with strategy.scope():
        model = network(precision=precision)
        _compile(model, config.learning_rate)
    strategy.enable_jit(model)
    if resume:
        model.load_weights(str(folder.weights("last")))
    device = device_description() + (" in bfloat16" if precision != "float32" else "")
    info = info.model_copy(update={"mean": mean, "std": std, "device": device})
    folder.write_info(info)
    yield Device(device, note=unusable_gpu())
    yield Log(
        f"training {config.method} on {device}: noise var = max({a:.4g} x + {b:.4g}, {floor:.4g})"
    )
    xn = ((train - mean) / std)[..., None].astype(np.float32)
    vn = ((validation_subset(val) - mean) / std)[..., None].astype(np.float32)
    rng = np.random.default_rng(draw_seed(config.seed, info.epochs_done))
    weights = structure_weights(train, config.structure_share)
    first = vn[:1]

    def preview(keras_model: Any) -> np.ndarray:
        out = keras_model(first, training=False).numpy()[0]
        return posterior_mean(first[0, ..., 0], out) * std + mean

    result = yield from fit_events(
        model,
        _batches(xn, config.batch, config.patch, rng, config.augment, weights),
        (vn, vn),
        folder=folder,
        info=info,
        epochs=config.epochs,
        steps=config.steps,
        should_stop=should_stop,
        preview=preview,
        preview_name=f"{config.method} preview",
        extra_callbacks=[cosine_schedule(config.learning_rate, config.epochs * config.steps)]
        if config.lr_schedule == "cosine"
        else [],
    )
    if config.learn_noise:
        layer = model.get_layer("noise")
        an_, bn_ = float(np.maximum(layer.a.numpy(), 0)), float(layer.b.numpy())
        folder.write_noise(an_ * std, bn_ * std**2 - an_ * std * mean, floor=floor)
    if precision != "float32":  # calibrate the float32 network that predictions use
        model = network()
    lines = {}
    for which in ("last", "best"):
        path = folder.weights(which)
        model.load_weights(str(path))
        lines[path.name] = list(prior_line(model, vn))
        yield Calibration(path.name, *lines[path.name], variable="mu")
        yield Log(f"prior-mean calibration of {path.name}: {describe(lines[path.name], 'mu')}")
    folder.write_json(CALIBRATION, lines)
    return result


# -------------------------------------------------------------------------------- prediction
class PGPredictor:
    """Posterior-mean denoiser of a PG blind-spot folder, with optional test-time adaptation."""

    def __init__(self, folder: ModelFolder, info: ModelInfo, config: PredictConfig):
        self.folder, self.info, self.config = folder, info, config
        noise = folder.read_noise() or {"a": 0.0, "b": info.std**2}
        self.a, self.b, self.floor = noise["a"], noise["b"], noise.get("floor", 0.0)
        self.model = build_blindspot(
            depth=info.train.depth, features=info.train.features, a=0.0, b=1.0, learn=False
        )
        path = folder.weights(config.weights)
        self.model.load_weights(str(path))
        self.line = tuple(read_lines(folder).get(path.name, (1.0, 0.0)))
        self.tuned: Any = None  # the network test-time adaptation fine-tuned (model or twin)
        self._set_noise()

    def _set_noise(self) -> None:
        an, bn, fn = normalised_noise(self.a, self.b, self.info.mean, self.info.std, self.floor)
        layer = self.model.get_layer("noise")
        layer.a.assign(an)
        layer.b.assign(bn)
        layer.floor.assign(fn)

    def adapt(self, samples: Any, *, should_stop: ShouldStop = never_stop) -> Iterator[Event]:
        """Test-time adaptation on ``samples`` (``S,Y,X``): noise re-fit, short fine-tuning."""
        if not self.config.tta:
            return
        data = np.asarray(samples[: min(len(samples), 8)], np.float32)
        check_finite(data, before="predicting", where=f"the first {len(data)} plane(s)")
        try:
            # a, b re-fitted on this image; the floor (darkest-bin variance) is too fragile on
            # one image (0.68 vs 2.4 on FMD, -3.8 dB) and is kept from training
            self.a, self.b = estimate_noise_params(data)
        except ValueError:  # too small to estimate: keep the training estimate
            pass
        self._set_noise()
        yield Log(
            f"test-time adaptation: noise var = max({self.a:.4g} x + {self.b:.4g}, "
            f"{self.floor:.4g}), {self.config.tta_steps} fine-tuning steps"
        )
        div = 2**self.info.train.depth
        patch = min(self.info.train.patch, (min(data.shape[1:]) // div) * div)
        if patch < div:
            return
        xn = ((data - self.info.mean) / self.info.std)[..., None].astype(np.float32)
        peak = self.info.train.learning_rate * TTA_LR
        tuned = self.tuned = self._training_copy()
        _compile(tuned, peak)
        gen = _batches(xn, min(self.info.train.batch, 8), patch, np.random.default_rng(0), True)
        steps = self.config.tta_steps
        for step in range(steps):
            if should_stop():
                return
            if self.info.train.lr_schedule == "cosine":
                # a short cycle of its own: the trained weights were annealed to a low rate
                tuned.optimizer.learning_rate.assign(cosine_rate(peak, step, steps))
            bx, by = next(gen)
            tuned.train_on_batch(bx, by)
            yield Progress(step + 1, steps, f"adapting to this image {step + 1}/{steps}")
        self.model.set_weights(tuned.get_weights())
        crops = _batches(xn, 8, patch, np.random.default_rng(1), False)
        crop = np.concatenate([next(crops)[0] for _ in range(8)])
        self.line = prior_line(self.model, crop)
        name = self.folder.weights(self.config.weights).name
        yield Calibration(name, *self.line, variable="mu", scope="this image")
        yield Log(f"prior-mean calibration on this image: {describe(self.line, 'mu')}")

    def _training_copy(self) -> Any:
        """The network to fine-tune: the model itself, or a bfloat16 twin with its weights.

        Predictions always run in float32 (the posterior mean needs the precision); the
        fine-tuning follows the training's ``precision`` on this machine.
        """
        precision = compute_precision(self.info.train.precision)
        if precision == "float32":
            return self.model
        twin = build_blindspot(
            depth=self.info.train.depth,
            features=self.info.train.features,
            precision=precision,
        )
        twin.set_weights(self.model.get_weights())
        return twin

    def __call__(self, window: np.ndarray) -> np.ndarray:
        m, s = self.info.mean, self.info.std
        x = ((window - m) / s)[None, ..., None].astype(np.float32)
        out = self.model(x, training=False).numpy()[0]
        return posterior_mean(x[0, ..., 0], out, self.line) * s + m
