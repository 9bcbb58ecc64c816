"""The thickness map of a lattice image: its mean over one unit cell, everywhere.

Averaging over exactly one unit cell (the parallelogram spanned by the basis) removes the
lattice and keeps everything slower than it. In Fourier terms the cell's indicator function has
zeros at every non-zero reciprocal lattice vector ``g`` (its transform is a product of two
sincs ``sinc(g . a1) sinc(g . a2)``, and ``g . a_i`` is an integer), so no Bragg frequency leaks
into the result, whatever the motif: what remains is the local mean intensity, which in a
HAADF/ADF image follows the specimen's thickness.

:func:`keep_thickness` gives a denoised image the cell mean of its input: a network's output
keeps its columns, the thickness map (dents, thickness steps, contamination) comes from the
data itself, where the cell average has already beaten the noise down.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

SUBPIXELS = 32  # samples per pixel side when the cell's indicator is rasterised (8 left
# 0.5 % of a honeycomb's contrast in, 32 leaves 0.08 %)


def cell_kernel(basis: np.ndarray, *, subpixels: int = SUBPIXELS) -> np.ndarray:
    """The normalised indicator of one unit cell (rows of ``basis``: the vectors in (y, x)
    pixels), centred, each pixel weighted by the share of it inside the cell."""
    b = np.asarray(basis, dtype=np.float64)
    if b.shape != (2, 2) or abs(np.linalg.det(b)) < 1.0:
        raise ValueError(f"a unit cell needs two non-collinear vectors of a pixel or more, got {b}")
    corners = np.array([[0.0, 0.0], b[0], b[1], b[0] + b[1]])
    corners -= corners.mean(axis=0)
    r = int(np.ceil(np.abs(corners).max()))
    n = 2 * r + 1
    grid = (np.arange(n * subpixels) + 0.5) / subpixels - 0.5 - r
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    # fractional cell coordinates of each sample, the cell centred on the kernel's centre
    uv = np.tensordot(np.linalg.inv(b.T), np.stack([yy, xx]), axes=1) + 0.5
    inside = ((uv >= 0) & (uv < 1)).all(axis=0).astype(np.float64)
    kernel = inside.reshape(n, subpixels, n, subpixels).sum(axis=(1, 3))
    return kernel / kernel.sum()


def cell_mean(image: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``image`` (2D) averaged over one unit cell around every pixel; the frame is mirrored."""
    x = np.asarray(image, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"cell_mean takes one 2D plane, got shape {x.shape}")
    kernel = cell_kernel(basis)
    r = kernel.shape[0] // 2
    if r >= min(x.shape):
        raise ValueError(f"the unit cell ({2 * r + 1} px) is larger than the image {x.shape}")
    padded = np.pad(x, r, mode="reflect")
    return fftconvolve(padded, kernel, mode="valid")


def keep_thickness(output: np.ndarray, source: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``output`` with the cell mean of ``source`` in place of its own (float32): its columns,
    the input's thickness map."""
    out = np.asarray(output, dtype=np.float64)
    fixed = out + cell_mean(source, basis) - cell_mean(out, basis)
    return fixed.astype(np.float32)


__all__ = ["cell_kernel", "cell_mean", "keep_thickness"]
