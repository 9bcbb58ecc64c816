"""Noise2Void and structured Noise2Void through the ``n2v`` package.

Krull, Buchholz & Jug, "Noise2Void - Learning Denoising from Single Noisy Images", CVPR 2019;
Broaddus, Krull, Weigert, Schmidt & Myers, "Removing Structured Noise with Self-Supervised
Blind-Spot Networks", ISBI 2020 (structN2V: the masked pixel's correlated neighbours, given by
a mask, are hidden too).

``n2v`` provides the U-Net, the masking data wrapper and the loss; this module adds the event
stream, Stop within one batch, best/last weights in a model folder, augmentation per batch,
resume, and tiled prediction.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..jobs import Calibration, Device, Event, Log
from ._tf import (
    device_description,
    import_n2v,
    import_tensorflow,
    quiet_stdout,
    unusable_gpu,
)
from .calibration import CALIBRATION, describe, read_lines
from .config import TrainConfig
from .data import DeepInputError, augment, draw_seed, validation_subset
from .model import N2V_CONFIG, ModelFolder, ModelInfo


def receptive_radius(depth: int) -> int:
    """Context (pixels) a tile needs for an n2v U-Net of ``depth`` with 3x3 kernels.

    Two 3x3 convolutions per level on the way down, at the bottom and up again, plus pooling
    offsets: ``4 (2**d - 1) + 3 * 2**d`` rounded up to a multiple of ``2**d``.
    """
    r = 4 * (2**depth - 1) + 3 * 2**depth
    return int(np.ceil(r / 2**depth) * 2**depth)


def _n2v_config(n: Any, x: np.ndarray, config: TrainConfig) -> Any:
    axes = "ZYXC" if config.dims == 3 else "YXC"
    with quiet_stdout():
        return n.N2VConfig(
            x,
            axes=axes,
            unet_kern_size=3,
            unet_n_depth=config.depth,
            unet_n_first=config.features,
            train_steps_per_epoch=config.steps,
            train_epochs=config.epochs,
            train_loss="mse",
            batch_norm=config.batch_norm,
            train_batch_size=config.batch,
            train_learning_rate=config.learning_rate,
            n2v_perc_pix=config.perc_pix,
            n2v_patch_shape=tuple(x.shape[1:-1]),
            n2v_manipulator="uniform_withCP",
            n2v_neighborhood_radius=config.radius,
            structN2Vmask=_mask_list(config),
            train_tensorboard=False,
            train_checkpoint=None,
        )


def _mask_list(config: TrainConfig) -> list | None:
    mask = config.blind_spot_mask()
    return None if mask is None else mask.tolist()


def _n2v_model(n: Any, cfg: Any) -> Any:
    """An ``n2v.models.N2V`` whose own folder (it insists on one) is a throw-away directory."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="celldenoise-n2v-") as tmp, quiet_stdout():
        return n.N2V(cfg, name="network", basedir=tmp)


def build_from_folder(folder: ModelFolder, info: ModelInfo, which: str = "best") -> Any:
    """The Keras model of an N2V folder with its ``which`` weights and their calibration.

    The output is ``alpha * network + beta`` (normalised units) with the line fitted after
    training (:mod:`.calibration`); folders without one predict with the network alone.
    """
    n = import_n2v()
    raw = folder.read_json(N2V_CONFIG)
    with quiet_stdout():
        cfg = n.N2VConfig(np.array([]), **raw)
    model = _n2v_model(n, cfg)
    path = folder.weights(which)
    model.keras_model.load_weights(str(path))
    line = read_lines(folder).get(path.name)
    if line is None:
        return model.keras_model
    from ._tf import keras

    net = model.keras_model
    scaled = keras().layers.Rescaling(scale=line[0], offset=line[1], name="calibration")
    return keras().Model(net.input, scaled(net.output), name="n2v_calibrated")


def hiding_spacing(mask: np.ndarray | None, sides: tuple[int, ...]) -> tuple[int, ...]:
    """Cells of one hidden pixel per axis: 8, or wider than the structN2V mask so that the
    hidings do not overlap, but never wider than the validation patch."""
    extent = mask.shape if mask is not None else (1,) * len(sides)
    return tuple(min(max(8, m + 1), s) for m, s in zip(extent, sides))


def _calibrate_weights(
    keras_model: Any, folder: ModelFolder, clean_val: np.ndarray, config: TrainConfig
) -> Iterator[Event]:
    """Fit the output line of the best and the last weights on hidden validation pixels."""
    from .calibration import calibrate

    mask = config.blind_spot_mask()
    spacing = hiding_spacing(mask, clean_val.shape[1:])

    def run_net(samples: np.ndarray) -> np.ndarray:
        return keras_model.predict(samples[..., None], batch_size=config.batch, verbose=0)[..., 0]

    lines: dict[str, list[float]] = {}
    for which in ("last", "best"):
        try:
            path = folder.weights(which)
        except ValueError:
            continue
        if path.name in lines:
            continue
        keras_model.load_weights(str(path))
        alpha, beta = calibrate(
            run_net, clean_val, spacing=spacing, radius=config.radius, mask=mask, seed=config.seed
        )
        lines[path.name] = [alpha, beta]
        yield Calibration(path.name, alpha, beta)
        yield Log(f"output calibration of {path.name}: {describe((alpha, beta))} (normalised)")
    folder.write_json(CALIBRATION, lines)


