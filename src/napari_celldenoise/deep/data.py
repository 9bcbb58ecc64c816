"""Training data from the user's noisy layer: checks, axes, patches, augmentation (numpy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import TrainConfig

SPATIAL = "ZYX"


class DeepInputError(ValueError):
    """Bad input for training or prediction, found before anything is written (one line)."""


def check_axes(axes: str, ndim: int) -> str:
    """Normalise and validate an axes string (letters of TZCYX) against ``ndim``."""
    axes = axes.upper()
    if len(axes) != ndim:
        raise DeepInputError(f"axes {axes!r} do not match the data's {ndim} dimensions")
    if set(axes) - set("TZCYX") or len(set(axes)) != len(axes):
        raise DeepInputError(f"axes must be distinct letters of TZCYX, got {axes!r}")
    if "Y" not in axes or "X" not in axes:
        raise DeepInputError(f"the data needs Y and X axes, got {axes!r}")
    return axes


def default_axes(ndim: int) -> str:
    """YX, TYX (a stack of frames) or TZYX by number of dimensions."""
    if ndim not in (2, 3, 4):
        raise DeepInputError(f"expected a 2D, 3D or 4D image, got {ndim} dimensions")
    return {2: "YX", 3: "TYX", 4: "TZYX"}[ndim]


def to_samples(data: np.ndarray, axes: str, dims: int) -> tuple[np.ndarray, str]:
    """Reorder to ``S[Z]YX``: every non-spatial axis (and Z for a 2D network) becomes a sample.

    Returns the float32 array and the order of the original axes in it (``"TZYX"`` style) so
    that :func:`from_samples` can undo it. Multi-channel data is refused (select one channel).
    """
    axes = check_axes(axes, data.ndim)
    if "C" in axes and data.shape[axes.index("C")] > 1:
        raise DeepInputError("the image has several channels: select one channel (one layer)")
    if dims == 3 and "Z" not in axes:
        raise DeepInputError(f"a 3D network needs a Z axis, the data has axes {axes!r}")
    spatial = "ZYX" if dims == 3 else "YX"
    sample_axes = [a for a in axes if a not in spatial]
    order = sample_axes + list(spatial)
    arr = np.transpose(np.asarray(data), [axes.index(a) for a in order])
    n = int(np.prod(arr.shape[: len(sample_axes)])) if sample_axes else 1
    arr = arr.reshape((n, *arr.shape[len(sample_axes) :])).astype(np.float32, copy=False)
    return arr, "".join(order)


def check_values(arr: np.ndarray) -> None:
    """Refuse NaN/inf and constant data with a clear message."""
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(arr.size - np.count_nonzero(finite))
        raise DeepInputError(
            f"the image holds {bad} NaN or infinite values: fill or crop them before training"
        )
    if float(arr.std()) == 0.0:
        raise DeepInputError("the image is constant: nothing to learn")


def patch_shape(config: TrainConfig) -> tuple[int, ...]:
    """Training patch shape: ``(p, p)`` or, for 3D, ``(pz, p, p)`` with a thinner Z."""
    if config.dims == 3:
        div = 2**config.depth
        pz = max(div, (min(config.patch // 2, 32) // div) * div)
        return (pz, config.patch, config.patch)
    return (config.patch, config.patch)


@dataclass(frozen=True)
class Patches:
    """Non-overlapping patches split into training and validation sets (``N, [Z], Y, X``)."""

    train: np.ndarray
    val: np.ndarray


def make_patches(samples: np.ndarray, config: TrainConfig) -> Patches:
    """Cut ``samples`` (``S[Z]YX``) into a grid of patches and split them at random.

    Raises :class:`DeepInputError` when the image is smaller than one patch or yields fewer
    than two patches (one to train, one to validate).
    """
    shape = patch_shape(config)
    spatial = samples.shape[1:]
    if any(s < p for s, p in zip(spatial, shape)):
        raise DeepInputError(
            f"the image ({'x'.join(map(str, spatial))} pixels) is smaller than the training "
            f"patch ({'x'.join(map(str, shape))}): lower the patch size"
        )
    counts = [s // p for s, p in zip(spatial, shape)]
    pieces = []
    for index in np.ndindex(*counts):
        sl = tuple(slice(i * p, (i + 1) * p) for i, p in zip(index, shape))
        pieces.append(samples[(slice(None), *sl)])
    patches = np.concatenate(pieces, axis=0)
    if len(patches) < 2:
        raise DeepInputError(
            "the image holds only one patch: at least two are needed (train and validation); "
            "lower the patch size"
        )
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(patches))
    n_val = min(max(1, round(config.val_fraction * len(patches))), len(patches) - 1)
    return Patches(train=patches[order[n_val:]], val=patches[order[:n_val]])


def augment(batch: np.ndarray, rng: np.random.Generator, *extra: np.ndarray) -> tuple:
    """Random 90° rotation and flip per sample of channel-last batches ``N,[Z],Y,X,C``.

    ``extra`` arrays (targets, masks) get the same transform. Square patches only. Inputs are
    not modified.
    """
    arrays = [batch.copy(), *(e.copy() for e in extra)]
    for j in range(batch.shape[0]):
        k = int(rng.integers(4))
        flip = bool(rng.integers(2))
        for a in arrays:
            v = np.rot90(a[j], k, axes=(-3, -2))
            a[j] = v[..., ::-1, :] if flip else v
    return tuple(arrays)
