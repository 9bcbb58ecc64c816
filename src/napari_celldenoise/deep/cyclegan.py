"""Unpaired CycleGAN denoising of atomic-resolution images, in TensorFlow.

Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", ICCV 2017: two generators, ``G: noisy -> clean`` and ``F: clean ->
noisy``, and two PatchGAN discriminators, trained with the least-squares GAN loss (Mao et al.,
"Least Squares Generative Adversarial Networks", ICCV 2017), the cycle-consistency loss
``|F(G(x)) - x| + |G(F(y)) - y|`` (weight 10) and the identity loss ``|G(y) - y| + |F(x) - x|``
(half the cycle weight); discriminators see generated images from a pool of the last 50
(``pool_size``); Adam at 2e-4 with beta1 = 0.5, constant for the first half of a run and
decaying linearly to 0. With ``fft_discriminator`` a third PatchGAN judges the clean domain's
standardised power spectrum ``log(1 + |FFT|^2)``, as Khan et al. do for STEM ("Denoising of
atomic-resolution STEM images with a CycleGAN", npj Comput. Mater. 2023): the Bragg peaks and
the spectrum's background between them are what a lattice image's noise changes most.

The clean domain is an unlimited stream of synthetic targets of the user's crystal
(:mod:`..em.targets`: the measured lattice, from the user's clean reference or from the measured
motif, with procedural and the image's own dents and ~1 % vacancies). What differs from the
paper's defaults, and why (the failure causes of the crop-and-concatenate attempt):

* no per-tile normalisation (instance norm makes a tile's output depend on the tile): the
  generators have none, both domains are normalised once by the noisy training data's mean and
  standard deviation (the targets are in the noisy image's units), so tiled prediction equals
  untiled prediction;
* zero ("same") padding inside the networks, not reflection (a reflected lattice is a wrong
  lattice); the tiles of a prediction get real context from their neighbours;
* upsampling by pixel repetition then a convolution (no transposed convolution: no
  checkerboard);
* training and prediction at the image's own pixel size (no resize), on crops of 256 px by
  default (a ResNet generator sees ~170 px);
* a low-pass consistency loss ``|blur(G(x)) - blur(x)| + |blur(F(y)) - blur(y)|`` with a
  Gaussian of about one lattice spacing: the columns are averaged out of it and the thickness
  map stays, so a dent in the input is a dent in the output by construction;
* each generator is the identity plus a residual network, so training starts from the input,
  with a skip of its full-resolution features into the last convolution: without it the
  residual comes only through the quarter-resolution path (upsampled by repetition) and cannot
  remove pixel noise, and the generator stayed the identity;
* synthetic supervision (``supervised_weight``): each target is also recorded with the noisy
  image's measured Poisson-Gaussian noise (:func:`..em.simulate.noisify`) and
  ``|G(recorded) - target|^2`` is added to the generators' loss -- the paired training on
  simulated images of Lin et al., Sci. Rep. 11 (2021) (TEMImageNet / AtomSegNet), on top of
  the unpaired losses; the low-pass consistency stays on the real noisy image.

The validation loss (that picks the "best" weights) is the cycle and low-pass loss of the
noisy validation patches: it says the generators stay consistent, not that the output looks
clean; the last weights are the usual choice for a GAN.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..jobs import Device, Event, Log, ShouldStop
from ._tf import device_description, import_tensorflow, keras, unusable_gpu
from .data import DeepInputError, augment, draw_seed
from .model import ModelFolder, ModelInfo

TARGET_POOL = 16  # synthetic targets held at once; one is replaced every few batches
# the losses of a training step, in Epoch.metrics (``loss`` is the generators' total)
LOSSES = ("loss", "generator", "discriminator", "cycle", "identity", "lowpass", "supervised")


def receptive_radius(depth: int, res_blocks: int = 9) -> int:
    """Context (pixels) a tile needs: the 7x7 convolutions (3 px each), ``depth`` stride-2
    3x3 convolutions down and 3x3 convolutions up (``2**l`` px each at level ``l``), two 3x3
    convolutions per residual block at ``2**depth`` px each, and ``2**depth - 1`` px each way
    for where a pixel falls in its coarse cell (the strided grid and the repeated upsampling);
    rounded up to ``2**depth``. Checked: tiles with this overlap equal the whole image within
    float error, with 8 px less they differ by 0.2 % (tests/deep/test_cyclegan.py)."""
    scale = 2**depth
    r = 3 + 3 + 2 * sum(2**level for level in range(depth)) + 2 * res_blocks * scale
    r += 2 * (scale - 1)
    return int(np.ceil(r / scale) * scale)


# ------------------------------------------------------------------- the clean domain (numpy)
class TargetCrops:
    """Endless batches of synthetic clean targets for the noisy training patches.

    One :func:`..em.targets.target_stream` per noisy patch (up to 8, so that the seed's dent
    masks come from several places of the image); targets are drawn round robin into a pool of
    :data:`TARGET_POOL`, of which a random batch is served, augmented; every ``refresh`` batches
    one target of the pool is replaced by a new one (the stream has no end).
    """

    def __init__(
        self,
        noisy: np.ndarray,
        *,
        reference: np.ndarray | None,
        seed: int,
        refresh: int = 4,
        vacancy_rate: float = 0.01,
    ):
        from ..em.errors import LatticeNotFound
        from ..em.lattice import measure_lattice
        from ..em.targets import target_stream

        # the lattice most of up to 8 patches agree on (spacings within 5 %; a tie goes to the
        # larger): a small noisy patch can index the wrong ring with full confidence (a
        # honeycomb's lattice of nearest columns, a / sqrt(3): 3 of 7 patches of 64 px, dose 20)
        found, reason = [], "no patch"
        for patch in noisy[:8]:
            try:
                found.append(measure_lattice(patch))
            except (LatticeNotFound, ValueError) as exc:
                reason = str(exc)
        if found:
            spacings = np.array([f.spacing_px for f in found])
            votes = [(np.sum(np.abs(spacings / s - 1) < 0.05), s) for s in spacings]
            lattice = found[max(range(len(found)), key=lambda i: votes[i])]
        else:
            raise DeepInputError(
                f"cyclegan needs a crystal lattice in the training patches: {reason}; "
                "raise the patch size or crop a crystalline region"
            )
        self.lattice = lattice
        self.spacing = float(lattice.spacing_px)
        self.noise = measured_noise(noisy[:8], lattice)
        self.streams = []
        for i, patch in enumerate(noisy[:8]):
            _, stream = target_stream(
                patch, reference=reference, seed=seed + 1000 * i, lattice=lattice,
                vacancy_rate=vacancy_rate,
            )  # fmt: skip
            self.streams.append(stream)
        self.rng = np.random.default_rng(seed)
        self.refresh, self.served, self.turn = refresh, 0, 0
        self.pool = [self._next() for _ in range(TARGET_POOL)]

    def _next(self) -> np.ndarray:
        stream = self.streams[self.turn % len(self.streams)]
        self.turn += 1
        return next(stream).image

    def noisify(self, clean: np.ndarray, rng: np.random.Generator, jitter: float) -> np.ndarray:
        """``clean`` targets ``(n, P, P)`` recorded with the noisy image's measured noise."""
        from ..em.simulate import noisify

        kw = dict(gain=self.noise["gain"], offset_variance=self.noise["offset_variance"])
        return np.stack([noisify(c, rng, jitter=jitter, **kw) for c in clean])

    def batch(self, n: int) -> np.ndarray:
        """``n`` targets ``(n, P, P)`` in the noisy image's units."""
        if self.served and self.served % self.refresh == 0:
            self.pool[int(self.rng.integers(len(self.pool)))] = self._next()
        self.served += 1
        idx = self.rng.integers(0, len(self.pool), n)
        return np.stack([self.pool[i] for i in idx]).astype(np.float32)


