"""Pixel-integrated 2D Gaussian fitting with Cramer-Rao lower bounds (numba, on threads).

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

import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numba
import numpy as np
from numba import njit

from .fit_result import FitResult
from .simulate import Camera

PARAMS = ("x", "y", "photons", "background", "sigma_x", "sigma_y")
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT2 = math.sqrt(2.0)
# reassociation lets LLVM interleave the curvature sums; no flag that assumes finite values
_FASTMATH = {"nsz", "arcp", "contract", "reassoc"}
BLOCK = 512
"""Spots per task when several threads fit: small enough that a thread slowed by other work
on the machine leaves its share to the others."""


# Abramowitz & Stegun 7.1.26 (Hastings): erf(x) = 1 - t P(t) exp(-x^2), t = 1 / (1 + p x),
# x >= 0, absolute error <= 1.5e-7: a model error below 1e-6 photons per photon of the spot,
# ten thousand times below the Poisson noise of any pixel (the Cramer-Rao bound is unchanged)
_ERF_P = 0.3275911
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _erf_from_gauss(t, g):
    """``erf(t)`` given ``g = exp(-t^2)`` (which the model has anyway), A&S 7.1.26."""
    a = abs(t)
    u = 1.0 / (1.0 + _ERF_P * a)
    poly = u * (_ERF_A[0] + u * (_ERF_A[1] + u * (_ERF_A[2] + u * (_ERF_A[3] + u * _ERF_A[4]))))
    e = 1.0 - poly * g
    return e if t >= 0.0 else -e


@njit(cache=True, inline="always")
def _erf_exact(t, g):
    """``erf(t)`` from libm (``g`` unused): the reference model."""
    return math.erf(t)


def _axis_with(erf):
    """The axis kernel with the erf ``erf(t, exp(-t^2))``."""

    @njit(cache=True, inline="always", fastmath=_FASTMATH)
    def axis(n, c, s, e, de_c, de_s):
        """One axis of the model: ``e[k]`` (the Gaussian integrated over pixel ``k``) and its
        derivatives in the centre ``c`` and the width ``s``. Neighbouring pixels share a border,
        so the ``n + 1`` borders cost one Gaussian each, and their erfs follow from it
        (:func:`_erf_from_gauss`); the Gaussians ``exp(-t_k^2)`` follow by
        ``G_{k+1} = G_k R_k``, ``R_{k+1} = R_k exp(-2 d^2)`` (``t_{k+1} = t_k + d``) from three
        exps while the centre is near the box (far from it, where the products could overflow,
        each is taken on its own)."""
        inv = 1.0 / (_SQRT2 * s)
        k1 = _INV_SQRT2PI / s
        k2 = k1 / s
        lo = -0.5 - c
        t = lo * inv
        g_lo = math.exp(-t * t)
        erf_lo = erf(t, g_lo)
        recur = -2.0 < c < n + 1.0
        ratio = 1.0
        rstep = 1.0
        if recur:
            ratio = math.exp(-2.0 * t * inv - inv * inv)
            rstep = math.exp(-2.0 * inv * inv)
        for k in range(n):
            hi = k + 0.5 - c
            t = hi * inv
            if recur:
                g_hi = g_lo * ratio
                ratio *= rstep
            else:
                g_hi = math.exp(-t * t)
            erf_hi = erf(t, g_hi)
            e[k] = 0.5 * (erf_hi - erf_lo)
            de_c[k] = k1 * (g_lo - g_hi)
            de_s[k] = k2 * (lo * g_lo - hi * g_hi)
            lo = hi
            erf_lo = erf_hi
            g_lo = g_hi

    return axis


_axis = _axis_with(_erf_exact)
_axis_fast = _axis_with(_erf_from_gauss)
"""The single-spot fitter's axis: A&S 7.1.26 in place of libm's erf (half the model's time).
:func:`_axis` (libm) stays the reference, and the multi-emitter fits use it."""


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
def _solve_into(a, g, m, out, lmat, y):
    """Solve ``a out = g`` (``m x m``, SPD) by Cholesky, with the caller's scratch ``lmat``
    (``m x m`` at least) and ``y`` (``m``); False if not SPD."""
    if not _cholesky(a, m, lmat):
        return False
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


@njit(cache=True, inline="always")
def _cholesky5(mats, hi, scale, add):
    """:func:`_cholesky` unrolled for 5 parameters (the same operations in the same order, in
    registers: no loops over a 5 x 5 matrix in memory) of ``mats[hi]`` with its diagonal
    ``a_ii * scale + add``: ``(ok, l00, l10, l11, l20, l21, l22, ..., l44)``, row by row."""
    z = 0.0
    a00 = mats[hi, 0, 0] * scale + add
    if not a00 > 0.0:  # NaN included, as in _cholesky's sqrt of it
        return False, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z
    l00 = math.sqrt(a00)
    l10 = mats[hi, 1, 0] / l00
    l20 = mats[hi, 2, 0] / l00
    l30 = mats[hi, 3, 0] / l00
    l40 = mats[hi, 4, 0] / l00
    s = mats[hi, 1, 1] * scale + add - l10 * l10
    if not s > 0.0:
        return False, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z
    l11 = math.sqrt(s)
    l21 = (mats[hi, 2, 1] - l20 * l10) / l11
    l31 = (mats[hi, 3, 1] - l30 * l10) / l11
    l41 = (mats[hi, 4, 1] - l40 * l10) / l11
    s = mats[hi, 2, 2] * scale + add - l20 * l20 - l21 * l21
    if not s > 0.0:
        return False, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z
    l22 = math.sqrt(s)
    l32 = (mats[hi, 3, 2] - l30 * l20 - l31 * l21) / l22
    l42 = (mats[hi, 4, 2] - l40 * l20 - l41 * l21) / l22
    s = mats[hi, 3, 3] * scale + add - l30 * l30 - l31 * l31 - l32 * l32
    if not s > 0.0:
        return False, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z
    l33 = math.sqrt(s)
    l43 = (mats[hi, 4, 3] - l40 * l30 - l41 * l31 - l42 * l32) / l33
    s = mats[hi, 4, 4] * scale + add - l40 * l40 - l41 * l41 - l42 * l42 - l43 * l43
    if not s > 0.0:
        return False, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z
    l44 = math.sqrt(s)
    return True, l00, l10, l11, l20, l21, l22, l30, l31, l32, l33, l40, l41, l42, l43, l44


@njit(cache=True, inline="always")
def _solve5_damped(mats, hi, lam, vecs, gi, out):
    """:func:`_solve_into` unrolled for 5 parameters, on the Levenberg-Marquardt system
    ``(H + lam diag(H) + 1e-12) out = g`` of the curvature ``mats[hi]`` and gradient
    ``vecs[gi]``; False if the damped matrix is not positive definite."""
    ok, l00, l10, l11, l20, l21, l22, l30, l31, l32, l33, l40, l41, l42, l43, l44 = _cholesky5(
        mats, hi, 1.0 + lam, 1e-12
    )
    if not ok:
        return False
    y0 = vecs[gi, 0] / l00
    y1 = (vecs[gi, 1] - l10 * y0) / l11
    y2 = (vecs[gi, 2] - l20 * y0 - l21 * y1) / l22
    y3 = (vecs[gi, 3] - l30 * y0 - l31 * y1 - l32 * y2) / l33
    y4 = (vecs[gi, 4] - l40 * y0 - l41 * y1 - l42 * y2 - l43 * y3) / l44
    x4 = y4 / l44
    x3 = (y3 - l43 * x4) / l33
    x2 = (y2 - l32 * x3 - l42 * x4) / l22
    x1 = (y1 - l21 * x2 - l31 * x3 - l41 * x4) / l11
    out[0] = (y0 - l10 * x1 - l20 * x2 - l30 * x3 - l40 * x4) / l00
    out[1] = x1
    out[2] = x2
    out[3] = x3
    out[4] = x4
    return True


@njit(cache=True, inline="always")
def _inverse_diagonal5(mats, hi, scale, out):
    """:func:`_inverse_diagonal` unrolled for 5 parameters: the columns of ``L^-1``
    (``m_ik = -sum_q l_iq m_qk / l_ii``) and their norms; False if not positive definite."""
    ok, l00, l10, l11, l20, l21, l22, l30, l31, l32, l33, l40, l41, l42, l43, l44 = _cholesky5(
        mats, hi, 1.0, 0.0
    )
    if not ok:
        return False
    m00 = 1.0 / l00
    m10 = -(l10 * m00) / l11
    m20 = -(l20 * m00 + l21 * m10) / l22
    m30 = -(l30 * m00 + l31 * m10 + l32 * m20) / l33
    m40 = -(l40 * m00 + l41 * m10 + l42 * m20 + l43 * m30) / l44
    m11 = 1.0 / l11
    m21 = -(l21 * m11) / l22
    m31 = -(l31 * m11 + l32 * m21) / l33
    m41 = -(l41 * m11 + l42 * m21 + l43 * m31) / l44
    m22 = 1.0 / l22
    m32 = -(l32 * m22) / l33
    m42 = -(l42 * m22 + l43 * m32) / l44
    m33 = 1.0 / l33
    m43 = -(l43 * m33) / l44
    m44 = 1.0 / l44
    out[0] = math.sqrt((m00 * m00 + m10 * m10 + m20 * m20 + m30 * m30 + m40 * m40) * scale)
    out[1] = math.sqrt((m11 * m11 + m21 * m21 + m31 * m31 + m41 * m41) * scale)
    out[2] = math.sqrt((m22 * m22 + m32 * m32 + m42 * m42) * scale)
    out[3] = math.sqrt((m33 * m33 + m43 * m43) * scale)
    out[4] = math.sqrt(m44 * m44 * scale)
    return True


@njit(cache=True)
def _solve(a, g, m, out):
    """:func:`_solve_into` with its own scratch."""
    size = a.shape[0]
    return _solve_into(a, g, m, out, np.zeros((size, size)), np.zeros(size))


@njit(cache=True)
def _workspace(n):
    """Scratch for fitting ``n x n`` boxes, made once per thread and reused for every spot:
    the fit allocates nothing per spot or per iteration. Slots are picked by index (no array
    views in the hot loop, whose reference counts would cost as much as the pixels). Pixel
    arrays are flat, ``q = i * n + j``."""
    ax = np.empty((6, n))  # ex, dex, dexs, ey, dey, deys
    rw = np.empty((3, n * n))  # weighted residual, weight, least-squares weights
    mats = np.zeros((5, 6, 6))  # curvature and trial curvature, damped, Cholesky, Fisher
    vecs = np.zeros((8, 6))  # gradient and trial gradient, p and trial, step, y, scratch, jacobian
    edge = np.empty(max(4 * n - 4, 1))
    flat = np.empty((4, n * n))  # model, model + read variance, its log, mantissa bits
    jac = np.empty((4, n * n))  # the symmetric model's Jacobian: x, y, photons, sigma
    return ax, rw, mats, vecs, edge, flat, flat.view(np.int64), jac


_LN2 = math.log(2.0)
_MANTISSA = (1 << 52) - 1
_EXP_ONE = 1023 << 52


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _log_rows(flat, bits, src, dst, m):
    """``flat[dst, :m] = log(flat[src, :m])`` for positive finite values, in loops without
    calls that the compiler vectorises: the exponent from the bits, the mantissa ``f`` in
    ``[sqrt(1/2), sqrt(2))`` and ``log f = 2 atanh(s)``, ``s = (f - 1) / (f + 1)``,
    ``|s| <= 0.172``, by its series to ``s^23`` (the next term is below 1e-18)."""
    for q in range(m):
        b = bits[src, q]
        flat[dst, q] = float((b >> 52) - 1023)
        bits[3, q] = (b & _MANTISSA) | _EXP_ONE
    for q in range(m):
        f = flat[3, q]
        e = flat[dst, q]
        if f > _SQRT2:
            f *= 0.5
            e += 1.0
        s = (f - 1.0) / (f + 1.0)
        z = s * s
        t = 1.0 / 23.0
        t = t * z + 1.0 / 21.0
        t = t * z + 1.0 / 19.0
        t = t * z + 1.0 / 17.0
        t = t * z + 1.0 / 15.0
        t = t * z + 1.0 / 13.0
        t = t * z + 1.0 / 11.0
        t = t * z + 1.0 / 9.0
        t = t * z + 1.0 / 7.0
        t = t * z + 1.0 / 5.0
        t = t * z + 1.0 / 3.0
        t = t * z + 1.0
        flat[dst, q] = e * _LN2 + 2.0 * s * t


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _poisson_terms(d, v, rw, flat, bits, m):
    """The Poisson + read-noise terms of the model in ``flat[0]`` (``d`` flat): the weighted
    residual into ``rw[0]``, the weight ``1 / (mu + v)`` into ``rw[1]``; returns
    ``(-loglik, chi2)`` (up to a data constant)."""
    obj = 0.0
    chi2 = 0.0
    for q in range(m):
        mp = flat[0, q] + v
        flat[1, q] = mp if mp > 1e-9 else 1e-9
    _log_rows(flat, bits, 1, 2, m)
    for q in range(m):
        mp = flat[1, q]
        dp = d[q] + v
        if dp < 0.0:
            dp = 0.0
        obj += mp - dp * flat[2, q]
        wt = 1.0 / mp
        rw[0, q] = dp * wt - 1.0
        rw[1, q] = wt
        dm = d[q] - flat[0, q]
        chi2 += dm * dm * wt
    return obj, chi2


@njit(cache=True, fastmath=_FASTMATH)
def _residuals(d, p, npar, mle, v, ws):
    """The model at ``p`` (``d`` flat): the axes into ``ax``, each pixel's weighted residual
    into ``rw[0]`` and its weight into ``rw[1]`` (``rw[2]`` holds the least-squares weights);
    returns the objective (to minimise) and ``chi2 = sum (d - mu)^2 / (mu + v)`` (with
    ``mle``, whose weights are the model's variance)."""
    ax, rw, flat, bits = ws[0], ws[1], ws[5], ws[6]
    n = ax.shape[1]
    m = n * n
    _axis_fast(n, p[0], p[4], ax[0], ax[1], ax[2])
    _axis_fast(n, p[1], p[5] if npar == 6 else p[4], ax[3], ax[4], ax[5])
    nph = p[2]
    bg = p[3]
    for i in range(n):
        neyi = nph * ax[3, i]
        for j in range(n):
            flat[0, i * n + j] = neyi * ax[0, j] + bg
    obj = 0.0
    chi2 = 0.0
    if mle:
        obj, chi2 = _poisson_terms(d, v, rw, flat, bits, m)
    else:
        for q in range(m):
            dm = d[q] - flat[0, q]
            wt = rw[2, q]
            r = dm * wt
            obj += dm * r
            rw[0, q] = r
            rw[1, q] = wt
    return obj, chi2


@njit(cache=True, fastmath=_FASTMATH)
def _curvature5(n, nph, ax, rw, jac, vecs, gi, mats, hi):
    """Gradient (ascent direction) into ``vecs[gi]`` and Gauss-Newton curvature into
    ``mats[hi]`` of the symmetric model (5 parameters), from :func:`_residuals`; unrolled.
    The Jacobian goes into the flat rows of ``jac`` first, so that the sums run over all
    ``n * n`` pixels in one loop that the compiler vectorises (not ``n`` short ones)."""
    for i in range(n):
        eyi = ax[3, i]
        deyi = nph * ax[4, i]
        deysi = nph * ax[5, i]
        neyi = nph * eyi
        for j in range(n):
            q = i * n + j
            jac[0, q] = neyi * ax[1, j]
            jac[1, q] = deyi * ax[0, j]
            jac[2, q] = eyi * ax[0, j]
            jac[3, q] = neyi * ax[2, j] + deysi * ax[0, j]
    _sums5(n * n, rw, jac, vecs, gi, mats, hi)


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _sums5(m, rw, jac, vecs, gi, mats, hi):
    """The gradient and curvature sums of :func:`_curvature5` over the ``m`` pixels of the
    Jacobian rows ``jac`` (x, y, photons, sigma; the background's is 1) and the weighted
    residuals and weights in ``rw[0]``, ``rw[1]``."""
    g0 = g1 = g2 = g3 = g4 = 0.0
    h00 = h10 = h11 = h20 = h21 = h22 = h30 = h31 = h32 = h33 = 0.0
    h40 = h41 = h42 = h43 = h44 = 0.0
    for q in range(m):
        r = rw[0, q]
        wt = rw[1, q]
        j0 = jac[0, q]
        j1 = jac[1, q]
        j2 = jac[2, q]
        j4 = jac[3, q]
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
    vecs[gi, 0] = g0
    vecs[gi, 1] = g1
    vecs[gi, 2] = g2
    vecs[gi, 3] = g3
    vecs[gi, 4] = g4
    h = mats[hi]
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


@njit(cache=True, fastmath=_FASTMATH)
def _fisher5(d, v, ws, hi):
    """``(-loglik, chi2)`` and the Fisher information (into ``mats[hi]``) of the Poisson +
    read-noise model of the last :func:`_evaluate` of the symmetric model (its model in
    ``flat[0]``, its Jacobian in ``jac``), without evaluating the model again."""
    rw, mats, vecs, flat, bits, jac = ws[1], ws[2], ws[3], ws[5], ws[6], ws[7]
    m = flat.shape[1]
    obj, chi2 = _poisson_terms(d, v, rw, flat, bits, m)
    _sums5(m, rw, jac, vecs, 6, mats, hi)
    return obj, chi2


@njit(cache=True, fastmath=_FASTMATH)
def _curvature(n, npar, nph, ax, rw, vecs, gi, mats, hi):
    """:func:`_curvature5` for 4 (width fixed) or 6 (elliptical) parameters."""
    jac = vecs[7]
    for a in range(npar):
        vecs[gi, a] = 0.0
        for b in range(npar):
            mats[hi, a, b] = 0.0
    jac[3] = 1.0
    for i in range(n):
        for j in range(n):
            r = rw[0, i * n + j]
            wt = rw[1, i * n + j]
            jac[0] = nph * ax[3, i] * ax[1, j]
            jac[1] = nph * ax[4, i] * ax[0, j]
            jac[2] = ax[3, i] * ax[0, j]
            if npar == 6:
                jac[4] = nph * ax[3, i] * ax[2, j]
                jac[5] = nph * ax[5, i] * ax[0, j]
            else:
                jac[4] = nph * (ax[3, i] * ax[2, j] + ax[5, i] * ax[0, j])
            for a in range(npar):
                vecs[gi, a] += r * jac[a]
                wa = wt * jac[a]
                for b in range(a + 1):
                    mats[hi, a, b] += wa * jac[b]
    for a in range(npar):
        for b in range(a + 1, npar):
            mats[hi, a, b] = mats[hi, b, a]


@njit(cache=True, inline="always")
def _evaluate(d, p, npar, mle, v, ws, gi, hi):
    """Objective, chi2 (see :func:`_residuals`), gradient into ``vecs[gi]`` and curvature
    into ``mats[hi]`` at ``p``."""
    ax, rw, mats, vecs = ws[0], ws[1], ws[2], ws[3]
    obj, chi2 = _residuals(d, p, npar, mle, v, ws)
    if npar == 5:
        _curvature5(ax.shape[1], p[2], ax, rw, ws[7], vecs, gi, mats, hi)
    else:
        _curvature(ax.shape[1], npar, p[2], ax, rw, vecs, gi, mats, hi)
    return obj, chi2


@njit(cache=True)
def _fit_one(
    d, p0, npar, mle, v, excess, max_iter, tol, sigma_min, sigma_max, out_p, out_c, out_s, ws
):
    """Fit one box (``n x n``, flat) from the start ``p0`` with the scratch ``ws``
    (:func:`_workspace`); writes params/crlb and ``out_s = (chi2 per degree of freedom,
    loglik)``; returns ``(iterations, converged)``.

    Levenberg-Marquardt: a step below ``tol`` in every parameter is taken without evaluating
    the objective there and ends the fit (a damped Gauss-Newton step descends). The
    fit then reports the bounds, log-likelihood and chi2 of the point where it took that
    step, less than ``tol`` away (a relative change of the bounds of about ``tol`` times the
    step over the width): the maximum-likelihood fit has them from its last evaluation, the
    least-squares fit from that evaluation's model and Jacobian (:func:`_fisher5`)."""
    rw, mats, vecs = ws[1], ws[2], ws[3]
    n = ws[0].shape[1]
    if not mle:
        for q in range(n * n):
            t = d[q] + v
            rw[2, q] = 1.0 / (t if t > 1.0 else 1.0)
    # slots: gradient/curvature of the current point (cur) and of the trial (1 - cur);
    # parameters of the current point in vecs[2 + pc], of the trial in vecs[3 - pc]
    cur = 0
    pc = 0
    for k in range(6):
        vecs[2, k] = p0[k]
    damped, lmat, fisher = mats[2], mats[3], mats[4]
    step, y = vecs[4], vecs[5]
    lam = 1e-3
    obj, chi2 = _evaluate(d, vecs[2], npar, mle, v, ws, cur, cur)
    fresh = True  # the workspace's model and Jacobian are those of the current point
    acc = pc  # the slot of the last accepted point, whose bounds are reported
    converged = False
    it = 0
    bg_min = -0.9 * v
    while it < max_iter:
        it += 1
        p = vecs[2 + pc]
        trial = vecs[3 - pc]
        if npar == 5:
            solved = _solve5_damped(mats, cur, lam, vecs, cur, step)
        else:
            for i in range(npar):
                for j in range(npar):
                    damped[i, j] = mats[cur, i, j]
                damped[i, i] = mats[cur, i, i] * (1.0 + lam) + 1e-12
            solved = _solve_into(damped, vecs[cur], npar, step, lmat, y)
        if not solved:
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
        for k in range(6):
            trial[k] = p[k] + step[k] if k < npar else p[k]
        if trial[2] < 1e-3:
            trial[2] = 1e-3
        if trial[3] < bg_min:
            trial[3] = bg_min
        for k in range(4, npar):
            if trial[k] < sigma_min:
                trial[k] = sigma_min
            elif trial[k] > sigma_max:
                trial[k] = sigma_max
        small = True
        for k in range(npar):
            dk = abs(trial[k] - p[k])
            if k == 2:
                dk /= max(p[2], 1.0)
            elif k == 3:
                dk /= max(abs(p[3]), 1.0)
            if dk > tol:
                small = False
        if small:
            pc = 1 - pc
            converged = True
            break
        obj_new, chi2_new = _evaluate(d, trial, npar, mle, v, ws, 1 - cur, 1 - cur)
        fresh = obj_new <= obj
        if fresh:
            pc = 1 - pc
            acc = pc
            cur = 1 - cur
            obj = obj_new
            chi2 = chi2_new
            lam = max(lam * 0.1, 1e-7)
        else:
            lam *= 10.0
            if lam > 1e10:
                converged = True  # no step improves: at the optimum within rounding
                break
    p = vecs[2 + pc]
    if npar <= 5:
        p[5] = p[4]
    for k in range(6):
        out_p[k] = p[k]
    if p[0] < -0.5 or p[0] > n - 0.5 or p[1] < -0.5 or p[1] > n - 0.5:
        converged = False
    # Fisher information of the Poisson + read-noise model at the estimate: the MLE's
    # curvature, with model weights; its objective is -loglik (up to a data constant).
    # The MLE has them from its last evaluation (at the estimate, or one step below tol
    # before it); least squares at the same point, from that evaluation's model where a
    # rejected trial has not overwritten it since
    fi = cur
    if mle:
        fisher = mats[cur]
    elif npar == 5 and fresh:
        fi = 4
        obj, chi2 = _fisher5(d, v, ws, 4)
    else:
        fi = 4
        obj, chi2 = _evaluate(d, vecs[2 + acc], npar, True, v, ws, 1 - cur, 4)
    out_s[1] = -obj
    out_s[0] = chi2 / max(n * n - npar, 1)
    if npar == 5:
        inverted = _inverse_diagonal5(mats, fi, excess, out_c)
    else:
        inverted = _inverse_diagonal(fisher, npar, excess, out_c, lmat, y)
    if not inverted:
        for k in range(6):
            out_c[k] = np.nan
    if npar == 4:
        out_c[4] = 0.0
    if npar <= 5:
        out_c[5] = out_c[4]
    return it, converged


@njit(cache=True)
def _inverse_diagonal(a, m, scale, out, lmat, y):
    """``sqrt(diag(inv(a / scale)))`` of an SPD ``m x m`` matrix by one Cholesky factorisation
    (``diag(A^-1)_k = |L^-1 e_k|^2``), with scratch ``lmat`` and ``y``; False if ``a`` is not
    positive definite."""
    if not _cholesky(a, m, lmat):
        return False
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
def _initial(d, n, sigma, p, edge):
    """Start values for an ``n x n`` box (``d`` flat): the dimmer half of the box edge as
    background, the centroid above it (within 1 px of the centre), the photons above it;
    ``edge`` is scratch."""
    k = 0
    for j in range(n):
        edge[k] = d[j]
        edge[k + 1] = d[(n - 1) * n + j]
        k += 2
    for i in range(1, n - 1):
        edge[k] = d[i * n]
        edge[k + 1] = d[i * n + n - 1]
        k += 2
    # the mean of the ``half`` smallest: a value is among them when fewer than ``half`` others
    # rank before it (smaller, or equal and earlier); counting, without the branches of a sort
    half = max(len(edge) // 2, 1)
    bg = 0.0
    for i in range(k):
        t = edge[i]
        rank = 0
        for j in range(i):
            rank += edge[j] <= t
        for j in range(i + 1, k):
            rank += edge[j] < t
        if rank < half:
            bg += t
    bg /= half
    tot = 0.0
    sx = 0.0
    sy = 0.0
    for i in range(n):
        for j in range(n):
            q = max(d[i * n + j] - bg, 0.0)  # without a branch: zero adds nothing
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


# nogil: blocks of spots fit on several Python threads at once (see fit_boxes), and a viewer
# that fits in a worker thread keeps its event loop running meanwhile
@njit(cache=True, nogil=True)
def _fit_block(
    boxes,
    start,
    stop,
    sigma,
    npar,
    mle,
    v,
    excess,
    max_iter,
    tol,
    sigma_min,
    sigma_max,
    params,
    crlb,
    stats,
    iters,
    conv,
):
    """Fit ``boxes[start:stop]`` into the same rows of the outputs, one scratch for all."""
    n = boxes.shape[1]
    flat = boxes.reshape(boxes.shape[0], n * n)
    ws = _workspace(n)
    p0 = np.empty(6)
    for s in range(start, stop):
        _initial(flat[s], n, sigma, p0, ws[4])
        it, ok = _fit_one(
            flat[s],
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
            ws,
        )
        iters[s] = it
        conv[s] = ok


def to_photoelectrons(adu: np.ndarray, camera: Camera) -> np.ndarray:
    """Camera ADU to photoelectrons before the EM register: ``(adu - offset) * s / gain``."""
    return (np.asarray(adu, np.float64) - camera.offset) * (camera.sensitivity / camera.em_gain)


def read_variance(camera: Camera) -> float:
    """Read-noise variance in photoelectrons^2 referred to the input of the EM register."""
    return float((camera.read_noise / max(camera.em_gain, 1.0)) ** 2)


@lru_cache(maxsize=4)
def _pool(n_threads: int, pid: int) -> ThreadPoolExecutor:
    """One pool per thread count and process (``pid``: a forked child has none of its
    parent's threads, so it makes its own): no thread start per call."""
    return ThreadPoolExecutor(n_threads, thread_name_prefix="celldenoise-fit")


def _fit_on_threads(boxes: np.ndarray, n: int, n_threads: int, args: tuple) -> None:
    """Fit on ``n_threads`` threads, each taking the next block of :data:`BLOCK` spots as it
    comes free: one task per thread, not per block, so that no thread waits on the pool (or
    the interpreter lock) between blocks."""
    blocks = itertools.count()  # next() on a count is atomic under the interpreter lock

    def work():
        while (start := next(blocks) * BLOCK) < n:
            _fit_block(boxes, start, min(start + BLOCK, n), *args)

    pool = _pool(n_threads, os.getpid())
    for task in [pool.submit(work) for _ in range(min(n_threads, -(-n // BLOCK)))]:
        task.result()


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
    fitter: str = "cpu",
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
        Number of threads (default: numba's, i.e. all cores). Blocks of :data:`BLOCK` spots
        are handed to the threads as they come free.
    fitter
        ``cpu`` (numba), ``gpu`` or ``auto``: the batched TensorFlow fitter
        (:mod:`.fit_tf`) where TensorFlow has a GPU and no viewer shares the process, else
        the CPU with a one-line message (see :func:`.fit_tf.use_gpu`).

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
    if fitter != "cpu":
        from . import fit_tf

        if fit_tf.use_gpu(fitter, symmetric=not (elliptical or fixed_sigma)):
            return fit_tf.fit_boxes_tf(
                boxes,
                method=method,
                sigma=sigma,
                read_var=read_var,
                em_gain=em_gain,
                max_iter=max_iter,
                tol=tol,
            )
    n_threads = numba.get_num_threads() if threads is None else max(1, int(threads))
    params = np.empty((n, 6))
    crlb = np.empty((n, 6))
    stats = np.empty((n, 2))
    iters = np.empty(n, np.int32)
    conv = np.empty(n, np.bool_)
    args = (
        float(sigma),
        4 if fixed_sigma else 6 if elliptical else 5,
        method == "mle",
        float(read_var),
        2.0 if em_gain > 1 else 1.0,
        int(max_iter),
        float(tol),
        0.3,
        float(boxes.shape[1]),
        params,
        crlb,
        stats,
        iters,
        conv,
    )
    if n_threads == 1 or n <= BLOCK:
        _fit_block(boxes, 0, n, *args)
    else:
        _fit_on_threads(boxes, n, n_threads, args)
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
        d[0].ravel(),
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
        _workspace(box),
    )
    return out_c
