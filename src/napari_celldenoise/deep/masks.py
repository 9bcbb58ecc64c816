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

from .data import DeepInputError, check_axes

# Hiding a neighbour costs the network that neighbour's signal, so a weak noise correlation is
# cheaper to leave than to mask. Measured here (FMD avg50 as the clean image, 16 frames of
# Gaussian noise of sigma 8 correlated along X at lag 1 only; N2V against structN2V with a 1x3
# mask, 6 x 40 steps of 16 x 64^2, seeds split by /; benchmarks/mask_threshold.py), the mask's
# gain in dB: at 0.05 -1.9 / -2.1, at 0.15 -0.1 / -2.9, at 0.2 -0.4 / +0.6 / -0.6 / -0.3 (mean
# -0.16), at 0.25 +0.4 / +1.6 / +1.5 / -0.01 (mean +0.87), at 0.3 +0.8 / +0.1 / +0.4, at 0.5 +4.3.
MIN_MASK_CORRELATION = 0.25


@dataclass(frozen=True)
class MaskProposal:
    """Normalised autocorrelation (centre = 1), the proposed mask, and the floor used."""

    autocorrelation: np.ndarray
    mask: np.ndarray
    threshold: float
    floor_std: float

    @property
    def strongest(self) -> float:
        """The largest correlation with a face neighbour of the centre.

        A mask grows from the centre through face neighbours only, so this value against the
        threshold says whether anything is hidden; a strong correlation further out (e.g.
        periodic read-out noise) that is not connected to the centre is not masked.
        """
        ac = np.asarray(self.autocorrelation, np.float64)
        centre = np.array([n // 2 for n in ac.shape])
        values = []
        for axis in range(ac.ndim):
            for step in (-1, 1):
                at = centre.copy()
                at[axis] += step
                values.append(ac[tuple(at)])
        return float(max(values))

    @property
    def hides_nothing(self) -> bool:
        """The mask is the blind spot alone: structN2V would train as N2V."""
        return self.mask.size == 1

    def describe(self) -> str:
        """One line for the user: the mask, the strongest correlation and the threshold."""
        shape = "x".join(str(n) for n in self.mask.shape)
        text = (
            f"proposed mask {shape} (strongest neighbour correlation {self.strongest:.3f}, "
            f"threshold {self.threshold:.3f})"
        )
        if self.hides_nothing:
            text += ": no neighbour is worth hiding, so structN2V would train as N2V"
        return text


def noise_autocorrelation(noise: np.ndarray, *, radius: int = 7, ndim: int = 2) -> np.ndarray:
    """Mean normalised autocorrelation of noise patches (``...YX`` or ``...ZYX``), ``2r+1`` wide.

    ``ndim`` trailing axes are the patch (2: YX, 3: ZYX). Each patch's mean is removed; lags are
    estimated without wrap-around (zero padding, divided by the number of overlapping pixel
    pairs). The centre is 1.
    """
    noise = np.asarray(noise, np.float64)
    patches = noise.reshape((-1, *noise.shape[-ndim:]))
    sides = patches.shape[1:]
    if any(n <= radius for n in sides):
        raise DeepInputError(
            f"noise region {'x'.join(map(str, sides))} is too small for a {2 * radius + 1} "
            "wide autocorrelation"
        )
    shape = tuple(2 * n for n in sides)
    axes = tuple(range(ndim))
    ones = np.fft.rfftn(np.ones(sides), s=shape, axes=axes)
    pairs = np.fft.irfftn(ones * np.conj(ones), s=shape, axes=axes)
    acc = np.zeros(shape)
    for p in patches:
        f = np.fft.rfftn(p - p.mean(), s=shape, axes=axes)
        acc += np.fft.irfftn(f * np.conj(f), s=shape, axes=axes)
    ac = np.fft.fftshift(acc / np.maximum(pairs, 1.0))
    ac = ac[tuple(slice(n // 2 - radius, n // 2 + radius + 1) for n in shape)]
    centre = ac[(radius,) * ndim]
    if centre <= 0:
        raise DeepInputError("the noise region has no variance (constant pixels)")
    return (ac / centre).astype(np.float32)


def propose_mask(
    autocorrelation: np.ndarray, *, k: float = 5.0, min_correlation: float = MIN_MASK_CORRELATION
) -> MaskProposal:
    """The pixels connected to the centre whose correlation exceeds the noise floor.

    The floor is the robust spread (MAD) of all off-centre values; the threshold is
    ``median + k * 1.4826 * MAD`` but at least ``min_correlation`` (a weaker correlation costs
    less than hiding the neighbour, see ``MIN_MASK_CORRELATION``). The mask is cropped to the
    smallest odd, centred rectangle holding it.
    """
    from scipy import ndimage as ndi  # here, so the CLI can read the threshold without scipy

    ac = np.asarray(autocorrelation, np.float64)
    c = tuple(n // 2 for n in ac.shape)
    off = np.delete(ac.ravel(), np.ravel_multi_index(c, ac.shape))
    med = float(np.median(off))
    floor = 1.4826 * float(np.median(np.abs(off - med)))
    threshold = max(med + k * floor, min_correlation)
    above = ac > threshold
    above[c] = True
    labels, _ = ndi.label(above)  # face connectivity, as `MaskProposal.strongest` assumes
    mask = labels == labels[c]
    reach = [int(np.abs(idx - ci).max()) for idx, ci in zip(np.nonzero(mask), c)]
    mask = mask[tuple(slice(ci - r, ci + r + 1) for ci, r in zip(c, reach))]
    return MaskProposal(ac.astype(np.float32), mask.astype(np.uint8), threshold, floor)


def flat_blocks(
    image: np.ndarray, *, block: int = 32, fraction: float = 0.15, ndim: int = 2
) -> np.ndarray:
    """The ``fraction`` of ``block``-sized YX tiles with the lowest variance.

    ``ndim`` 3: tiles keep the whole Z axis (``...ZYX`` in, ``N, Z, block, block`` out).
    """
    h, w = image.shape[-2:]
    block = min(block, h, w)
    depth = image.shape[-ndim:-2]
    tiles = [
        image[..., y : y + block, x : x + block].reshape(-1, *depth, block, block)
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
    dims: int = 2,
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
    dims
        2: a YX mask (every non-YX axis is samples); 3: a ZYX mask for a 3D network (the data
        needs a Z axis; the radius along Z is cut to fit it).
    """
    axes = check_axes(axes, np.ndim(data))
    source = np.asarray(residual if residual is not None else data, np.float64)
    spatial = "ZYX" if dims == 3 else "YX"
    if dims == 3 and "Z" not in axes:
        raise DeepInputError(f"a 3D mask needs a Z axis, the data has {axes}")
    order = [axes.index(a) for a in axes if a not in spatial] + [axes.index(a) for a in spatial]
    shape = tuple(source.shape[axes.index(a)] for a in spatial)
    stack = np.transpose(source, order).reshape((-1, *shape))
    if not np.isfinite(stack).all():
        raise DeepInputError("the image holds NaN or infinite values")
    if region is not None:
        noise = stack[(Ellipsis, region[0], region[1])]
    elif residual is not None:
        noise = stack
    else:
        noise = flat_blocks(stack, block=max(4 * radius, 32), ndim=dims)
    ac = noise_autocorrelation(noise, radius=radius, ndim=dims)
    if dims == 3:  # lags along Z up to what the volume supports
        rz = min(radius, (shape[0] - 1) // 2)
        ac = ac[radius - rz : radius + rz + 1]
    return propose_mask(ac, k=k)