def measured_noise(noisy: np.ndarray, lattice: Any) -> dict[str, float]:
    """The Poisson-Gaussian noise of the noisy patches: the median gain and offset variance of
    :func:`..em.lattice.measure_gain` over the patches (folded on the chosen lattice)."""
    from ..em.lattice import measure_gain

    fits = []
    for patch in noisy:
        try:
            fit = measure_gain(patch, lattice)
        except (ValueError, RuntimeError):
            continue
        if fit["gain"] > 0 and np.isfinite(fit["offset_variance"]):
            fits.append((fit["gain"], fit["offset_variance"]))
    if not fits:
        raise DeepInputError(
            "cyclegan could not measure the noise (gain) of the training patches; set "
            "supervised_weight to 0 to train without the synthetic supervision"
        )
    gain, offset = np.median(np.array(fits), axis=0)
    return {"gain": float(gain), "offset_variance": float(offset)}


def unpaired_batches(
    noisy: np.ndarray,
    targets: TargetCrops,
    *,
    batch: int,
    mean: float,
    std: float,
    rng: np.random.Generator,
    aug: bool,
    supervised: bool = True,
    jitter: float = 0.0,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(noisy, clean, clean recorded)`` normalised batches ``(B, P, P, 1)``: the noisy
    patches and the targets are unpaired (drawn apart); the third is the targets noisified
    with the noisy image's measured noise, paired with them (zeros when not ``supervised``)."""
    while True:
        x = noisy[rng.integers(0, len(noisy), batch)][..., None]
        clean = targets.batch(batch)
        recorded = targets.noisify(clean, rng, jitter) if supervised else np.zeros_like(clean)
        x = ((x - mean) / std).astype(np.float32)
        y = ((clean[..., None] - mean) / std).astype(np.float32)
        yn = ((recorded[..., None] - mean) / std).astype(np.float32)
        if aug:
            (x,) = augment(x, rng)
            y, yn = augment(y, rng, yn)
        yield x, y, yn


# ------------------------------------------------------------------------------ the networks
def build_generator(
    *, features: int = 32, depth: int = 2, res_blocks: int = 6, name: str = "generator"
) -> Any:
    """ResNet generator: 7x7 conv, ``depth`` stride-2 convs, residual blocks, upsample + conv
    back, 7x7 conv to one channel, plus the input (identity + residual). No normalisation."""
    tf = import_tensorflow()
    k = keras()
    L = k.layers
    from .upsampling import xla_friendly_layers

    UpSampling2D, _ = xla_friendly_layers(tf)

    def act(h: Any) -> Any:
        return L.LeakyReLU(0.2)(h)

    inp = L.Input((None, None, 1))
    h = act(L.Conv2D(features, 7, padding="same")(inp))
    full = h  # the full-resolution features, for the skip below
    for level in range(depth):
        h = act(L.Conv2D(features * 2 ** (level + 1), 3, strides=2, padding="same")(h))
    width = features * 2**depth
    for _ in range(res_blocks):
        r = act(L.Conv2D(width, 3, padding="same")(h))
        r = L.Conv2D(width, 3, padding="same")(r)
        h = L.Add()([h, r])
    for level in reversed(range(depth)):
        h = UpSampling2D(2)(h)
        h = act(L.Conv2D(features * 2**level, 3, padding="same")(h))
    # a full-resolution skip: the residual that removes pixel noise cannot come through the
    # coarse path alone (upsampled by repetition, it is blocky); the skip's context (7 + 7 px)
    # is inside the coarse path's, so the receptive radius does not change
    h = L.Concatenate()([h, full])
    # the last layer starts at zero: the untrained generator is the identity
    out = L.Conv2D(1, 7, padding="same", kernel_initializer="zeros")(h)
    return k.Model(inp, L.Add()([inp, out]), name=name)


def build_discriminator(*, features: int = 32, name: str = "discriminator") -> Any:
    """The 70 x 70 PatchGAN: 4x4 convs C(f)-C(2f)-C(4f) at stride 2, C(8f) and 1 channel at
    stride 1 (Isola et al., "Image-to-Image Translation with Conditional Adversarial
    Networks", CVPR 2017); LeakyReLU 0.2, no normalisation."""
    k = keras()
    L = k.layers
    inp = L.Input((None, None, 1))
    h = inp
    for i, (mult, stride) in enumerate(((1, 2), (2, 2), (4, 2), (8, 1))):
        h = L.Conv2D(features * mult, 4, strides=stride, padding="same", name=f"c{i}")(h)
        h = L.LeakyReLU(0.2)(h)
    out = L.Conv2D(1, 4, padding="same", name="patch_scores")(h)
    return k.Model(inp, out, name=name)


def power_spectrum(tf: Any, x: Any) -> Any:
    """``(B, P, P, 1)`` images -> their centred ``log(1 + |FFT|^2)`` of the mean-free image,
    standardised per image (what the FFT discriminator sees)."""
    img = x[..., 0]
    img = img - tf.reduce_mean(img, axis=(1, 2), keepdims=True)
    spectrum = tf.signal.fft2d(tf.complex(img, tf.zeros_like(img)))
    power = tf.math.log1p(tf.square(tf.abs(spectrum)))
    power = tf.signal.fftshift(power, axes=(1, 2))
    mean, var = tf.nn.moments(power, axes=(1, 2), keepdims=True)
    return ((power - mean) / tf.sqrt(var + 1e-6))[..., None]


def gaussian_kernel(sigma: float) -> np.ndarray:
    """A normalised 2D Gaussian ``(K, K, 1, 1)`` of ``sigma`` px, truncated at 3 sigma."""
    r = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2 * sigma**2))
    g2 = np.outer(g, g)
    return (g2 / g2.sum()).astype(np.float32)[..., None, None]


