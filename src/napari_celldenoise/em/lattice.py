"""Measure a crystal lattice from its image: basis vectors from the FFT, motif by folding.

The lattice (after the standard practice of HRTEM/STEM analysis, e.g. Hytch, Snoeck and Kilaas
1998, "Quantitative measurement of displacement and strain fields from HREM micrographs"):

* the image, less its mean, is multiplied by a 2D Hann window (no edge streaks) and zero-padded
  (a finer frequency grid); its power spectrum is compared with the radial background (the mean
  of log power per frequency ring, which is ``log(mean) - 0.5772`` for exponential noise power);
* local maxima that exceed the background by more than a noise maximum could
  (``ln(n_bins) + ln(1/alpha)``, Bonferroni over the independent frequency bins) are Bragg peaks;
  their positions are refined by a parabola through the log power (a Gaussian peak);
* the two shortest non-collinear reciprocal vectors ``g1, g2`` define the reciprocal basis, all
  peaks that index on it to integers ``(h, k)`` refine it by least squares, and the real-space
  basis is ``A = inv(G).T`` (``a_i . g_j = delta_ij``). Its reduced form gives ``|a1| <= |a2|``
  and an angle of 90 degrees (square) or 120 degrees (hexagonal). On a hexagonal lattice the
  first spots are at ``d = a * sqrt(3) / 2``: the inverse takes care of that, ``a`` is reported
  as well as the ``d`` of the first spots.

The motif: every pixel's fractional cell coordinates (``p @ inv(A)``, modulo 1) fold the image
into one unit cell; its local maxima are the columns of the motif (sublattice intensities above
the cell's minimum) and the radial profile around the brightest column gives the column width.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from .errors import LatticeNotFound

__all__ = [
    "Lattice",
    "LatticeNotFound",
    "Motif",
    "calibration",
    "measure_lattice",
    "measure_motif",
]

EULER_GAMMA = 0.5772156649015329
LEAKAGE_FLOOR = 1e-8
STRONG_RANGE = 1e-3  # basis peaks: within this power ratio of the strongest
# no projected atomic spacing is shorter (the closest columns, dumbbells, are ~0.08 nm apart):
# a finer Fourier peak is periodic scan noise (mains pick-up, a vibrating scan coil)
MIN_SPACING_NM = 0.06
NM_PER_UNIT = {"nm": 1.0, "pm": 1e-3, "Å": 0.1, "A": 0.1, "angstrom": 0.1, "µm": 1e3, "um": 1e3}
MAX_FFT = 2048  # the padded FFT's side is capped (memory, time) for large images


@dataclass(frozen=True)
class Lattice:
    """A measured 2D lattice; vectors are ``(y, x)`` in pixels."""

    basis: np.ndarray  # rows a1, a2 (reduced: |a1| <= |a2|, angle >= 90 degrees)
    reciprocal: np.ndarray  # rows g1, g2 in cycles per pixel (dual of ``basis``)
    peaks: np.ndarray  # (k, 2) significant FFT peaks in cycles per pixel (half plane)
    peak_snr: np.ndarray  # (k,) their power over the radial background
    indexed: np.ndarray  # (k, 2) integer (h, k) of each peak, (0, 0) when not indexed
    basis_snr: tuple[float, float]
    confidence: float
    shape: tuple[int, int]
    fft_size: int
    scale: tuple[float, float] = (1.0, 1.0)  # physical size of a pixel along y, x
    unit: str = "pixel"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def lengths_px(self) -> tuple[float, float]:
        return tuple(float(np.hypot(*a)) for a in self.basis)

    @property
    def lengths(self) -> tuple[float, float]:
        """Basis lengths in ``unit`` (``scale`` applied per axis)."""
        s = np.asarray(self.scale, float)
        return tuple(float(np.hypot(*(a * s))) for a in self.basis)

    @property
    def angle(self) -> float:
        """Angle between ``a1`` and ``a2`` in degrees (90 square, 120 hexagonal)."""
        a1, a2 = self.basis
        cos = np.dot(a1, a2) / (np.linalg.norm(a1) * np.linalg.norm(a2))
        return float(np.degrees(np.arccos(np.clip(cos, -1, 1))))

    @property
    def orientation(self) -> float:
        """Direction of ``a1`` from the image's x axis (degrees, counter-clockwise on screen)."""
        return _ccw(self.basis[0])

    @property
    def d_spacings_px(self) -> tuple[float, float]:
        """Plane spacings of the two basis peaks, ``1 / |g|``, in pixels."""
        return tuple(float(1 / np.hypot(*g)) for g in self.reciprocal)

    @property
    def kind(self) -> str:
        la, lb = self.lengths_px
        # tolerant of the few per cent of scan distortion a real STEM image has
        equal = abs(lb / la - 1) < 0.03
        if abs(self.angle - 90) < 4:
            return "square" if equal else "rectangular"
        if equal and abs(self.angle - 120) < 4:
            return "hexagonal"
        return "oblique"

    @property
    def spacing_px(self) -> float:
        """Mean basis length (the lattice constant ``a`` for square/hexagonal lattices)."""
        return float(np.mean(self.lengths_px))

    def peaks_in_fft(self, g: np.ndarray | None = None) -> np.ndarray:
        """``(y, x)`` positions of reciprocal vectors on :func:`fft_image`'s array."""
        g = self.peaks if g is None else np.asarray(g, float)
        return self.fft_size // 2 + g * self.fft_size

    def sites(self, origin: np.ndarray | tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        """Lattice points (one per cell) through ``origin`` inside the image, ``(n, 2)``."""
        from .simulate import lattice_sites

        pos, _ = lattice_sites(self.shape, self.basis, np.asarray(origin, float), ((0, 0, 1),))
        return pos

    def to_dict(self) -> dict[str, Any]:
        la, lb = self.lengths_px
        pa, pb = self.lengths
        return {
            "kind": self.kind,
            "a1_px": [round(float(v), 4) for v in self.basis[0]],
            "a2_px": [round(float(v), 4) for v in self.basis[1]],
            "length_px": [round(la, 4), round(lb, 4)],
            "length": [round(pa, 6), round(pb, 6)],
            "unit": self.unit,
            "angle_deg": round(self.angle, 3),
            "orientation_deg": round(self.orientation, 3),
            "d_spacing_px": [round(d, 4) for d in self.d_spacings_px],
            "confidence": round(self.confidence, 4),
            "basis_snr": [round(float(s), 1) for s in self.basis_snr],
            "peaks": len(self.peaks),
            "peaks_indexed": int(np.any(self.indexed != 0, axis=1).sum()),
        }


def _as_plane(image: np.ndarray) -> np.ndarray:
    x = np.asarray(image, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"lattice tools take one 2D image, got shape {x.shape}")
    if min(x.shape) < 16:
        raise ValueError(f"image of {x.shape} pixels is too small for a lattice (need 16x16)")
    if not np.all(np.isfinite(x)):
        x = np.where(np.isfinite(x), x, np.nanmean(x))
    return x


def fft_size(shape: tuple[int, int], pad: float = 2.0) -> int:
    """Side of the square, zero-padded FFT: ``pad`` times the image, at most ``MAX_FFT``."""
    from scipy.fft import next_fast_len

    n = int(np.ceil(max(shape) * pad))
    return int(next_fast_len(max(min(n, MAX_FFT), max(shape)), real=True))


def power_spectrum(image: np.ndarray, *, pad: float = 2.0) -> np.ndarray:
    """Power spectrum of the Hann-windowed, zero-padded image, zero frequency at ``N // 2``."""
    from scipy.fft import fft2, fftshift

    x = _as_plane(image)
    win = np.outer(np.hanning(x.shape[0]), np.hanning(x.shape[1]))
    x = (x - np.sum(x * win) / np.sum(win)) * win
    n = fft_size(x.shape, pad)
    # float64: a smooth (amorphous) image's high frequencies sit below float32 round-off,
    # whose structured residue would look like peaks
    f = fftshift(fft2(x, s=(n, n), workers=-1))
    return f.real**2 + f.imag**2


def fft_image(image: np.ndarray, *, pad: float = 2.0) -> np.ndarray:
    """``log10`` power spectrum for display (float32), as measured by :func:`measure_lattice`."""
    return np.log10(power_spectrum(image, pad=pad) + 1e-12).astype(np.float32)


def _radial_background(power: np.ndarray) -> np.ndarray:
    """Mean noise power per frequency ring (from the mean log power, robust to a few peaks)."""
    n = power.shape[0]
    c = n // 2
    yy, xx = np.indices(power.shape)
    ring = np.round(np.hypot(yy - c, xx - c)).astype(int)
    logp = np.log(power + 1e-300)
    rings = np.arange(ring.max() + 1)
    mean_log = ndi.mean(logp, labels=ring, index=rings)
    return np.exp(np.asarray(mean_log)[ring] + EULER_GAMMA)


def _parabola(lm: float, l0: float, lp: float) -> float:
    den = lm - 2 * l0 + lp
    return float(np.clip(0.5 * (lm - lp) / den, -0.5, 0.5)) if den < 0 else 0.0


def find_peaks(
    image: np.ndarray, *, pad: float = 2.0, alpha: float = 0.01, min_cells: float = 4.0
) -> tuple[np.ndarray, np.ndarray, int, float]:
    """Significant Bragg peaks of ``image`` in one half plane.

    Returns
    -------
    peaks, snr, n, threshold, power
        ``(k, 2)`` reciprocal vectors (cycles per pixel, ``(gy, gx)``) sorted by length, their
        power over the background, the FFT size, the significance threshold used and their
        power.
    """
    x = _as_plane(image)
    power = power_spectrum(x, pad=pad)
    n = power.shape[0]
    c = n // 2
    background = _radial_background(power)
    snr = power / background
    n_indep = x.size / 2
    threshold = float(np.log(n_indep) + np.log(1 / alpha))
    bins_per_unpadded = n / max(x.shape)
    size = 2 * int(np.ceil(3.5 * bins_per_unpadded)) + 1
    local = ndi.maximum_filter(snr, size=size, mode="wrap") == snr
    yy, xx = np.indices(snr.shape)
    ky, kx = (yy - c) / n, (xx - c) / n
    radius = np.hypot(ky, kx)
    half = (ky > 0) | ((ky == 0) & (kx > 0))
    # above the Hann window's leakage floor: the low frequencies' sidelobes (~1/k**6 in
    # power, strongest along the axes) outshine a smooth image's highest frequencies
    band = (radius >= min_cells / min(x.shape)) & (radius <= 0.5)
    band &= background > background.max() * LEAKAGE_FLOOR
    inner = (yy > 0) & (yy < n - 1) & (xx > 0) & (xx < n - 1)
    cand = np.argwhere(local & half & band & inner & (snr > threshold))
    logp = np.log(power + 1e-300)
    peaks, values, powers = [], [], []
    for i, j in cand:
        dy = _parabola(logp[i - 1, j], logp[i, j], logp[i + 1, j])
        dx = _parabola(logp[i, j - 1], logp[i, j], logp[i, j + 1])
        peaks.append(((i + dy - c) / n, (j + dx - c) / n))
        values.append(snr[i, j])
        powers.append(power[i, j])
    if not peaks:
        return np.empty((0, 2)), np.empty(0), n, threshold, np.empty(0)
    peaks = np.asarray(peaks)
    values = np.asarray(values)
    powers = np.asarray(powers)
    order = np.argsort(np.hypot(peaks[:, 0], peaks[:, 1]))
    return peaks[order], values[order], n, threshold, powers[order]


def _pick_basis(peaks: np.ndarray, snr: np.ndarray, min_angle: float = 20.0) -> tuple[int, int]:
    """Indices of the two shortest non-collinear peaks (the strongest of each first ring)."""
    lengths = np.hypot(peaks[:, 0], peaks[:, 1])
    ring = lengths <= lengths[0] * 1.05
    i = int(np.flatnonzero(ring)[np.argmax(snr[ring])])
    u = peaks / lengths[:, None]
    cos = np.abs(u @ u[i])
    other = cos < np.cos(np.radians(min_angle))
    if not np.any(other):
        raise LatticeNotFound("only one family of lattice planes is visible (no 2D lattice)")
    first = lengths[other].min()
    ring2 = other & (lengths <= first * 1.05)
    j = int(np.flatnonzero(ring2)[np.argmax(snr[ring2])])
    return i, j


def reduce_basis(basis: np.ndarray) -> np.ndarray:
    """Lagrange-Gauss reduced basis: shortest vectors, ``|a1| <= |a2|``, angle >= 90 degrees,
    ``a1`` pointing to +x (its x component >= 0)."""
    a1, a2 = np.array(basis[0], float), np.array(basis[1], float)
    for _ in range(100):
        if np.dot(a2, a2) < np.dot(a1, a1):
            a1, a2 = a2, a1
        m = np.round(np.dot(a1, a2) / np.dot(a1, a1))
        if m == 0:
            break
        a2 = a2 - m * a1
    if a1[1] < 0 or (a1[1] == 0 and a1[0] > 0):
        a1 = -a1
    if np.dot(a1, a2) > 0:
        a2 = -a2
    return _canonical(a1, a2)


def _ccw(v: np.ndarray) -> float:
    """Direction of ``(y, x)`` in degrees, counter-clockwise on screen (y points down)."""
    return float(np.degrees(np.arctan2(-v[0], v[1])))


def _canonical(a1: np.ndarray, a2: np.ndarray, tol: float = 0.05) -> np.ndarray:
    """Among the equally short vectors of a reduced basis (square, hexagonal), take as ``a1``
    the one nearest the +x direction and as ``a2`` its neighbour 90-150 degrees
    counter-clockwise, so that the same lattice always gets the same description."""
    la = np.linalg.norm(a1)
    cands = [v for v in (a1, a2, a1 + a2, a1 - a2) if np.linalg.norm(v) <= la * (1 + tol)]
    cands = cands + [-v for v in cands]
    if len(cands) <= 2:
        return np.stack([a1, a2])
    first = min(cands, key=lambda v: abs(_ccw(v)))
    turn = [((_ccw(v) - _ccw(first)) % 360, v) for v in cands]
    second = [v for t, v in turn if 85 <= t <= 150]
    if not second:
        return np.stack([a1, a2])
    return np.stack([first, max(second, key=lambda v: (_ccw(v) - _ccw(first)) % 360)])


def _without_scan_noise(peaks, snr, power, scale, unit: str):
    """The peaks without those finer than :data:`MIN_SPACING_NM` (only with a length unit),
    and a note naming what was dropped ("" when nothing)."""
    per_nm = NM_PER_UNIT.get(unit)
    if per_nm is None or not len(peaks):
        return peaks, snr, power, ""
    pixel_nm = float(np.mean(scale)) * per_nm
    period_nm = pixel_nm / np.hypot(peaks[:, 0], peaks[:, 1])
    fine = period_nm < MIN_SPACING_NM
    if not fine.any():
        return peaks, snr, power, ""
    periods = ", ".join(f"{p * 1000:.0f} pm" for p in sorted(set(np.round(period_nm[fine], 3))))
    note = (
        f"; {int(fine.sum())} finer periodic peak(s) ignored ({periods}: shorter than any "
        "atomic spacing, periodic scan noise)"
    )
    keep = ~fine
    return peaks[keep], snr[keep], power[keep], note


def measure_lattice(
    image: np.ndarray,
    *,
    scale: tuple[float, float] | float = 1.0,
    unit: str = "pixel",
    pad: float = 2.0,
    alpha: float = 0.01,
    min_cells: float = 4.0,
) -> Lattice:
    """The lattice of a 2D atomic-resolution image.

    Parameters
    ----------
    image
        One 2D image (a few cells at least: spacings up to a quarter of the shorter side).
    scale, unit
        Pixel size (``(y, x)`` or one number) and its unit, for the physical lengths.
    pad
        Zero-padding factor of the FFT (finer frequency grid).
    alpha
        False-alarm probability of a peak in pure noise.
    min_cells
        Fewest lattice periods across the shorter side that a peak may stand for.

    Raises
    ------
    LatticeNotFound
        When fewer than two non-collinear Bragg peaks stand out of the noise.
    """
    x = _as_plane(image)
    peaks, snr, n, threshold, power = find_peaks(x, pad=pad, alpha=alpha, min_cells=min_cells)
    peaks, snr, power, noise = _without_scan_noise(peaks, snr, power, scale, unit)
    if len(peaks) == 1:
        d = float(np.mean(scale)) / float(np.hypot(*peaks[0]))
        raise LatticeNotFound(
            f"no lattice found: only one Bragg peak stands out (d = {d:.4g} {unit}{noise}): "
            "one family of lattice planes (fringes; tilt to a zone axis) or one periodic "
            "artefact, no 2D lattice"
        )
    if len(peaks) < 2:
        raise LatticeNotFound(
            "no lattice found: fewer than two Bragg peaks stand out of the noise "
            f"({len(peaks)} above {threshold:.1f} x background{noise}); vacuum, amorphous or "
            "too noisy"
        )
    # the basis from peaks within 30 dB of the strongest: on a clean (or filtered) image the
    # window's sidelobes and the smooth background leave weak peaks far above the noise
    # (in power: the radial background of a clean image falls steeply, which inflates the
    # signal-to-background ratio of the highest frequencies)
    strong = np.flatnonzero(power >= power.max() * STRONG_RANGE)
    try:
        i, j = (strong[k] for k in _pick_basis(peaks[strong], snr[strong]))
    except LatticeNotFound as exc:  # one family of planes: say what else was seen
        raise LatticeNotFound(f"{exc}{noise}") from None
    g = np.stack([peaks[i], peaks[j]])
    hk = peaks @ np.linalg.inv(g)
    near = np.all(np.abs(hk - np.round(hk)) < 0.12, axis=1)
    idx = np.where(near[:, None], np.round(hk), 0).astype(int)
    use = near & np.any(idx != 0, axis=1)
    if use.sum() >= 3:
        w = np.sqrt(np.log(snr[use]))[:, None]
        g = np.linalg.lstsq(idx[use] * w, peaks[use] * w, rcond=None)[0]
    # share of the peaks' excess power that the lattice explains (weak stray peaks from scan
    # noise or a rough background count little; an amorphous field has no dominant lattice)
    excess = np.where(power >= power.max() * STRONG_RANGE, snr - threshold, 0.0)
    explained = float(excess[near].sum() / excess.sum())
    if explained < 0.6:
        raise LatticeNotFound(
            f"no lattice found: the strongest Fourier peaks do not fit one lattice "
            f"({int(near.sum())} of {len(peaks)} peaks, {explained:.0%} of their power; "
            "amorphous, several grains or periodic noise)"
        )
    basis = reduce_basis(np.linalg.inv(g).T)
    recip = np.linalg.inv(basis).T
    n_indep = x.size / 2
    p_false = [min(1.0, n_indep * np.exp(-snr[k])) for k in (i, j)]
    confidence = (1 - p_false[0]) * (1 - p_false[1]) * explained
    sy, sx = (scale, scale) if np.isscalar(scale) else tuple(scale)
    return Lattice(
        basis=basis,
        reciprocal=recip,
        peaks=peaks,
        peak_snr=snr,
        indexed=idx,
        basis_snr=(float(snr[i]), float(snr[j])),
        confidence=float(confidence),
        shape=x.shape,
        fft_size=n,
        scale=(float(sy), float(sx)),
        unit=unit,
    )


@dataclass(frozen=True)
class Motif:
    """The unit cell averaged over the image (folded), its columns and their width."""

    cell: np.ndarray  # (bins, bins) mean intensity on fractional (u along a1, v along a2)
    origin: np.ndarray  # (y, x) of the brightest column nearest the image's corner
    columns: np.ndarray  # (m, 3): u, v, intensity above the cell background, brightest first
    background: float
    sigma_px: float  # Gaussian sigma of the brightest column
    amplitude: float  # peak height of that Gaussian above the background

    @property
    def fwhm_px(self) -> float:
        return float(2 * np.sqrt(2 * np.log(2)) * self.sigma_px)

    @property
    def relative(self) -> np.ndarray:
        """Column intensities relative to the brightest."""
        top = self.columns[0, 2] if len(self.columns) else 1.0
        return self.columns[:, 2] / top if top else self.columns[:, 2]

    def to_dict(self, pixel: float = 1.0, unit: str = "pixel") -> dict[str, Any]:
        return {
            "columns": [
                {
                    "u": round(float(u), 4),
                    "v": round(float(v), 4),
                    "intensity": float(i),
                    "relative": round(float(r), 4),
                }
                for (u, v, i), r in zip(self.columns, self.relative)
            ],
            "origin_px": [round(float(v), 3) for v in self.origin],
            "background": float(self.background),
            "column_sigma_px": round(self.sigma_px, 4),
            "column_fwhm_px": round(self.fwhm_px, 4),
            "column_fwhm": round(self.fwhm_px * pixel, 6),
            "unit": unit,
        }


def fractional(shape: tuple[int, int], basis: np.ndarray, origin=(0.0, 0.0)) -> np.ndarray:
    """Fractional cell coordinates ``(u, v)`` of every pixel, shape ``(*shape, 2)``."""
    yy, xx = np.indices(shape, dtype=np.float64)
    p = np.stack([yy - origin[0], xx - origin[1]], axis=-1)
    return p @ np.linalg.inv(basis)


def fold_stats(
    image: np.ndarray, basis: np.ndarray, *, bins: int = 32, origin=(0.0, 0.0)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``image`` folded into one cell on a ``bins x bins`` fractional grid: the mean, the
    variance and the number of pixels per bin (each ``(bins, bins)``)."""
    x = _as_plane(image)
    f = np.mod(fractional(x.shape, basis, origin), 1.0)
    iu = np.minimum((f[..., 0] * bins).astype(int), bins - 1)
    iv = np.minimum((f[..., 1] * bins).astype(int), bins - 1)
    label = (iu * bins + iv).ravel()
    size = bins * bins
    count = np.bincount(label, minlength=size).astype(float)
    total = np.bincount(label, weights=x.ravel(), minlength=size)
    square = np.bincount(label, weights=x.ravel() ** 2, minlength=size)
    mean = np.divide(total, count, out=np.full(size, np.nan), where=count > 0)
    var = np.divide(
        square - count * np.nan_to_num(mean) ** 2,
        count - 1,
        out=np.full(size, np.nan),
        where=count > 1,
    )
    return mean.reshape(bins, bins), var.reshape(bins, bins), count.reshape(bins, bins)


def fold(image: np.ndarray, basis: np.ndarray, *, bins: int = 32, origin=(0.0, 0.0)) -> np.ndarray:
    """Mean intensity of ``image`` folded into one cell, on a ``bins x bins`` fractional grid."""
    cell = fold_stats(image, basis, bins=bins, origin=origin)[0]
    if np.isnan(cell).any():  # a tiny image leaves bins empty
        cell = np.where(np.isnan(cell), np.nanmean(cell), cell)
    return cell


def cell_bins(shape: tuple[int, int], basis: np.ndarray, per_bin: int = 100) -> int:
    """Bins per cell side so that each bin averages about ``per_bin`` pixels (8 to 32)."""
    cells = shape[0] * shape[1] / abs(np.linalg.det(basis))
    pixels_per_cell = abs(np.linalg.det(basis))
    by_count = np.sqrt(shape[0] * shape[1] / per_bin)
    by_size = 2 * np.sqrt(pixels_per_cell)  # no finer than half a pixel
    return int(np.clip(min(by_count, by_size), 8, 32)) if cells >= 1 else 8


def _periodic_peak(cell: np.ndarray, i: int, j: int) -> tuple[float, float]:
    b = cell.shape[0]
    dy = _parabola(cell[(i - 1) % b, j], cell[i, j], cell[(i + 1) % b, j])
    dx = _parabola(cell[i, (j - 1) % b], cell[i, j], cell[i, (j + 1) % b])
    return (i + 0.5 + dy) / b, (j + 0.5 + dx) / b


def periodic_distance(f1: np.ndarray, f2: np.ndarray, basis: np.ndarray) -> float:
    """Shortest real-space distance (px) between fractional positions ``f1`` and ``f2``."""
    d = np.asarray(f1, float) - np.asarray(f2, float)
    d = d - np.round(d)
    shifts = np.array([[i, j] for i in (-1, 0, 1) for j in (-1, 0, 1)], float)
    return float(np.min(np.linalg.norm((d + shifts) @ basis, axis=1)))


def _separate(cols: np.ndarray, basis: np.ndarray, fraction: float = 0.25) -> np.ndarray:
    """Drop columns closer than ``fraction`` of the shorter basis length to a brighter one."""
    limit = fraction * min(np.linalg.norm(basis, axis=1))
    kept: list[np.ndarray] = []
    for c in cols:
        if all(periodic_distance(c[:2], k[:2], basis) >= limit for k in kept):
            kept.append(c)
    return np.asarray(kept).reshape(-1, 3)


def measure_motif(image: np.ndarray, lattice: Lattice, *, bins: int | None = None) -> Motif:
    """Fold ``image`` into the cell of ``lattice``: the columns of the motif and their width.

    Columns are the periodic local maxima of the folded cell that stand above the cell's
    minimum by more than 5 standard errors of a bin mean (shot noise cannot make them).
    """
    x = _as_plane(image)
    bins = bins or cell_bins(x.shape, lattice.basis)
    mean, var, count = fold_stats(x, lattice.basis, bins=bins)
    mean = np.where(np.isnan(mean), np.nanmean(mean), mean)
    cell = ndi.gaussian_filter(mean, 0.7, mode="wrap")
    stderr = float(np.sqrt(np.nanmedian(var / np.maximum(count, 1))))
    background = float(cell.min())
    local = ndi.maximum_filter(cell, size=max(3, bins // 6) | 1, mode="wrap") == cell
    height = cell - background
    cand = np.argwhere(local & (height > 5 * stderr))
    if len(cand) == 0:
        cand = np.argwhere(height == height.max())
    cols = [(*_periodic_peak(cell, i, j), height[i, j]) for i, j in cand]
    cols.sort(key=lambda c: -c[2])
    cols = _separate(np.asarray(cols, float).reshape(-1, 3), lattice.basis)
    u0, v0 = cols[0, :2]
    # the brightest column's site nearest the image's top-left corner
    origin = np.array([u0, v0]) @ lattice.basis
    sites = lattice.sites(origin)
    if len(sites):
        origin = sites[np.argmin(sites.sum(axis=1))]
    rel = cols.copy()
    rel[:, :2] = np.mod(cols[:, :2] - [u0, v0] + 1e-9, 1.0)
    rel[:, :2] = np.where(rel[:, :2] > 1 - 1e-6, 0.0, rel[:, :2])
    sigma, amp = column_width(x, lattice, origin, rel)
    return Motif(
        cell=cell,
        origin=np.asarray(origin, float),
        columns=rel,
        background=background,
        sigma_px=sigma,
        amplitude=amp,
    )


def column_width(
    image: np.ndarray, lattice: Lattice, origin: np.ndarray, columns: np.ndarray
) -> tuple[float, float]:
    """Gaussian sigma (px) and height of the brightest column, from the folded radial profile."""
    from scipy.optimize import curve_fit

    basis = lattice.basis
    f = fractional(image.shape, basis, origin)
    d = (f - np.round(f)) @ basis
    r = np.hypot(d[..., 0], d[..., 1]).ravel()
    # stay closer to the column than half the distance to any other column
    others = [np.hypot(*((np.array([u, v]) - np.round([u, v])) @ basis)) for u, v, _ in columns[1:]]
    near = min([min(lattice.lengths_px), *others])
    r_max = 0.45 * near
    step = 0.25
    keep = r < r_max
    k = (r[keep] / step).astype(int)
    prof = np.bincount(k, weights=image.ravel()[keep]) / np.maximum(np.bincount(k), 1)
    radii = (np.arange(len(prof)) + 0.5) * step
    ok = np.bincount(k) > 0
    radii, prof = radii[ok], prof[ok]

    def model(rr, b, a, s):
        return b + a * np.exp(-(rr**2) / (2 * s**2))

    guess = (float(prof[-1]), float(prof[0] - prof[-1]), max(r_max / 3, 0.5))
    bounds = ([-np.inf, 0.0, 0.2], [np.inf, np.inf, r_max])
    try:
        (_b, a, s), _ = curve_fit(model, radii, prof, p0=guess, bounds=bounds, maxfev=4000)
    except (RuntimeError, ValueError):
        return float("nan"), float("nan")
    return float(abs(s)), float(a)


def measure_gain(image: np.ndarray, lattice: Lattice | None = None) -> dict[str, Any]:
    """Poisson-Gaussian noise ``var = gain * mean + offset_variance`` of the image.

    With a lattice, the pixels of each bin of the folded cell see the same expected intensity,
    so their spread is the noise at that intensity: the bins' (mean, variance) pairs are fitted
    by the project's robust variance-curve fit (:func:`..classical.noise.fit_variance_curve`).
    Without one, the single-image estimate of :func:`..classical.noise.estimate_noise`
    (smooth regions, which an atomic-resolution image hardly has).

    ``zero_level = -offset_variance / gain`` is the mean at which the fitted variance reaches
    zero: the detector's dark offset. A detector that adds a constant ``c`` to every count
    records ``var = gain * (mean - c) + read_variance``, so the fitted offset variance is
    ``read_variance - gain * c`` and is negative whenever the offset outweighs the read noise
    (then the zero level is about ``c``; without an offset it is ``-read_variance / gain``,
    slightly below 0). NaN when the gain is not positive. ``dark_offset`` is that zero level
    when the offset variance is negative, else 0 (the offset variance is then read noise).
    """
    from ..classical.noise import estimate_noise, fit_variance_curve

    if lattice is not None:
        bins = cell_bins(lattice.shape, lattice.basis, per_bin=200)
        mean, var, count = fold_stats(image, lattice.basis, bins=bins)
        ok = count > 10
        fit = fit_variance_curve(mean[ok], var[ok], count[ok], source="lattice fold")
    else:
        fit = estimate_noise(np.asarray(image, dtype=np.float32))
    gain, offset_variance = float(fit.a), float(fit.b)
    zero_level = -offset_variance / gain if gain > 0 else float("nan")
    return {
        "gain": gain,
        "offset_variance": offset_variance,
        "zero_level": zero_level,
        # the reading of the one fitted number (the convention of ``simulate.noisify``)
        "dark_offset": zero_level if offset_variance < 0 else 0.0,
        "sigma": float(fit.sigma),
        "r2": float(fit.r2),
        "model": fit.model,
        "source": fit.source,
    }


def analyse(
    image: np.ndarray,
    *,
    scale: tuple[float, float] | float = 1.0,
    unit: str = "pixel",
    min_cells: float = 4.0,
    known_a: float | None = None,
) -> dict[str, Any]:
    """Lattice, motif and noise of one image as one JSON-ready dict (the ``lattice`` command);
    with ``known_a`` (the lattice constant in ``unit``) also the :func:`calibration`."""
    lattice = measure_lattice(image, scale=scale, unit=unit, min_cells=min_cells)
    motif = measure_motif(image, lattice)
    pixel = float(np.mean(lattice.scale))
    out = {
        "lattice": lattice.to_dict(),
        "motif": motif.to_dict(pixel, unit),
        "noise": measure_gain(image, lattice),
    }
    if known_a:
        out["calibration"] = calibration(lattice, known_a)
    return out


def calibration(lattice: Lattice, known_a: float) -> dict[str, Any]:
    """The pixel size that a known lattice constant implies, against the file's.

    A STEM image's pixel size is usually the nominal field of view over the number of pixels,
    good to a few per cent; a crystal of known lattice constant is the ruler that calibrates
    the magnification (Williams & Carter, "Transmission Electron Microscopy", 2nd ed.,
    Springer 2009, on calibrating with known lattice spacings). Drift and scan-coil errors
    also distort the scan (Sang & LeBeau, "Revolving scanning transmission electron
    microscopy: correcting sample drift distortion without prior knowledge",
    Ultramicroscopy 138 (2014) 28-35): the angle between ``a1`` and ``a2`` shows that.

    ``known_a`` is the constant ``a`` in the image's unit (0.316 nm for MoS2). On a square or
    hexagonal lattice the measured ``a`` is the mean of ``|a1|`` and ``|a2|``; on a
    rectangular or oblique one ``|a1|`` (give the shorter constant). The cell-area value
    assumes the ideal shape (``a**2`` square, ``a**2 * sqrt(3) / 2`` hexagonal): a simple
    shear of the scan leaves the area alone, so where it differs from the first the scan is
    sheared. ``relative_error`` is the file's pixel size over the implied one, less 1; an
    image without a pixel size (``unit`` "pixel") gets the implied one in the unit of
    ``known_a`` and ``None`` for the file's pixel size and the error.
    """
    if not known_a > 0:
        raise ValueError(f"the known lattice constant must be positive, got {known_a}")
    kind = lattice.kind
    if kind in ("square", "hexagonal"):
        a_px, source = lattice.spacing_px, "mean of |a1|, |a2|"
    else:
        a_px, source = lattice.lengths_px[0], "|a1| (the shorter basis vector)"
    implied = float(known_a) / a_px
    calibrated = lattice.unit != "pixel"
    file_pixel = float(np.mean(lattice.scale)) if calibrated else None
    out = {
        "known_a": float(known_a),
        "unit": lattice.unit,
        "measured_a_px": round(a_px, 4),
        "from": source,
        "pixel_size": implied,
        "file_pixel_size": file_pixel,
        "relative_error": file_pixel / implied - 1 if calibrated else None,
    }
    if kind in ("square", "hexagonal"):
        shape = 1.0 if kind == "square" else np.sqrt(3) / 2
        area_a = float(np.sqrt(abs(np.linalg.det(lattice.basis)) / shape))
        out["pixel_size_from_area"] = float(known_a) / area_a
    return out


def format_report(out: dict) -> str:
    """The human-readable form of :func:`analyse`'s result (``path`` optional)."""
    lat, motif, noise = out["lattice"], out["motif"], out["noise"]
    unit = lat["unit"]
    lines = [f"path          {out['path']}"] if "path" in out else []
    lines += [
        f"lattice       {lat['kind']}, confidence {lat['confidence']:.3f}",
        f"a1            {lat['length_px'][0]:.3f} px = {lat['length'][0]:.5g} {unit}",
        f"a2            {lat['length_px'][1]:.3f} px = {lat['length'][1]:.5g} {unit}",
        f"angle         {lat['angle_deg']:.2f} deg (a1 at {lat['orientation_deg']:.2f} deg)",
        f"first spots   d = {lat['d_spacing_px'][0]:.3f}, {lat['d_spacing_px'][1]:.3f} px",
        f"peaks         {lat['peaks']} ({lat['peaks_indexed']} indexed)",
        f"column width  FWHM {motif['column_fwhm_px']:.3f} px = {motif['column_fwhm']:.4g} {unit}",
    ]
    for k, col in enumerate(motif["columns"]):
        lines.append(
            f"column {k}      at ({col['u']:.3f}, {col['v']:.3f}) of the cell, "
            f"relative intensity {col['relative']:.3f}"
        )
    lines += noise_lines(noise)
    if "calibration" in out:
        lines += calibration_lines(out["calibration"])
    return "\n".join(lines)


def noise_lines(noise: dict) -> list[str]:
    """The noise of :func:`measure_gain` in a microscopist's words: the gain and the dark
    offset first, then the offset variance and why it has its sign."""
    gain, offset_var = noise["gain"], noise["offset_variance"]
    how = f"{noise['model']}, from the {noise['source']}"
    if not gain > 0:
        return [
            f"noise         no Poisson gain found ({how}): gain {gain:.4g}, "
            f"offset variance {offset_var:.4g}"
        ]
    zero = noise["zero_level"]
    lines = [f"noise gain    {gain:.4g} per count ({how})"]
    if offset_var < 0:
        lines += [
            f"dark offset   {zero:.4g} (zero level: the noise variance reaches 0 there)",
            # one line (the dock wraps it): the fit's offset variance is read variance minus
            # gain x dark offset (see measure_gain)
            f"offset var.   {offset_var:.4g}, negative: a dark offset of {zero:.4g} outweighs "
            "the read noise",
        ]
    else:
        lines += [
            f"dark offset   none seen (zero level {zero:.4g}, just below 0)",
            f"offset var.   {offset_var:.4g}: the read-noise variance "
            f"(read noise {np.sqrt(offset_var):.4g} rms)",
        ]
    return lines


def calibration_lines(cal: dict) -> list[str]:
    """The :func:`calibration` of the pixel size as report lines."""
    calibrated = cal["relative_error"] is not None
    unit = cal["unit"] if calibrated else "(unit of a)"
    known = f"{cal['known_a']:.5g} {unit}" if calibrated else f"{cal['known_a']:.5g}"
    versus = "the file has no pixel size"
    if calibrated:
        off = 100 * cal["relative_error"]
        versus = f"the file's {cal['file_pixel_size']:.6g} {unit} is {off:+.1f} % off"
    lines = [
        f"calibration   known a = {known} over {cal['measured_a_px']:.3f} px ({cal['from']})",
        f"pixel size    {cal['pixel_size']:.6g} {unit} implied; {versus}",
    ]
    if "pixel_size_from_area" in cal:
        lines.append(
            f"              {cal['pixel_size_from_area']:.6g} {unit} from the cell area "
            "(differs when the scan is sheared)"
        )
    return lines
