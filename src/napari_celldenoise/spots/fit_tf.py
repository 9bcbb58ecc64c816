"""The batched fitter on TensorFlow: the model and estimators of :mod:`.fit`, vectorised over boxes.

Same model (pixel-integrated Gaussian, Smith et al. 2010, Nat. Methods 7:373), same estimators
(weighted least squares; Poisson maximum likelihood with the read noise folded in, Huang et al.
2013) and the same Levenberg-Marquardt scheme with the same start values, step limits and
stopping rule as the numba fitter, but every box of a batch takes its step at once: the
Jacobian is a ``(batch, 5, pixels)`` tensor, the curvature one batched matrix product and the
step one batched Cholesky solve, as on a GPU in Gpufit (Przybylski et al. 2017, Sci. Rep.
7:15722). Boxes that have converged keep their values while the others go on. The symmetric
model (x, y, photons, background, sigma) only.

TensorFlow is imported here only, and this module must never run in a process with a napari
viewer (docs/architecture.md): :func:`.fit.fit_boxes` calls it only from processes without Qt.
"""

from __future__ import annotations

import functools
import math
import sys

import numpy as np

from ..deep._tf import gpus, import_tensorflow
from .fit_result import FitResult

BATCH = 1 << 18
"""Boxes per TensorFlow call: about 1 GB of float64 work tensors for 7x7 boxes."""


def has_gpu() -> bool:
    """Whether TensorFlow sees a GPU."""
    return bool(gpus())


@functools.cache
def notice(message: str) -> None:
    """Say ``message`` on stderr, once per process."""
    print(message, file=sys.stderr)


def use_gpu(fitter: str, symmetric: bool = True) -> bool:
    """Whether a fit with the setting ``fitter`` (``cpu``, ``gpu``, ``auto``) runs here on
    the GPU; when ``gpu`` or ``auto`` cannot, says why in one line and the CPU fits."""
    if fitter == "cpu":
        return False
    if fitter not in ("gpu", "auto"):
        raise ValueError(f"fitter must be cpu, gpu or auto, got {fitter!r}")
    if "napari" in sys.modules:
        notice(
            "GPU fitter: TensorFlow cannot run next to a napari viewer; "
            "fitting on the CPU (celldenoise spots --fitter gpu runs it)"
        )
        return False
    if not symmetric:
        notice("GPU fitter: symmetric model only; elliptical and fixed-width fits on the CPU")
        return False
    if not has_gpu():
        notice(f"fitter {fitter}: TensorFlow finds no GPU; fitting on the CPU (numba)")
        return False
    return True