def _model_class() -> type:
    tf = import_tensorflow()
    k = keras()

    class CycleGAN(k.Model):
        """The four networks and one training step; calling it denoises (``G``)."""

        def __init__(self, config: Any, patch: int, lowpass_sigma: float, **kwargs: Any):
            super().__init__(name="cyclegan", **kwargs)
            kw = dict(features=config.features, depth=config.depth, res_blocks=config.res_blocks)
            self.g = build_generator(**kw, name="g_noisy_to_clean")
            self.f = build_generator(**kw, name="f_clean_to_noisy")
            self.d_clean = build_discriminator(features=config.features, name="d_clean")
            self.d_noisy = build_discriminator(features=config.features, name="d_noisy")
            self.d_fft = (
                build_discriminator(features=config.features, name="d_fft")
                if config.fft_discriminator
                else None
            )
            self.pool_size = int(config.pool_size)
            self.cycle_weight = float(config.cycle_weight)
            self.identity_weight = float(config.identity_weight) * self.cycle_weight
            self.lowpass_weight = float(config.lowpass_weight)
            self.supervised_weight = float(config.supervised_weight)
            self.noisy_cycle = float(config.noisy_cycle)
            self.kernel = tf.constant(gaussian_kernel(lowpass_sigma))
            # the image pools: state of a run, not weights (a plain namespace is not tracked by
            # Keras, so the weight files hold the four networks only)
            zeros = tf.zeros((max(self.pool_size, 1), patch, patch, 1))
            self.pools = SimpleNamespace(
                clean=tf.Variable(zeros, trainable=False, name="pool_clean"),
                noisy=tf.Variable(zeros, trainable=False, name="pool_noisy"),
                count=tf.Variable(0, trainable=False, name="pooled"),
            )
            # epoch means (Keras resets the trackers that ``metrics`` lists every epoch)
            self.trackers = {n: k.metrics.Mean(name=n) for n in LOSSES}
            self.val_tracker = k.metrics.Mean(name="val")

        @property
        def metrics(self) -> list:
            return [*self.trackers.values(), self.val_tracker]

        def call(self, x: Any, training: bool = False) -> Any:
            return self.g(x, training=training)

        def build_all(self, patch: int) -> None:
            x = tf.zeros((1, patch, patch, 1))
            for net in self.networks():
                net(x)
            self(x)

        def networks(self) -> list:
            """The generators and discriminators (the FFT one when there is one)."""
            nets = [self.g, self.f, self.d_clean, self.d_noisy]
            return nets if self.d_fft is None else [*nets, self.d_fft]

        def lowpass(self, x: Any) -> Any:
            return tf.nn.conv2d(x, self.kernel, strides=1, padding="SAME")

        def _pool(self, pool: Any, fake: Any) -> Any:
            """Zhu et al.'s image pool: while filling, the new images; then each new image is
            swapped with a random pooled one half the time (the discriminator sees the old)."""
            size = self.pool_size
            if size == 0:
                return fake
            n = tf.shape(fake)[0]
            count = self.pools.count
            filling = count < size
            slots = tf.where(
                filling,
                tf.math.floormod(count + tf.range(n), size),
                tf.random.uniform([n], 0, size, dtype=tf.int32),
            )
            swap = tf.logical_and(tf.logical_not(filling), tf.random.uniform([n]) < 0.5)
            old = tf.gather(pool, slots)
            shown = tf.where(swap[:, None, None, None], old, fake)
            store = tf.logical_or(filling, swap)
            keep = tf.where(store[:, None, None, None], fake, old)
            pool.scatter_nd_update(slots[:, None], keep)
            return shown

        def _generator_losses(self, x: Any, y: Any, yn: Any) -> dict[str, Any]:
            fake_y, fake_x = self.g(x, training=True), self.f(y, training=True)
            # the noisy cycle x -> G -> F -> x asks F for the noise realisation of x back,
            # which only a G that keeps the noise allows (see the module text): weighted apart
            cycle = self.noisy_cycle * tf.reduce_mean(
                tf.abs(self.f(fake_y, training=True) - x)
            ) + tf.reduce_mean(tf.abs(self.g(fake_x, training=True) - y))
            identity = tf.reduce_mean(tf.abs(self.g(y, training=True) - y)) + tf.reduce_mean(
                tf.abs(self.f(x, training=True) - x)
            )
            lowpass = tf.reduce_mean(
                tf.abs(self.lowpass(fake_y) - self.lowpass(x))
            ) + tf.reduce_mean(tf.abs(self.lowpass(fake_x) - self.lowpass(y)))
            adversarial = tf.reduce_mean(
                tf.square(self.d_clean(fake_y, training=True) - 1)
            ) + tf.reduce_mean(tf.square(self.d_noisy(fake_x, training=True) - 1))
            if self.d_fft is not None:
                spectrum = power_spectrum(tf, fake_y)
                adversarial += tf.reduce_mean(tf.square(self.d_fft(spectrum, training=True) - 1))
            total = (
                adversarial
                + self.cycle_weight * cycle
                + self.identity_weight * identity
                + self.lowpass_weight * lowpass
            )
            supervised = tf.constant(0.0)
            if self.supervised_weight > 0:  # G(noisify(y)) ~= y: the synthetic supervision
                # squared, not L1: L1 is minimised by the median, and the median of a Poisson
                # count below one count per pixel (most pixels between the columns) is 0
                supervised = tf.reduce_mean(tf.square(self.g(yn, training=True) - y))
                total = total + self.supervised_weight * supervised
            return {
                "total": total, "adversarial": adversarial, "cycle": cycle,
                "identity": identity, "lowpass": lowpass, "supervised": supervised,
                "fake_y": fake_y, "fake_x": fake_x,
            }  # fmt: skip

        def train_step(self, data: Any) -> dict[str, Any]:
            x, y, yn = data
            g_vars = self.g.trainable_variables + self.f.trainable_variables
            with tf.GradientTape() as tape:
                losses = self._generator_losses(x, y, yn)
            self.optimizer.apply_gradients(zip(tape.gradient(losses["total"], g_vars), g_vars))
            fake_y = self._pool(self.pools.clean, tf.stop_gradient(losses["fake_y"]))
            fake_x = self._pool(self.pools.noisy, tf.stop_gradient(losses["fake_x"]))
            self.pools.count.assign(
                tf.minimum(self.pools.count + tf.shape(x)[0], max(self.pool_size, 1))
            )
            d_vars = self.d_clean.trainable_variables + self.d_noisy.trainable_variables
            if self.d_fft is not None:
                d_vars += self.d_fft.trainable_variables
            with tf.GradientTape() as tape:
                # LSGAN: real -> 1, generated -> 0, halved (Zhu et al.: D learns slower)
                d_loss = 0.5 * (
                    tf.reduce_mean(tf.square(self.d_clean(y, training=True) - 1))
                    + tf.reduce_mean(tf.square(self.d_clean(fake_y, training=True)))
                    + tf.reduce_mean(tf.square(self.d_noisy(x, training=True) - 1))
                    + tf.reduce_mean(tf.square(self.d_noisy(fake_x, training=True)))
                )
                if self.d_fft is not None:
                    real, fake = power_spectrum(tf, y), power_spectrum(tf, fake_y)
                    d_loss += 0.5 * (
                        tf.reduce_mean(tf.square(self.d_fft(real, training=True) - 1))
                        + tf.reduce_mean(tf.square(self.d_fft(fake, training=True)))
                    )
            self.optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))
            values = {
                "loss": losses["total"],
                "generator": losses["adversarial"],
                "discriminator": d_loss,
                "cycle": losses["cycle"],
                "identity": losses["identity"],
                "lowpass": losses["lowpass"],
                "supervised": losses["supervised"],
            }
            for name, value in values.items():
                self.trackers[name].update_state(value)
            return {name: t.result() for name, t in self.trackers.items()}

        def test_step(self, data: Any) -> dict[str, Any]:
            x = data[0] if isinstance(data, tuple) else data
            fake_y = self.g(x, training=False)
            cycle = tf.reduce_mean(tf.abs(self.f(fake_y, training=False) - x))
            lowpass = tf.reduce_mean(tf.abs(self.lowpass(fake_y) - self.lowpass(x)))
            cycle = self.noisy_cycle * self.cycle_weight * cycle
            self.val_tracker.update_state(cycle + self.lowpass_weight * lowpass)
            return {"loss": self.val_tracker.result()}

    return CycleGAN


