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


def check_finite(arr: np.ndarray, *, before: str = "training", where: str = "the image") -> None:
    """Refuse NaN/inf with a clear message (a NaN spreads over a network's receptive field)."""
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(arr.size - np.count_nonzero(finite))
        raise DeepInputError(
            f"{where} holds {bad} NaN or infinite values: fill or crop them before {before}"
        )


def check_values(arr: np.ndarray) -> None:
    """Refuse NaN/inf and constant training data with a clear message."""
    check_finite(arr)
    if float(arr.std()) == 0.0:
        raise DeepInputError("the image is constant: nothing to learn")


@dataclass(frozen=True)
class Patches:
    """Non-overlapping patches split into training and validation sets (``N, [Z], Y, X``).

    ``val_origin`` is where ``val[0]`` (the patch that previews and the export's test input
    come from) was cut: ``(sample, [z,] y, x)`` of its first pixel in the ``S[Z]YX`` samples.
    """

    train: np.ndarray
    val: np.ndarray
    val_origin: tuple[int, ...] = ()


def make_patches(samples: np.ndarray, config: TrainConfig) -> Patches:
    """Cut ``samples`` (``S[Z]YX``) into patches for training and validation.

    Without ``config.val_region`` the image is cut into a grid of non-overlapping patches
    split at random (``val_fraction``). With it, the validation patches tile the region (in
    every sample) and the training patches are the grid patches that do not touch it, so no
    validation pixel is ever trained on.

    Raises :class:`DeepInputError` when the image (or the region) is smaller than one patch,
    or there are not at least one training and one validation patch.
    """
    shape = config.patch_shape
    spatial = samples.shape[1:]
    if any(s < p for s, p in zip(spatial, shape)):
        raise DeepInputError(
            f"the image ({_size(spatial)} pixels) is smaller than the training "
            f"patch ({_size(shape)}): lower the patch size"
        )
    if config.val_region is not None:
        return _region_split(samples, shape, config.val_region)
    grid = _grid(spatial, shape)
    patches = np.concatenate([samples[(slice(None), *sl)] for sl in grid])
    if len(patches) < 2:
        raise DeepInputError(
            "the image holds only one patch: at least two are needed (train and validation); "
            "lower the patch size"
        )
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(patches))
    n_val = min(max(1, round(config.val_fraction * len(patches))), len(patches) - 1)
    cell, sample = divmod(int(order[0]), len(samples))  # patches are grid cell-major
    origin = (sample, *(sl.start for sl in grid[cell]))
    return Patches(train=patches[order[n_val:]], val=patches[order[:n_val]], val_origin=origin)


def _size(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _grid(
    spatial: tuple[int, ...], shape: tuple[int, ...], origin: tuple[int, ...] | None = None
) -> list[tuple[slice, ...]]:
    """Slices of the non-overlapping ``shape`` patches inside ``spatial`` from ``origin``."""
    origin = origin or (0,) * len(shape)
    counts = [(s - o) // p for s, o, p in zip(spatial, origin, shape)]
    return [
        tuple(slice(o + i * p, o + (i + 1) * p) for i, o, p in zip(index, origin, shape))
        for index in np.ndindex(*counts)
    ]


def _region_split(samples: np.ndarray, shape: tuple[int, ...], region: list[list[int]]) -> Patches:
    spatial = samples.shape[1:]
    if len(region) > len(spatial):
        raise DeepInputError(
            f"the validation region has {len(region)} ranges, the network's patches "
            f"{len(spatial)} axes"
        )
    # a YX region of a 3D network spans all of Z
    full = [[0, n] for n in spatial[: len(spatial) - len(region)]] + [list(r) for r in region]
    box = [(max(0, a), min(n, b)) for (a, b), n in zip(full, spatial)]
    sides = tuple(b - a for a, b in box)
    if any(s <= 0 for s in sides):
        raise DeepInputError(
            f"the validation region {region} lies outside the image ({_size(spatial)} pixels)"
        )
    if any(s < p for s, p in zip(sides, shape)):
        raise DeepInputError(
            f"the validation region ({_size(sides)} pixels inside the image) is smaller "
            f"than the training patch ({_size(shape)}): draw a larger region or lower the "
            "patch size"
        )
    inside = _grid(tuple(b for _, b in box), shape, tuple(a for a, _ in box))
    val = np.concatenate([samples[(slice(None), *sl)] for sl in inside])

    def touches(sl: tuple[slice, ...]) -> bool:
        return all(s.start < b and s.stop > a for s, (a, b) in zip(sl, box))

    outside = [sl for sl in _grid(spatial, shape) if not touches(sl)]
    if not outside:
        raise DeepInputError(
            "the validation region leaves no whole training patch outside it: draw a smaller "
            "region or lower the patch size"
        )
    train = np.concatenate([samples[(slice(None), *sl)] for sl in outside])
    return Patches(train=train, val=val, val_origin=(0, *(sl.start for sl in inside[0])))


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


def structure_weights(patches: np.ndarray, share: float) -> np.ndarray | None:
    """Probability of drawing each training patch: a ``share`` of draws follows structure.

    Fluorescence fields are mostly dark background (FMD fov1: 35 of its 64 patches), so
    uniform draws spend most training steps where the network has little to learn. A patch's
    structure is the standard deviation of its 3x3(x3) local means (the noise mostly averaged
    out); ``share`` of the draws are in proportion to it, the rest uniform, so the background
    is still learnt. Returns ``None`` (uniform draws) for ``share == 0`` or a flat patch set.
    """
    from scipy.ndimage import uniform_filter

    n = len(patches)
    if share <= 0 or n == 0:
        return None
    axes = tuple(range(1, patches.ndim))
    smooth = uniform_filter(np.asarray(patches, np.float32), size=(1, *(3,) * len(axes)))
    structure = smooth.std(axis=axes).astype(np.float64)
    if not np.isfinite(structure).all() or structure.sum() <= 0:
        return None
    return (1 - share) / n + share * structure / structure.sum()


# PG's loss counts every pixel, so 2**18 validation pixels (64 patches of 64 x 64) are ample
# to rank its epochs (not compared against the full split); on FMD's 50 frames the 10 %
# split holds 320 patches, whose pass after every epoch took about 12 % of a 40-step epoch
VAL_PIXELS = 2**18


def validation_subset(val: np.ndarray, pixels: int = VAL_PIXELS) -> np.ndarray:
    """The first patches of ``val`` (``N, [Z,] Y, X``) up to ``pixels`` in all, at least one.

    For losses over every pixel (PG); n2v's validation scores only its few hidden pixels per
    patch and keeps the whole split.
    """
    per_patch = int(np.prod(val.shape[1:]))
    return val[: max(1, pixels // per_patch)]


def draw_seed(seed: int, epochs_done: int) -> int | list[int]:
    """Seed of a run's patch draws and augmentations.

    A first run uses ``seed`` itself; a continued one (``epochs_done`` > 0) mixes in the epochs
    already trained, so Continue draws new batches instead of replaying the first run's.
    """
    return seed if epochs_done == 0 else [seed, epochs_done]