def train_n2v(
    train: np.ndarray,
    val: np.ndarray,
    config: TrainConfig,
    folder: ModelFolder,
    info: ModelInfo,
    *,
    resume: bool,
    should_stop: Any,
) -> Iterator[Event]:
    """Train (or continue) an N2V/structN2V network on normalised-later raw patches ``N[Z]YX``.

    Yields events; returns ``(info, stopped)``.
    """
    from .training import fit_events

    tf = import_tensorflow()
    n = import_n2v()
    seed = draw_seed(config.seed, info.epochs_done)
    np.random.seed(seed)  # noqa: NPY002 - the n2v data wrapper draws from the global generator
    tf.random.set_seed(config.seed)
    x = train[..., None].astype(np.float32)
    n2v_cfg = _n2v_config(n, x, config)
    if resume:
        n2v_cfg.means, n2v_cfg.stds = [str(info.mean)], [str(info.std)]
    mean, std = float(n2v_cfg.means[0]), float(n2v_cfg.stds[0])
    from . import strategy  # built and compiled in the worker's tf.distribute scope, if any

    with strategy.scope():
        model = _n2v_model(n, n2v_cfg)
        with quiet_stdout():
            model.prepare_for_training()
    strategy.enable_jit(model.keras_model)
    if resume:
        model.keras_model.load_weights(str(folder.weights("last")))
    else:
        folder.write_json(N2V_CONFIG, {k: _jsonable(v) for k, v in vars(n2v_cfg).items()})
    device = device_description()
    info = info.model_copy(update={"mean": mean, "std": std, "device": device})
    folder.write_info(info)
    yield Device(device, note=unusable_gpu())
    yield Log(
        f"training {config.method} on {device}: {len(x)} training, {len(val)} validation patches"
    )

    xn = (x - mean) / std
    yn = np.concatenate([xn, np.zeros_like(xn)], axis=-1)
    manipulator = n.manipulator("uniform_withCP", config.radius)
    mask = config.blind_spot_mask()
    with quiet_stdout():
        wrapper = n.N2V_DataWrapper(
            xn,
            yn,
            config.batch,
            length=config.steps * config.epochs,
            perc_pix=config.perc_pix,
            shape=tuple(x.shape[1:-1]),
            value_manipulation=manipulator,
            structN2Vmask=mask,
        )
    rng = np.random.default_rng(seed)

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        i = empty = 0
        while True:
            with quiet_stdout():
                bx, by = wrapper[i % len(wrapper)]
            i += 1
            if i % len(wrapper) == 0:
                wrapper.on_epoch_end()
            if not by[..., 1].any():
                # n2v's masked loss is 0/0 = NaN on a batch without a hidden pixel (small 3D
                # patches: its 3D grid hides one pixel per 22^3 voxels): draw another batch
                empty += 1
                if empty > 200:
                    raise DeepInputError(
                        f"n2v hides no pixel in batches of {config.batch} patches of "
                        f"{x.shape[1:-1]}: use a larger patch, batch or perc_pix"
                    )
                continue
            empty = 0
            yield augment(bx, rng, by) if config.augment else (bx.copy(), by.copy())

    vx = (val[..., None].astype(np.float32) - mean) / std
    clean_all = vx[..., 0].copy()
    clean_val = vx[:1].copy()
    vx, vy = _validation_targets(clean_all, config, rng)

    def preview(keras_model: Any) -> np.ndarray:
        out = keras_model(clean_val, training=False).numpy()[0, ..., 0]
        return out * std + mean

    result = yield from fit_events(
        model.keras_model,
        batches(),
        (vx, vy),
        folder=folder,
        info=info,
        epochs=config.epochs,
        steps=config.steps,
        should_stop=should_stop,
        preview=preview,
        preview_name=f"{config.method} preview",
        extra_callbacks=model.callbacks,
    )
    # a capped subset (as PG's validation): all 320 FMD patches would take an estimated
    # 2 minutes after Stop (16 x 320 predictions of 26 ms), past the dock's 60 s grace
    yield from _calibrate_weights(model.keras_model, folder, validation_subset(clean_all), config)
    return result


def _validation_targets(
    clean: np.ndarray, config: TrainConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Validation inputs and n2v targets (value, hidden flag) with hidden pixels in every patch.

    The pixels are hidden as in training (:func:`.calibration.hide_points`: a neighbour's value,
    the structN2V mask's other pixels randomised), one per cell of ``perc_pix`` density, so no
    patch is without a target (n2v's own validation hiding leaves small 3D patches empty).
    """
    from .calibration import hide_points

    spacing = round((100 / config.perc_pix) ** (1 / (clean.ndim - 1)))
    spacing = max(2, min(spacing, *clean.shape[1:]))
    mask = config.blind_spot_mask()
    hidden, where = hide_points(clean, rng, spacing=spacing, radius=config.radius, mask=mask)
    target = np.zeros((*clean.shape, 2), np.float32)
    target[(*where, 0)] = clean[where]
    target[(*where, 1)] = 1.0
    return hidden[..., None], target


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value