def build_cyclegan(config: Any, *, patch: int, lowpass_sigma: float) -> Any:
    """The CycleGAN (built: its weights exist), compiled with one Adam(lr, beta1 = 0.5) for the
    generators' and the discriminators' alternating updates (its moments are per variable)."""
    k = keras()
    model = _model_class()(config, patch, lowpass_sigma)
    model.build_all(patch)
    model.compile(optimizer=k.optimizers.Adam(config.learning_rate, beta_1=0.5))
    # built for all four networks at once: each step updates one half of them
    model.optimizer.build(model.trainable_variables)
    return model


def linear_decay(learning_rate: float, total_steps: int) -> Any:
    """Zhu et al.'s schedule: ``learning_rate`` for the first half of the run, then linearly to
    0 (a continued run starts a new one)."""
    from .training import rate_schedule

    def rate(step: int) -> float:
        return learning_rate * min(1.0, max(0.0, 2.0 * (1.0 - step / max(total_steps, 1))))

    return rate_schedule(rate)


# ---------------------------------------------------------------------------------- training
LOWPASS_JSON = "cyclegan.json"  # the folder's side file: low-pass sigma, lattice, noise


def train_cyclegan(
    train: np.ndarray,
    val: np.ndarray,
    config: Any,
    folder: ModelFolder,
    info: ModelInfo,
    *,
    reference: np.ndarray | None,
    resume: bool,
    should_stop: ShouldStop,
) -> Iterator[Event]:
    """Train (or continue) the CycleGAN towards synthetic targets; returns ``(info, stopped)``."""
    from .training import fit_events

    tf = import_tensorflow()
    tf.random.set_seed(config.seed)
    if config.target == "reference" and reference is None:
        raise DeepInputError("cyclegan with target 'reference' needs the reference image")
    targets = TargetCrops(
        train, reference=reference, seed=draw_seed_int(config, info),
        vacancy_rate=config.vacancy_rate,
    )  # fmt: skip
    if resume:
        mean, std = info.mean, info.std
    else:
        mean, std = float(train.mean()), float(train.std())
    sigma = config.lowpass_sigma or targets.spacing
    folder.write_json(
        LOWPASS_JSON,
        {
            "lowpass_sigma": sigma,
            "spacing_px": targets.spacing,
            "basis_px": np.asarray(targets.lattice.basis).tolist(),
            "noise": targets.noise,
        },
    )
    model = build_cyclegan(config, patch=config.patch, lowpass_sigma=sigma)
    if resume:
        model.load_weights(str(folder.weights("last")))
    device = device_description()
    info = info.model_copy(update={"mean": mean, "std": std, "device": device})
    folder.write_info(info)
    yield Device(device, note=unusable_gpu())
    source = "the reference" if reference is not None else "the measured motif"
    yield Log(
        f"training cyclegan on {device}: targets from {source}, lattice spacing "
        f"{targets.spacing:.2f} px, low-pass sigma {sigma:.2f} px; measured noise: gain "
        f"{targets.noise['gain']:.3g}, offset variance {targets.noise['offset_variance']:.3g}"
    )
    vn = ((val[: max(1, min(len(val), 4))] - mean) / std)[..., None].astype(np.float32)
    rng = np.random.default_rng(draw_seed(config.seed, info.epochs_done))
    first = vn[:1]

    def preview(keras_model: Any) -> np.ndarray:
        return keras_model(first, training=False).numpy()[0, ..., 0] * std + mean

    batches = unpaired_batches(
        train, targets, batch=config.batch, mean=mean, std=std, rng=rng, aug=config.augment,
        supervised=config.supervised_weight > 0, jitter=config.supervised_jitter,
    )  # fmt: skip
    return (
        yield from fit_events(
            model,
            batches,
            (vn, vn),
            folder=folder,
            info=info,
            epochs=config.epochs,
            steps=config.steps,
            should_stop=should_stop,
            preview=preview,
            preview_name="cyclegan preview",
            extra_callbacks=[linear_decay(config.learning_rate, config.epochs * config.steps)],
        )
    )