def _graph(tf, n: int, mle: bool, v: float, excess: float, max_iter: int, tol: float, jit: bool):
    """The compiled batched fit for ``n x n`` boxes (flat, ``(batch, n * n)``)."""
    f64 = tf.float64
    inf = tf.constant(np.inf, f64)
    k = tf.range(n, dtype=f64)
    edges = tf.concat([k - 0.5, [n - 0.5]], 0)  # n + 1 pixel borders
    sqrt2 = math.sqrt(2.0)
    inv_sqrt2pi = 1.0 / math.sqrt(2.0 * math.pi)
    sigma_min, sigma_max = 0.3, float(n)
    inner = np.arange(1, n - 1) * n
    edge_idx = np.concatenate([np.arange(n), (n - 1) * n + np.arange(n), inner, inner + n - 1])

    def axis(c, s):
        """(batch, n) integrated Gaussian and its derivatives in centre and width."""
        t = (edges[None, :] - c[:, None]) / (sqrt2 * s[:, None])
        erf = tf.math.erf(t)
        g = tf.exp(-t * t)
        k1 = (inv_sqrt2pi / s)[:, None]
        u = edges[None, :] - c[:, None]
        e = 0.5 * (erf[:, 1:] - erf[:, :-1])
        de_c = k1 * (g[:, :-1] - g[:, 1:])
        de_s = k1 / s[:, None] * (u[:, :-1] * g[:, :-1] - u[:, 1:] * g[:, 1:])
        return e, de_c, de_s

    def evaluate(d, w_lsq, p, mle=mle):
        """Objective, chi2, gradient (ascent) and curvature at ``p`` (batch, 5); ``w_lsq``
        the least-squares weights (unused with ``mle``)."""
        nph, bg = p[:, 2], p[:, 3]
        ex, dex, dexs = axis(p[:, 0], p[:, 4])
        ey, dey, deys = axis(p[:, 1], p[:, 4])

        def outer(a, b):
            return tf.reshape(a[:, :, None] * b[:, None, :], (-1, n * n))

        shape = outer(ey, ex)
        mu = nph[:, None] * shape + bg[:, None]
        jac = tf.stack(
            [
                nph[:, None] * outer(ey, dex),
                nph[:, None] * outer(dey, ex),
                shape,
                tf.ones_like(shape),
                nph[:, None] * (outer(ey, dexs) + outer(deys, ex)),
            ],
            1,
        )
        dm = d - mu
        if mle:
            mp = tf.maximum(mu + v, 1e-9)
            dp = tf.maximum(d + v, 0.0)
            obj = tf.reduce_sum(mp - dp * tf.math.log(mp), 1)
            wt = 1.0 / mp
            r = dp * wt - 1.0
            chi2 = tf.reduce_sum(dm * dm * wt, 1)
        else:
            wt = w_lsq
            r = dm * wt
            obj = tf.reduce_sum(dm * r, 1)
            chi2 = obj
        grad = tf.einsum("bp,bkp->bk", r, jac)
        curv = tf.einsum("bkp,blp->bkl", jac * wt[:, None, :], jac)
        return obj, chi2, grad, curv

    def initial(d):
        """The numba fitter's start values: the dimmer half of the edge as background, the
        centroid above it (within 1 px of the centre), the photons above it."""
        edge = tf.sort(tf.gather(d, edge_idx, axis=1), axis=1)
        half = max(len(edge_idx) // 2, 1)
        bg = tf.reduce_mean(edge[:, :half], 1)
        q = tf.nn.relu(d - bg[:, None])
        tot = tf.reduce_sum(q, 1)
        cols = tf.tile(k, [n])
        rows = tf.repeat(k, n)
        c = (n - 1) / 2.0
        safe = tf.where(tot > 0, tot, 1.0)
        x = tf.where(tot > 0, tf.reduce_sum(q * cols, 1) / safe, c)
        y = tf.where(tot > 0, tf.reduce_sum(q * rows, 1) / safe, c)
        x = tf.clip_by_value(x, c - 1.0, c + 1.0)
        y = tf.clip_by_value(y, c - 1.0, c + 1.0)
        return x, y, tf.maximum(tot, 1.0), tf.maximum(bg, 0.0)

    @tf.function(jit_compile=jit, reduce_retracing=True)
    def fit(d, sigma):
        b = tf.shape(d)[0]
        x, y, nph, bg = initial(d)
        p = tf.stack([x, y, nph, bg, tf.fill([b], tf.cast(sigma, f64))], 1)
        t = d + v
        w_lsq = 1.0 / tf.maximum(t, 1.0)
        obj, chi2, grad, curv = evaluate(d, w_lsq, p)
        lam = tf.fill([b], tf.constant(1e-3, f64))
        done = tf.zeros([b], tf.bool)
        conv = tf.zeros([b], tf.bool)
        iters = tf.zeros([b], tf.int32)
        eye = tf.eye(5, dtype=f64)
        bg_min = -0.9 * v

        def body(i, p, p_acc, obj, chi2, grad, curv, lam, done, conv, iters):
            active = tf.logical_not(done)
            iters = iters + tf.cast(active, tf.int32)
            diag = tf.linalg.diag_part(curv)
            damped = curv + eye * (diag * lam[:, None] + 1e-12)[:, :, None]
            chol = tf.linalg.cholesky(damped)
            ok = tf.reduce_all(tf.math.is_finite(chol), [1, 2])
            chol = tf.where(ok[:, None, None], chol, eye[None])
            step = tf.linalg.cholesky_solve(chol, grad[:, :, None])[:, :, 0]
            # at most 1 px in position, half the width in sigma
            lim = tf.concat([tf.ones([b, 2], f64), tf.fill([b, 2], inf), 0.5 * p[:, 4:5]], 1)
            step = tf.clip_by_value(step, -lim, lim)
            trial = p + step
            trial = tf.stack(
                [
                    trial[:, 0],
                    trial[:, 1],
                    tf.maximum(trial[:, 2], 1e-3),
                    tf.maximum(trial[:, 3], bg_min),
                    tf.clip_by_value(trial[:, 4], sigma_min, sigma_max),
                ],
                1,
            )
            rel = tf.stack(
                [
                    tf.ones([b], f64),
                    tf.ones([b], f64),
                    1.0 / tf.maximum(p[:, 2], 1.0),
                    1.0 / tf.maximum(tf.abs(p[:, 3]), 1.0),
                    tf.ones([b], f64),
                ],
                1,
            )
            small = tf.reduce_all(tf.abs(trial - p) * rel <= tol, 1) & ok
            o2, c2, g2, h2 = evaluate(d, w_lsq, trial)
            better = ok & tf.logical_not(small) & (o2 <= obj)
            worse = tf.logical_not(small) & tf.logical_not(better)
            lam_new = tf.where(better, tf.maximum(lam * 0.1, 1e-7), tf.where(worse, lam * 10, lam))
            stuck = worse & (lam_new > 1e10)
            take = active & (better | small)
            upd = active & better
            p = tf.where(take[:, None], trial, p)
            p_acc = tf.where(upd[:, None], trial, p_acc)
            obj = tf.where(upd, o2, obj)
            chi2 = tf.where(upd, c2, chi2)
            grad = tf.where(upd[:, None], g2, grad)
            curv = tf.where(upd[:, None, None], h2, curv)
            lam = tf.where(active, lam_new, lam)
            conv = conv | (active & (small | stuck))
            done = done | (active & (small | stuck))
            return i + 1, p, p_acc, obj, chi2, grad, curv, lam, done, conv, iters

        def more(i, p, p_acc, obj, chi2, grad, curv, lam, done, conv, iters):
            return (i < max_iter) & tf.logical_not(tf.reduce_all(done))

        _, p, p_acc, obj, chi2, _, curv, _, _, conv, iters = tf.while_loop(
            more, body, (0, p, p, obj, chi2, grad, curv, lam, done, conv, iters)
        )
        # Fisher information with model weights at the last accepted point (one step below
        # tol before the estimate), as the numba fitter: the MLE has it from its last
        # evaluation; least squares evaluates the likelihood's there
        if mle:
            fisher, loglik, chi2_out = curv, -obj, chi2
        else:
            mle_obj, chi2_out, _, fisher = evaluate(d, w_lsq, p_acc, mle=True)
            loglik = -mle_obj
        inv = tf.linalg.inv(fisher + eye * 1e-300)
        crlb = tf.sqrt(tf.linalg.diag_part(inv) * excess)
        inside = (p[:, 0] >= -0.5) & (p[:, 0] <= n - 0.5) & (p[:, 1] >= -0.5) & (p[:, 1] <= n - 0.5)
        return p, crlb, loglik, chi2_out, iters, conv & inside

    return fit


_GRAPHS: dict = {}


def fit_boxes_tf(
    boxes: np.ndarray,
    *,
    method: str = "mle",
    sigma: float = 1.3,
    read_var: float = 0.0,
    em_gain: float = 1.0,
    max_iter: int = 100,
    tol: float = 1e-3,
    batch: int = BATCH,
) -> FitResult:
    """:func:`.fit.fit_boxes` (symmetric model) on TensorFlow's default device, in batches."""
    tf = import_tensorflow()
    boxes = np.ascontiguousarray(boxes, np.float64)
    n, b = len(boxes), boxes.shape[1]
    key = (b, method == "mle", float(read_var), em_gain > 1, int(max_iter), float(tol))
    if key not in _GRAPHS:
        # XLA fuses the batch's work tensors on a GPU; on a CPU its compile takes longer
        # than it saves
        _GRAPHS[key] = _graph(tf, b, *key[1:3], 2.0 if key[3] else 1.0, *key[4:], has_gpu())
    fit = _GRAPHS[key]
    parts = []
    for s in range(0, n, batch):
        d = tf.constant(boxes[s : s + batch].reshape(-1, b * b))
        parts.append([np.asarray(t) for t in fit(d, float(sigma))])
    if not parts:
        z = np.empty((0, 6))
        return FitResult(
            z, z.copy(), np.empty(0), np.empty(0), np.empty(0, np.int32), np.empty(0, bool)
        )
    p, crlb, loglik, chi2, iters, conv = (np.concatenate(x) for x in zip(*parts))
    return FitResult(
        np.column_stack([p, p[:, 4]]),
        np.column_stack([crlb, crlb[:, 4]]),
        loglik,
        chi2 / max(b * b - 5, 1),
        iters.astype(np.int32),
        conv,
    )
