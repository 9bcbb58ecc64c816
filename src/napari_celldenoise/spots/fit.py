"""Pixel-integrated 2D Gaussian fitting with Cramer-Rao lower bounds (numba, all cores).

Model (Smith et al. 2010, Nat. Methods 7:373): in a box of ``b x b`` pixels with pixel centres at
integer coordinates, the expected photoelectrons in pixel (row i, column j) are
``mu = N * Ex(j) * Ey(i) + bg`` with
``Ex(j) = (erf((j - x + 0.5) / (sqrt(2) sx)) - erf((j - x - 0.5) / (sqrt(2) sx))) / 2``.

Two estimators, both solved by Levenberg-Marquardt on analytic derivatives:

``lsq``
    Weighted least squares ``sum (d - mu)^2 / max(d + sr^2, 1)`` (ThunderSTORM's weighting).
``mle``
    Poisson maximum likelihood with the camera's read noise folded in (Huang et al. 2013,
    Nat. Methods 10:653): data and model are both shifted by the read-noise variance ``sr^2``
    (in e-) so that ``d + sr^2`` is Poisson with mean ``mu + sr^2``; Fisher scoring with damping
    (Laurence & Chromy 2010).

The Cramer-Rao lower bounds come from the Fisher information of the same noise model,
``I = sum J J^T / (mu + sr^2)`` (times 1/2 with EM gain, the excess noise factor), evaluated at
the fitted parameters (Smith et al. 2010; Mortensen et al. 2010, Nat. Methods 7:377).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from .simulate import Camera

PARAMS = ("x", "y", "photons", "background", "sigma_x", "sigma_y")
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True, eq=False)
class FitResult:
    """Per-spot fit values in box coordinates (px) and photoelectrons.

    ``params`` and ``crlb`` are ``(n, 6)``: x, y, N, bg, sigma_x, sigma_y (for a symmetric fit
    both sigmas are equal and so are their bounds).
    """

    params: np.ndarray
    crlb: np.ndarray
    loglik: np.ndarray
    chi2: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray

    def __len__(self) -> int:
        return len(self.params)


@njit(cache=True, inline="always")
def _axis(n, c, s, e, de_c, de_s):
    inv = 1.0 / (_SQRT2 * s)
    inv2 = 0.5 / (s * s)
    k1 = _INV_SQRT2PI / s
    k2 = _INV_SQRT2PI / (s * s)
    for k in range(n):
        a = k - c + 0.5
        b = k - c - 0.5
        ea = math.exp(-a * a * inv2)
        eb = math.exp(-b * b * inv2)
        e[k] = 0.5 * (math.erf(a * inv) - math.erf(b * inv))
        de_c[k] = k1 * (eb - ea)
        de_s[k] = k2 * (b * eb - a * ea)


@njit(cache=True)
def _cholesky(a, m, lmat):
    """Lower Cholesky factor of the SPD ``m x m`` block of ``a`` into ``lmat``; False if not SPD."""
    for i in range(m):
        for j in range(i + 1):
            s = a[i, j]
            for k in range(j):
                s -= lmat[i, k] * lmat[j, k]
            if i == j:
                if s <= 0.0:
                    return False
                lmat[i, i] = math.sqrt(s)
            else:
                lmat[i, j] = s / lmat[j, j]
    return True


@njit(cache=True)
def _solve(a, g, m, out):
    """Solve a (m x m, SPD) out = g by Cholesky in place on a copy; False if not SPD."""
    size = a.shape[0]
    lmat = np.zeros((size, size))
    if not _cholesky(a, m, lmat):
        return False
    y = np.zeros(size)
    for i in range(m):
        s = g[i]
        for k in range(i):
            s -= lmat[i, k] * y[k]
        y[i] = s / lmat[i, i]
    for i in range(m - 1, -1, -1):
        s = y[i]
        for k in range(i + 1, m):
            s -= lmat[k, i] * out[k]
        out[i] = s / lmat[i, i]
    return True


@njit(cache=True)
def _evaluate(d, w, p, npar, mle, v, ex, dex, dexs, ey, dey, deys, g, h, want_jac):
    """Objective (to minimise), gradient (ascent direction) and curvature at ``p``."""
    n = d.shape[0]
    sx = p[4]
    sy = p[5] if npar == 6 else p[4]
    _axis(n, p[0], sx, ex, dex, dexs)
    _axis(n, p[1], sy, ey, dey, deys)
    nph = p[2]
    bg = p[3]
    obj = 0.0
    if want_jac:
        for i in range(npar):
            g[i] = 0.0
            for j in range(npar):
                h[i, j] = 0.0
    jac = np.empty(6)
    for i in range(n):
        for j in range(n):
            m = nph * ey[i] * ex[j] + bg
            dij = d[i, j]
            if mle:
                mp = m + v
                if mp < 1e-9:
                    mp = 1e-9
                dp = dij + v
                if dp < 0.0:
                    dp = 0.0
                obj += mp - (dp * math.log(mp) if dp > 0.0 else 0.0)
                r = dp / mp - 1.0
                wt = 1.0 / mp
            else:
                wt = w[i, j]
                r = (dij - m) * wt
                obj += (dij - m) * r
            if want_jac:
                jac[0] = nph * ey[i] * dex[j]
                jac[1] = nph * dey[i] * ex[j]
                jac[2] = ey[i] * ex[j]
                jac[3] = 1.0
                if npar == 6:
                    jac[4] = nph * ey[i] * dexs[j]
                    jac[5] = nph * deys[i] * ex[j]
                else:
                    jac[4] = nph * (ey[i] * dexs[j] + deys[i] * ex[j])
                for a in range(npar):
                    g[a] += r * jac[a]
                    wa = wt * jac[a]
                    for b in range(a + 1):
                        h[a, b] += wa * jac[b]
    if want_jac:
        for a in range(npar):
            for b in range(a + 1, npar):
                h[a, b] = h[b, a]
    return obj


@njit(cache=True)
def _evaluate5(d, w, p, mle, v, ex, dex, dexs, ey, dey, deys, g, h):
    """:func:`_evaluate` for the symmetric model (5 parameters), unrolled: the hot loop."""
    n = d.shape[0]
    _axis(n, p[0], p[4], ex, dex, dexs)
    _axis(n, p[1], p[4], ey, dey, deys)
    nph = p[2]
    bg = p[3]
    obj = 0.0
    g0 = g1 = g2 = g3 = g4 = 0.0
    h00 = h10 = h11 = h20 = h21 = h22 = h30 = h31 = h32 = h33 = 0.0
    h40 = h41 = h42 = h43 = h44 = 0.0
    for i in range(n):
        eyi = ey[i]
        deyi = nph * dey[i]
        deysi = nph * deys[i]
        neyi = nph * eyi
        for j in range(n):
            e = eyi * ex[j]
            m = nph * e + bg
            dij = d[i, j]
            if mle:
                mp = m + v
                if mp < 1e-9:
                    mp = 1e-9
                dp = dij + v
                if dp < 0.0:
                    dp = 0.0
                obj += mp - (dp * math.log(mp) if dp > 0.0 else 0.0)
                wt = 1.0 / mp
                r = dp * wt - 1.0
            else:
                wt = w[i, j]
                r = (dij - m) * wt
                obj += (dij - m) * r
            j0 = neyi * dex[j]
            j1 = deyi * ex[j]
            j2 = e
            j4 = neyi * dexs[j] + deysi * ex[j]
            g0 += r * j0
            g1 += r * j1
            g2 += r * j2
            g3 += r
            g4 += r * j4
            w0 = wt * j0
            w1 = wt * j1
            w2 = wt * j2
            w4 = wt * j4
            h00 += w0 * j0
            h10 += w1 * j0
            h11 += w1 * j1
            h20 += w2 * j0
            h21 += w2 * j1
            h22 += w2 * j2
            h30 += w0
            h31 += w1
            h32 += w2
            h33 += wt
            h40 += w4 * j0
            h41 += w4 * j1
            h42 += w4 * j2
            h43 += w4
            h44 += w4 * j4
    g[0] = g0
    g[1] = g1
    g[2] = g2
    g[3] = g3
    g[4] = g4
    h[0, 0] = h00
    h[1, 0] = h[0, 1] = h10
    h[1, 1] = h11
    h[2, 0] = h[0, 2] = h20
    h[2, 1] = h[1, 2] = h21
    h[2, 2] = h22
    h[3, 0] = h[0, 3] = h30
    h[3, 1] = h[1, 3] = h31
    h[3, 2] = h[2, 3] = h32
    h[3, 3] = h33
    h[4, 0] = h[0, 4] = h40
    h[4, 1] = h[1, 4] = h41
    h[4, 2] = h[2, 4] = h42
    h[4, 3] = h[3, 4] = h43
    h[4, 4] = h44
    return obj


@njit(cache=True)
def _fit_one(d, p0, npar, mle, v, excess, max_iter, tol, sigma_min, sigma_max, out_p, out_c, out_s):
    """Fit one box; writes params/crlb; returns (iterations, converged)."""
    n = d.shape[0]
    w = np.empty((n, n))
    if not mle:
        for i in range(n):
            for j in range(n):
                q = d[i, j] + v
                w[i, j] = 1.0 / (q if q > 1.0 else 1.0)
    ex = np.empty(n)
    dex = np.empty(n)
    dexs = np.empty(n)
    ey = np.empty(n)
    dey = np.empty(n)
    deys = np.empty(n)
    g = np.zeros(6)
    h = np.zeros((6, 6))
    g_new = np.zeros(6)
    h_new = np.zeros((6, 6))
    a = np.zeros((6, 6))
    step = np.zeros(6)
    p = p0.copy()
    trial = p0.copy()
    lam = 1e-3
    if npar == 5:
        obj = _evaluate5(d, w, p, mle, v, ex, dex, dexs, ey, dey, deys, g, h)
    else:
        obj = _evaluate(d, w, p, npar, mle, v, ex, dex, dexs, ey, dey, deys, g, h, True)
    converged = False
    it = 0
    bg_min = -0.9 * v
    while it < max_iter:
        it += 1
        for i in range(npar):
            for j in range(npar):
                a[i, j] = h[i, j]
            a[i, i] = h[i, i] * (1.0 + lam) + 1e-12
        if not _solve(a, g, npar, step):
            lam *= 10.0
            if lam > 1e10:
                break
            continue
        # limit the step: at most 1 px in position, half the width in sigma
        for k in range(2):
            if step[k] > 1.0:
                step[k] = 1.0
            elif step[k] < -1.0:
                step[k] = -1.0
        for k in range(4, npar):
            lim = 0.5 * p[k]
            if step[k] > lim:
                step[k] = lim
            elif step[k] < -lim:
                step[k] = -lim
        for k in range(npar):
            trial[k] = p[k] + step[k]
        if trial[2] < 1e-3:
            trial[2] = 1e-3
        if trial[3] < bg_min:
            trial[3] = bg_min
        for k in range(4, npar):
            if trial[k] < sigma_min:
                trial[k] = sigma_min
            elif trial[k] > sigma_max:
                trial[k] = sigma_max
        if npar == 5:
            obj_new = _evaluate5(d, w, trial, mle, v, ex, dex, dexs, ey, dey, deys, g_new, h_new)
        else:
            obj_new = _evaluate(
                d, w, trial, npar, mle, v, ex, dex, dexs, ey, dey, deys, g_new, h_new, True
            )
        if obj_new <= obj:
            small = True
            for k in range(npar):
                dk = abs(trial[k] - p[k])
                if k == 2:
                    dk /= max(p[2], 1.0)
                elif k == 3:
                    dk /= max(abs(p[3]), 1.0)
                if dk > tol:
                    small = False
            for k in range(npar):
                p[k] = trial[k]
            for i in range(npar):
                g[i] = g_new[i]
                for j in range(npar):
                    h[i, j] = h_new[i, j]
            obj = obj_new
            lam = max(lam * 0.1, 1e-7)
            if small:
                converged = True
                break
        else:
            lam *= 10.0
            if lam > 1e10:
                converged = True  # no step improves: at the optimum within rounding
                break
    if npar <= 5:
        p[5] = p[4]
    for k in range(6):
        out_p[k] = p[k]
    if p[0] < -0.5 or p[0] > n - 0.5 or p[1] < -0.5 or p[1] > n - 0.5:
        converged = False
    # Fisher information of the Poisson + read-noise model at the estimate: the MLE's
    # curvature evaluated with model weights; its objective is -loglik (up to a data constant)
    fisher = np.zeros((6, 6))
    if mle and it > 0:  # the last accepted step left exactly that curvature and objective
        for i in range(npar):
            for j in range(npar):
                fisher[i, j] = h[i, j]
        _axis(n, p[0], p[4], ex, dex, dexs)
        _axis(n, p[1], p[4] if npar <= 5 else p[5], ey, dey, deys)
    elif npar == 5:
        obj = _evaluate5(d, w, p, True, v, ex, dex, dexs, ey, dey, deys, g, fisher)
    else:
        obj = _evaluate(d, w, p, npar, True, v, ex, dex, dexs, ey, dey, deys, g, fisher, True)
    out_s[1] = -obj
    chi2 = 0.0
    for i in range(n):
        for j in range(n):
            m = p[2] * ey[i] * ex[j] + p[3]
            var = m + v
            if var < 1e-9:
                var = 1e-9
            chi2 += (d[i, j] - m) ** 2 / var
    out_s[0] = chi2 / max(n * n - npar, 1)
    if not _inverse_diagonal(fisher, npar, excess, out_c):
        for k in range(6):
            out_c[k] = np.nan
    if npar == 4:
        out_c[4] = 0.0
    if npar <= 5:
        out_c[5] = out_c[4]
    return it, converged


@njit(cache=True)
def _inverse_diagonal(a, m, scale, out):
    """``sqrt(diag(inv(a / scale)))`` of an SPD ``m x m`` matrix by one Cholesky factorisation
    (``diag(A^-1)_k = |L^-1 e_k|^2``); False if ``a`` is not positive definite."""
    lmat = np.zeros((6, 6))
    if not _cholesky(a, m, lmat):
        return False
    y = np.zeros(6)
    for k in range(m):
        total = 0.0
        for i in range(k, m):
            s = 1.0 if i == k else 0.0
            for q in range(k, i):
                s -= lmat[i, q] * y[q]
            y[i] = s / lmat[i, i]
            total += y[i] * y[i]
        out[k] = math.sqrt(total * scale)
    return True


@njit(cache=True)
def _initial(d, sigma, p):
    n = d.shape[0]
    # background: the dimmer half of the box edge, as a mean
    edge = np.empty(4 * n - 4)
    k = 0
    for j in range(n):
        edge[k] = d[0, j]
        edge[k + 1] = d[n - 1, j]
        k += 2
    for i in range(1, n - 1):
        edge[k] = d[i, 0]
        edge[k + 1] = d[i, n - 1]
        k += 2
    edge.sort()
    half = max(len(edge) // 2, 1)
    bg = 0.0
    for i in range(half):
        bg += edge[i]
    bg /= half
    tot = 0.0
    sx = 0.0
    sy = 0.0
    for i in range(n):
        for j in range(n):
            q = d[i, j] - bg
            if q > 0:
                tot += q
                sx += q * j
                sy += q * i
    c = (n - 1) / 2.0
    if tot > 0:
        x = sx / tot
        y = sy / tot
    else:
        x = c
        y = c
    p[0] = min(max(x, c - 1.0), c + 1.0)
    p[1] = min(max(y, c - 1.0), c + 1.0)
    p[2] = max(tot, 1.0)
    p[3] = max(bg, 0.0)
    p[4] = sigma
    p[5] = sigma


def _fit_all_py(boxes, sigma, npar, mle, v, excess, max_iter, tol, sigma_min, sigma_max):
    n = boxes.shape[0]
    params = np.empty((n, 6))
    crlb = np.empty((n, 6))
    stats = np.empty((n, 2))
    iters = np.empty(n, np.int32)
    conv = np.empty(n, np.bool_)
    for s in prange(n):
        p0 = np.empty(6)
        _initial(boxes[s], sigma, p0)
        it, ok = _fit_one(
            boxes[s],
            p0,
            npar,
            mle,
            v,
            excess,
            max_iter,
            tol,
            sigma_min,
            sigma_max,
            params[s],
            crlb[s],
            stats[s],
        )
        iters[s] = it
        conv[s] = ok
    return params, crlb, stats, iters, conv


# nogil: a viewer that fits in a worker thread keeps its event loop running meanwhile
_fit_all = njit(parallel=True, cache=True, nogil=True)(_fit_all_py)
_fit_all_serial = njit(cache=True, nogil=True)(_fit_all_py)  # one thread, no parallel overhead


def to_photoelectrons(adu: np.ndarray, camera: Camera) -> np.ndarray:
    """Camera ADU to photoelectrons before the EM register: ``(adu - offset) * s / gain``."""
    return (np.asarray(adu, np.float64) - camera.offset) * (camera.sensitivity / camera.em_gain)


def read_variance(camera: Camera) -> float:
    """Read-noise variance in photoelectrons^2 referred to the input of the EM register."""
    return float((camera.read_noise / max(camera.em_gain, 1.0)) ** 2)


def fit_boxes(
    boxes: np.ndarray,
    *,
    method: str = "mle",
    sigma: float = 1.3,
    elliptical: bool = False,
    fixed_sigma: bool = False,
    read_var: float = 0.0,
    em_gain: float = 1.0,
    max_iter: int = 100,
    tol: float = 1e-3,
    threads: int | None = None,
) -> FitResult:
    """Fit pixel-integrated Gaussians to ``boxes`` (``(n, b, b)``, photoelectrons).

    Parameters
    ----------
    boxes
        Square odd-sized boxes, one per spot, in photoelectrons (see :func:`to_photoelectrons`).
    method
        ``"mle"`` (Poisson + read noise) or ``"lsq"`` (weighted least squares).
    sigma
        Starting PSF sigma (px).
    elliptical
        Fit sigma_x and sigma_y separately.
    fixed_sigma
        Keep sigma at ``sigma`` (fit x, y, photons, background only).
    read_var
        Read-noise variance (e-^2).
    em_gain
        > 1 doubles the variance in the Fisher information (EM excess noise).
    max_iter, tol
        Iteration limit; convergence when every step is below ``tol`` (px for positions and
        widths, relative for photons and background).
    threads
        Number of threads (default: numba's, i.e. all cores).

    Returns
    -------
    FitResult
        Positions in box coordinates (pixel centres at integers).
    """
    if method not in ("mle", "lsq"):
        raise ValueError(f"fit method must be 'mle' or 'lsq', got {method!r}")
    boxes = np.ascontiguousarray(boxes, np.float64)
    if boxes.ndim != 3 or boxes.shape[1] != boxes.shape[2]:
        raise ValueError(f"boxes must be (n, b, b), got shape {boxes.shape}")
    n = len(boxes)
    if n == 0:
        z = np.empty((0, 6))
        return FitResult(
            z, z.copy(), np.empty(0), np.empty(0), np.empty(0, np.int32), np.empty(0, bool)
        )
    b = boxes.shape[1]
    prev = numba.get_num_threads()
    n_threads = (
        prev if threads is None else max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS))
    )
    kernel = _fit_all_serial if n_threads == 1 or n < 64 else _fit_all
    if threads is not None:
        numba.set_num_threads(n_threads)
    try:
        params, crlb, stats, iters, conv = kernel(
            boxes,
            float(sigma),
            4 if fixed_sigma else 6 if elliptical else 5,
            method == "mle",
            float(read_var),
            2.0 if em_gain > 1 else 1.0,
            int(max_iter),
            float(tol),
            0.3,
            float(b),
        )
    finally:
        numba.set_num_threads(prev)
    return FitResult(params, crlb, stats[:, 1], stats[:, 0], iters, conv)


def extract_boxes(frame: np.ndarray, coords: np.ndarray, box: int) -> np.ndarray:
    """``(n, box, box)`` crops centred on integer (row, col) ``coords`` (must lie ``box//2``
    inside the frame)."""
    half = box // 2
    coords = np.asarray(coords, np.intp).reshape(-1, 2)
    if len(coords) == 0:
        return np.empty((0, box, box), frame.dtype)
    offs = np.arange(-half, half + 1)
    rows = coords[:, 0, None, None] + offs[None, :, None]
    cols = coords[:, 1, None, None] + offs[None, None, :]
    return frame[rows, cols]


def crlb_symmetric(
    photons: float,
    background: float,
    sigma: float,
    *,
    box: int = 7,
    read_var: float = 0.0,
    x: float | None = None,
    y: float | None = None,
    elliptical: bool = False,
) -> np.ndarray:
    """The Cramer-Rao lower bounds (x, y, N, bg, sx, sy) for one spot with known truth."""
    c = (box - 1) / 2.0
    x = c if x is None else x
    y = c if y is None else y
    d = np.zeros((1, box, box))
    p = np.array([x, y, photons, background, sigma, sigma], float)
    out_p = np.empty(6)
    out_c = np.empty(6)
    out_s = np.empty(2)
    # zero iterations: evaluate the bound at the given parameters
    _fit_one(
        d[0],
        p,
        6 if elliptical else 5,
        True,
        float(read_var),
        1.0,
        0,
        1.0,
        0.3,
        float(box),
        out_p,
        out_c,
        out_s,
    )
    return out_c
