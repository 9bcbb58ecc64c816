"""structN2V masks chosen from the data: the spatial autocorrelation of the noise.

Broaddus et al. (ISBI 2020) hide, with every blind-spot pixel, the neighbours whose noise is
correlated with it (e.g. the line along which a scanner or camera read-out smears the noise);
otherwise the network learns to predict the noise from them. Which neighbours those are is read
from the noise autocorrelation: the pixels connected to the centre whose correlation stands
above the noise floor of the estimate.

Noise samples come from a background region the user draws, from the residual ``raw -
N2V prediction``, or (fallback) from the flattest blocks of the image (lowest local variance,
block means removed). Pure numpy/scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .data import DeepInputError, check_axes


@dataclass(frozen=True)
class MaskProposal:
    """Normalised autocorrelation (centre = 1), the proposed mask, and the floor used."""

    autocorrelation: np.ndarray
    mask: np.ndarray
    threshold: float
    floor_std: float


def noise_autocorrelation(noise: np.ndarray, *, radius: int = 7) -> np.ndarray:
    """Mean normalised autocorrelation of 2D noise patches (``...YX``), shape ``2r+1``.

    Each patch's mean is removed; lags are estimated without wrap-around (zero padding,
    divided by the number of overlapping pixel pairs). The centre is 1.
    """
    noise = np.asarray(noise, np.float64)
    patches = noise.reshape((-1, *noise.shape[-2:]))
    h, w = patches.shape[-2:]
    if h <= radius or w <= radius:
        raise DeepInputError(
            f"noise region {h}x{w} is too small for a {2 * radius + 1} wide autocorrelation"
        )
    shape = (2 * h, 2 * w)
    ones = np.fft.rfft2(np.ones((h, w)), s=shape)
    pairs = np.fft.irfft2(ones * np.conj(ones), s=shape)
    acc = np.zeros(shape)
    for p in patches:
        f = np.fft.rfft2(p - p.mean(), s=shape)
        acc += np.fft.irfft2(f * np.conj(f), s=shape)
    ac = np.fft.fftshift(acc / np.maximum(pairs, 1.0))
    c = (shape[0] // 2, shape[1] // 2)
    ac = ac[c[0] - radius : c[0] + radius + 1, c[1] - radius : c[1] + radius + 1]
    centre = ac[radius, radius]
    if centre <= 0:
        raise DeepInputError("the noise region has no variance (constant pixels)")
    return (ac / centre).astype(np.float32)


def propose_mask(
    autocorrelation: np.ndarray, *, k: float = 5.0, min_correlation: float = 0.05
) -> MaskProposal:
    """The pixels connected to the centre whose correlation exceeds the noise floor.

    The floor is the robust spread (MAD) of all off-centre values; the threshold is
    ``median + k * 1.4826 * MAD`` but at least ``min_correlation``. The mask is cropped to the
    smallest odd, centred rectangle holding it.
    """
    ac = np.asarray(autocorrelation, np.float64)
    r0, r1 = ac.shape[0] // 2, ac.shape[1] // 2
    off = np.delete(ac.ravel(), r0 * ac.shape[1] + r1)
    med = float(np.median(off))
    floor = 1.4826 * float(np.median(np.abs(off - med)))
    threshold = max(med + k * floor, min_correlation)
    above = ac > threshold
    above[r0, r1] = True
    labels, _ = ndi.label(above)
    mask = labels == labels[r0, r1]
    ys, xs = np.nonzero(mask)
    ry, rx = int(np.abs(ys - r0).max()), int(np.abs(xs - r1).max())
    mask = mask[r0 - ry : r0 + ry + 1, r1 - rx : r1 + rx + 1]
    return MaskProposal(ac.astype(np.float32), mask.astype(np.uint8), threshold, floor)


def flat_blocks(image: np.ndarray, *, block: int = 32, fraction: float = 0.15) -> np.ndarray:
    """The ``fraction`` of ``block``-sized tiles of a 2D image with the lowest variance."""
    h, w = image.shape[-2:]
    block = min(block, h, w)
    tiles = [
        image[..., y : y + block, x : x + block].reshape(-1, block, block)
        for y in range(0, h - block + 1, block)
        for x in range(0, w - block + 1, block)
    ]
    tiles = np.concatenate(tiles, axis=0)
    var = tiles.reshape(len(tiles), -1).var(axis=1)
    n = max(1, round(fraction * len(tiles)))
    return tiles[np.argsort(var)[:n]]


def mask_from_data(
    data: np.ndarray,
    axes: str,
    *,
    region: tuple[slice, slice] | None = None,
    residual: np.ndarray | None = None,
    radius: int = 7,
    k: float = 5.0,
) -> MaskProposal:
    """Propose a structN2V mask for ``data`` (axes ``...YX``).

    Parameters
    ----------
    data
        The noisy image or stack.
    axes
        Its axes (``YX``, ``TYX``, ``ZYX``...); every non-YX axis is treated as samples.
    region
        ``(slice_y, slice_x)`` of a background region holding pure noise, if drawn.
    residual
        ``raw - prediction`` of a first N2V model (same shape as ``data``), if available.
    radius, k
        Half-size of the autocorrelation window; floor multiplier (see :func:`propose_mask`).
    """
    axes = check_axes(axes, np.ndim(data))
    source = np.asarray(residual if residual is not None else data, np.float64)
    order = [axes.index(a) for a in axes if a not in "YX"] + [axes.index("Y"), axes.index("X")]
    shape_yx = (source.shape[axes.index("Y")], source.shape[axes.index("X")])
    stack = np.transpose(source, order).reshape((-1, *shape_yx))
    if not np.isfinite(stack).all():
        raise DeepInputError("the image holds NaN or infinite values")
    if region is not None:
        noise = stack[:, region[0], region[1]]
    elif residual is not None:
        noise = stack
    else:
        noise = flat_blocks(stack, block=max(4 * radius, 32))
    ac = noise_autocorrelation(noise, radius=radius)
    return propose_mask(ac, k=k)
