"""Image quality against a reference: PSNR, SSIM and the affine-fitted PSNR.

* PSNR uses the data range of the reference's dtype for integer references (255 for uint8),
  ``max - min`` of the reference for float ones, or the range given.
* SSIM (Wang et al. 2004, scikit-image's implementation) is computed per YX plane and averaged
  for stacks, with the same data range.
* The affine-fitted PSNR first maps the image by the least-squares ``alpha * x + beta`` onto the
  reference (as in Weigert et al. 2018, CARE), so that images whose intensities are scaled or
  offset differently (another camera gain, a normalised network output) compare fairly.
"""

from __future__ import annotations

import numpy as np


class ShapeMismatch(ValueError):
    """The image and the reference do not have the same shape."""


def data_range_of(reference: np.ndarray) -> float:
    """The PSNR data range implied by ``reference``: its dtype's range or its own span."""
    reference = np.asarray(reference)
    if np.issubdtype(reference.dtype, np.integer):
        info = np.iinfo(reference.dtype)
        return float(info.max) - float(min(info.min, 0))
    if reference.dtype == bool:
        return 1.0
    span = float(np.nanmax(reference) - np.nanmin(reference))
    return span if span > 0 else 1.0


def _check(image: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image, reference = np.asarray(image), np.asarray(reference)
    if image.shape != reference.shape:
        raise ShapeMismatch(f"shapes differ: image {image.shape} vs reference {reference.shape}")
    return image.astype(np.float64), reference.astype(np.float64)


def psnr(image: np.ndarray, reference: np.ndarray, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB (inf for identical images)."""
    dr = data_range_of(reference) if data_range is None else float(data_range)
    x, r = _check(image, reference)
    mse = float(np.mean((x - r) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(dr * dr / mse))


def affine_fit(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``alpha * image + beta`` closest to ``reference`` in the least-squares sense."""
    x, r = _check(image, reference)
    xm, rm = x.mean(), r.mean()
    var = float(np.mean((x - xm) ** 2))
    alpha = float(np.mean((x - xm) * (r - rm)) / var) if var > 0 else 0.0
    return alpha * (x - xm) + rm


def psnr_affine(image: np.ndarray, reference: np.ndarray, data_range: float | None = None) -> float:
    """PSNR after the least-squares affine map of ``image`` onto ``reference``."""
    dr = data_range_of(reference) if data_range is None else float(data_range)
    return psnr(affine_fit(image, reference), np.asarray(reference, dtype=np.float64), dr)


def ssim(image: np.ndarray, reference: np.ndarray, data_range: float | None = None) -> float:
    """Mean structural similarity, per YX plane for stacks (scikit-image, 7x7 window)."""
    from skimage.metrics import structural_similarity

    dr = data_range_of(reference) if data_range is None else float(data_range)
    x, r = _check(image, reference)
    if x.ndim < 2:
        raise ShapeMismatch("SSIM needs images of at least 2 dimensions")
    planes_x = x.reshape(-1, *x.shape[-2:])
    planes_r = r.reshape(-1, *r.shape[-2:])
    win = min(7, *x.shape[-2:])
    win = win if win % 2 else win - 1
    if win < 3:
        raise ShapeMismatch(f"images of {x.shape[-2:]} pixels are too small for SSIM")
    values = [
        structural_similarity(px, pr, data_range=dr, win_size=win)
        for px, pr in zip(planes_x, planes_r)
    ]
    return float(np.mean(values))


def compare(
    image: np.ndarray, reference: np.ndarray, data_range: float | None = None
) -> dict[str, float]:
    """``{"psnr", "ssim", "psnr_affine", "data_range"}`` of ``image`` against ``reference``."""
    dr = data_range_of(reference) if data_range is None else float(data_range)
    return {
        "psnr": psnr(image, reference, dr),
        "ssim": ssim(image, reference, dr),
        "psnr_affine": psnr_affine(image, reference, dr),
        "data_range": dr,
    }
