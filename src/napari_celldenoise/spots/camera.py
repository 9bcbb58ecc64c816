"""Does a camera offset fit the image? A dark-level estimate from the pixels themselves.

The camera offset (baseline, in ADU) is subtracted before pixels are converted to
photoelectrons. When it is far below what the camera really adds, every pixel carries a large
false background whose shot noise drowns faint spots; when it is above the darkest pixels,
those become negative photon counts. Neither is visible in the result, so the dock compares
the offset with the image (:func:`check_offset`) and proposes one (:func:`estimate_offset`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

LOW_PERCENTILE = 1.0
"""The image's "low percentile": an offset above it turns more than 1 % of pixels negative."""

FAR_BELOW = 0.5
"""An offset below this fraction of the dark level is "far below" it."""


def _dark_level(image: np.ndarray, block: int) -> tuple[float, float]:
    """(dark level, pixel noise) of the darkest background of a 2D image, in ADU."""
    from scipy import ndimage as ndi

    a = np.asarray(image, np.float64)
    if min(a.shape) < 2 * block:
        block = 1
    smooth = ndi.uniform_filter(a, block, mode="reflect") if block > 1 else a
    dark = float(np.percentile(smooth, LOW_PERCENTILE))
    region = smooth <= np.percentile(smooth, 10.0)  # the darkest tenth: background
    resid = (a - smooth)[region]
    mad = float(np.median(np.abs(resid - np.median(resid)))) if resid.size else 0.0
    # a pixel minus the mean of its block x block neighbourhood keeps (1 - 1/block^2) of the
    # pixel variance
    keep = 1.0 - 1.0 / block**2 if block > 1 else 1.0
    noise = 1.4826 * mad / np.sqrt(keep) if keep > 0 else 0.0
    return dark, noise


def estimate_offset(image: np.ndarray, *, block: int = 4) -> float:
    """An offset estimate (ADU): the dark level of the image's background minus 3 noise std.

    The image is smoothed with a ``block`` x ``block`` mean, which divides the shot and read
    noise of each pixel by ``block`` while keeping the background level; the 1st percentile of
    the smoothed image is the level of the darkest background (a quantile, so hot and dead
    pixels do not move it as they move the minimum). The pixel noise there is the median
    absolute deviation of the pixels from their smoothed value, scaled to a standard
    deviation (1.4826 MAD, a robust estimator insensitive to the spots). The estimate sits 3
    noise std below the dark level, so that almost no background pixel becomes negative,
    and never above the image's own 1st percentile.

    Parameters
    ----------
    image
        A 2D frame in camera ADU (for a stack, pass one plane).
    block
        Side of the smoothing block in pixels.

    Returns
    -------
    float
        The proposed offset, rounded down to a whole ADU, at least the image's minimum.
    """
    a = np.asarray(image)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"estimate_offset takes a 2D frame, got shape {a.shape}")
    dark, noise = _dark_level(a, block)
    low = float(np.percentile(a, LOW_PERCENTILE))
    estimate = min(dark - 3.0 * noise, low)
    return float(np.floor(max(estimate, float(np.min(a)))))


@dataclass(frozen=True)
class OffsetCheck:
    """How an offset compares with an image.

    Attributes
    ----------
    verdict
        ``"ok"``, ``"above"`` (above the image's 1st percentile) or ``"far_below"`` (below
        half the proposed offset).
    offset
        The offset checked (ADU).
    estimate
        The offset :func:`estimate_offset` proposes (ADU).
    low
        The image's 1st percentile (ADU).
    """

    verdict: Literal["ok", "above", "far_below"]
    offset: float
    estimate: float
    low: float

    @property
    def message(self) -> str:
        """One line for the user: empty when the offset fits."""
        if self.verdict == "above":
            return (
                f"offset {self.offset:g} is above the image's darkest 1 % ({self.low:g} ADU): "
                f"those pixels count as negative photons; the image suggests {self.estimate:g}"
            )
        if self.verdict == "far_below":
            return (
                f"offset {self.offset:g} is far below the image's dark level: the background "
                f"counts as light; the image suggests {self.estimate:g}"
            )
        return ""


def check_offset(image: np.ndarray, offset: float, *, block: int = 4) -> OffsetCheck:
    """Compare ``offset`` with ``image`` (a 2D frame in ADU) and propose an estimate.

    The offset is ``"above"`` when it exceeds the image's 1st percentile and ``"far_below"``
    when it is less than half of :func:`estimate_offset` (then more than half of the darkest
    background would be taken for light). A far-below offset can be right when the
    background really is bright, which is why the dock proposes rather than changes it.
    """
    a = np.asarray(image)
    estimate = estimate_offset(a, block=block)
    low = float(np.percentile(a, LOW_PERCENTILE))
    offset = float(offset)
    if offset > low:
        verdict: Literal["ok", "above", "far_below"] = "above"
    elif offset < FAR_BELOW * estimate:
        verdict = "far_below"
    else:
        verdict = "ok"
    return OffsetCheck(verdict, offset, estimate, low)