def draw_seed_int(config: Any, info: ModelInfo) -> int:
    """The targets' seed: the config's, moved on by the epochs done (Continue draws new ones)."""
    return int(config.seed) + 7919 * int(info.epochs_done)


def generator_from_folder(folder: ModelFolder, info: ModelInfo, which: str = "best") -> Any:
    """The noisy -> clean generator of a CycleGAN folder with its ``which`` weights."""
    saved = folder.read_json(LOWPASS_JSON) if folder.file(LOWPASS_JSON).is_file() else {}
    config = info.train
    model = _model_class()(config, config.patch, float(saved.get("lowpass_sigma", 4.0)))
    model.build_all(config.patch)
    model.load_weights(str(folder.weights(which)))
    return model.g


def thickness_step(folder: ModelFolder, info: ModelInfo) -> Any:
    """``step(input, output)``: the input's cell mean in place of the output's
    (:func:`..em.thickness.keep_thickness`, on the basis the training measured), or None when
    the model's ``keep_thickness`` is off or its folder predates the saved basis."""
    if not info.train.keep_thickness or not folder.file(LOWPASS_JSON).is_file():
        return None
    basis = folder.read_json(LOWPASS_JSON).get("basis_px")
    if basis is None:
        return None
    from ..em.thickness import keep_thickness

    return lambda source, output: keep_thickness(output, source, np.asarray(basis))
