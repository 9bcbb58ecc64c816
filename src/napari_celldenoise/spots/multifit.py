"""One- or two-emitter Poisson maximum-likelihood fits of fixed width (numba, analytic derivatives).

Used to decide whether a fit that came out broader than the PSF is two spots (Huang et al. 2011,
Biomed. Opt. Express 2:1377, multi-emitter fitting; Holden et al. 2011, Nat. Methods 8:279,
DAOSTORM): both models are fitted by maximum likelihood and compared by their likelihood ratio.

Model: ``K`` pixel-integrated Gaussians of the same fixed width ``s`` (the frame's PSF) on a
flat background, in a ``m x m`` window with pixel centres at integer coordinates, in
photoelectrons with the camera's read-noise variance ``v`` folded in as in :mod:`.fit`
(Huang et al. 2013): ``d + v`` is Poisson with mean ``mu + v``,
``mu = bg + sum_k N_k Ey(i; y_k) Ex(j; x_k)``. Parameters are ``(y_k, x_k, N_k)`` per emitter,
then ``bg``. Levenberg-Marquardt on the negative log-likelihood with the analytic gradient and
the data-weighted Fisher-scoring curvature ``sum d / mu^2 J J^T`` (Laurence & Chromy 2010,
Nat. Methods 7:338), the same scheme as the single-spot fitters in :mod:`.fit`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .fit import _axis, _solve

MAX_PARAMS = 7


@njit(cache=True)
def _objective(d, q, k, s, v, ey, dey, ex, dex, scratch, g, h, want):
    """Negative log-likelihood ``sum mu - d log mu`` (``d`` already shifted by ``v``); with
    ``want`` also its gradient ``g`` and curvature ``h``."""
    m = d.shape[0]
    npar = 3 * k + 1
    for e in range(k):
        _axis(m, q[3 * e], s, ey[e], dey[e], scratch)
        _axis(m, q[3 * e + 1], s, ex[e], dex[e], scratch)
    if want:
        for a in range(npar):
            g[a] = 0.0
            for b in range(npar):
                h[a, b] = 0.0
    jac = np.empty(MAX_PARAMS)
    obj = 0.0
    bg = q[npar - 1] + v
    for i in range(m):
        for j in range(m):
            mu = bg
            for e in range(k):
                mu += q[3 * e + 2] * ey[e][i] * ex[e][j]
            if mu < 1e-9:
                mu = 1e-9
            dij = d[i, j]
            obj += mu - (dij * math.log(mu) if dij > 0.0 else 0.0)
            if want:
                for e in range(k):
                    n_e = q[3 * e + 2]
                    jac[3 * e] = n_e * dey[e][i] * ex[e][j]
                    jac[3 * e + 1] = n_e * ey[e][i] * dex[e][j]
                    jac[3 * e + 2] = ey[e][i] * ex[e][j]
                jac[npar - 1] = 1.0
                r = 1.0 - dij / mu
                w = dij / (mu * mu)
                if w < 1e-12:
                    w = 1e-12
                for a in range(npar):
                    g[a] += r * jac[a]
                    for b in range(a + 1):
                        h[a, b] += w * jac[a] * jac[b]
    if want:
        for a in range(npar):
            for b in range(a):
                h[b, a] = h[a, b]
    return obj


@njit(cache=True)
def fit_emitters(data, q0, k, s, v, max_iter=100, tol=1e-5):
    """Fit ``k`` (1 or 2) emitters of width ``s`` plus a flat background to ``data``
    (photoelectrons, ``m x m``, neighbours already subtracted, NOT shifted by ``v``).

    ``q0`` holds the start ``(y, x, N) * k + (bg,)`` in window pixel coordinates (0 is the
    first pixel's centre). Returns ``(q, loglik)``: the estimate and its log-likelihood
    ``sum d log mu - mu`` with ``d, mu`` shifted by ``v`` (data-only constants dropped, so the
    difference of two such values is the log-likelihood ratio)."""
    m = data.shape[0]
    npar = 3 * k + 1
    d = np.empty((m, m))
    for i in range(m):
        for j in range(m):
            t = data[i, j] + v
            d[i, j] = t if t > 0.0 else 0.0
    ey = np.empty((k, m))
    dey = np.empty((k, m))
    ex = np.empty((k, m))
    dex = np.empty((k, m))
    scratch = np.empty(m)
    g = np.zeros(MAX_PARAMS)
    h = np.zeros((MAX_PARAMS, MAX_PARAMS))
    g2 = np.zeros(MAX_PARAMS)
    h2 = np.zeros((MAX_PARAMS, MAX_PARAMS))
    a = np.zeros((MAX_PARAMS, MAX_PARAMS))
    step = np.zeros(MAX_PARAMS)
    q = q0.copy()
    trial = q0.copy()
    lo, hi = -0.5, m - 0.5
    bg_min = -0.9 * v if v > 0 else 0.0
    obj = _objective(d, q, k, s, v, ey, dey, ex, dex, scratch, g, h, True)
    lam = 1e-3
    it = 0
    while it < max_iter:
        it += 1
        for i in range(npar):
            for j in range(npar):
                a[i, j] = h[i, j]
            a[i, i] = h[i, i] * (1.0 + lam) + 1e-12
        # descent on the negative log-likelihood: solve (H + lam diag H) step = -g
        for i in range(npar):
            g2[i] = -g[i]
        if not _solve(a, g2, npar, step):
            lam *= 10.0
            if lam > 1e10:
                break
            continue
        for e in range(k):
            for c in range(2):
                t = step[3 * e + c]
                step[3 * e + c] = 1.0 if t > 1.0 else (-1.0 if t < -1.0 else t)
        for i in range(npar):
            trial[i] = q[i] + step[i]
        for e in range(k):
            for c in range(2):
                t = trial[3 * e + c]
                trial[3 * e + c] = lo if t < lo else (hi if t > hi else t)
            if trial[3 * e + 2] < 1e-3:
                trial[3 * e + 2] = 1e-3
        if trial[npar - 1] < bg_min:
            trial[npar - 1] = bg_min
        obj2 = _objective(d, trial, k, s, v, ey, dey, ex, dex, scratch, g2, h2, True)
        if obj2 <= obj:
            small = True
            for i in range(npar):
                dk = abs(trial[i] - q[i])
                if i == npar - 1 or i % 3 == 2:
                    dk /= max(abs(q[i]), 1.0)
                if dk > tol:
                    small = False
                q[i] = trial[i]
                g[i] = g2[i]
                for j in range(npar):
                    h[i, j] = h2[i, j]
            obj = obj2
            lam = max(lam * 0.1, 1e-7)
            if small:
                break
        else:
            lam *= 10.0
            if lam > 1e10:
                break
    # g, h were last written by an accepted step or the start: recompute the objective only
    obj = _objective(d, q, k, s, v, ey, dey, ex, dex, scratch, g2, h2, False)
    return q, -obj
