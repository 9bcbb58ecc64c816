"""How sure a spot is: the likelihood ratio of a spot against a flat background, as a z-like score.

``significance = sqrt(2 ln LR)`` under the Poisson + read-noise model of the maximum-likelihood
fit (Huang et al. 2013, Nat. Methods 10:653), the generalised likelihood-ratio test of a
known-shape source (Smith et al. 2010, Nat. Methods 7:373). It does not depend on the camera's
units, so one default threshold (``SpotsConfig.min_significance``) serves every data set.
"""

from __future__ import annotations

import numpy as np

from .psf import model_boxes


def fit_significance(boxes: np.ndarray, res, read_var: float, method: str) -> np.ndarray:
    """The likelihood-ratio significance (:func:`significance`) of each fit.

    The likelihood ratio needs the maximum of the likelihood. An MLE fit is at it; a
    least-squares fit (data-weighted, so its photons and background are biased) is not, and
    the ratio at the LSQ estimate would drop dim spots that the MLE keeps. For LSQ the
    likelihood is therefore maximised over photons and background with the fitted position
    and width held (a concave problem: Newton steps, :func:`profile_loglik`)."""
    if method != "lsq":
        return significance(boxes, res.loglik, read_var)
    return significance(boxes, profile_loglik(boxes, res.params, read_var), read_var)


def profile_loglik(
    boxes: np.ndarray,
    params: np.ndarray,
    read_var: float,
    *,
    iterations: int = 8,
    return_params: bool = False,
):
    """Poisson + read-noise log-likelihood (the fit's, same dropped constant) maximised over
    photons ``N`` and background ``b`` for the given positions and widths in ``params``.

    The model ``mu = N * psf + b`` is linear in ``(N, b)`` and the log-likelihood concave in
    them, so a few Newton steps from the given values converge. With ``return_params`` also
    the ``(n, 2)`` maximising ``(N, b)`` (photoelectrons)."""
    n = len(boxes)
    box = boxes.shape[-1]
    if n == 0:
        return (np.empty(0), np.empty((0, 2))) if return_params else np.empty(0)
    d = np.maximum(boxes.reshape(n, -1) + read_var, 0.0)
    unit = np.asarray(params, float).copy()
    unit[:, 2], unit[:, 3] = 1.0, 0.0
    psf = model_boxes(unit, box).reshape(n, -1)
    nb = np.column_stack([np.maximum(params[:, 2], 1e-3), params[:, 3] + read_var])
    floor = 1e-6
    nb[:, 1] = np.maximum(nb[:, 1], floor)
    for _ in range(iterations):
        mu = np.maximum(nb[:, :1] * psf + nb[:, 1:], 1e-9)
        r = d / mu - 1.0
        g = np.column_stack([(r * psf).sum(1), r.sum(1)])
        q = d / mu**2
        h11, h12, h22 = (q * psf * psf).sum(1), (q * psf).sum(1), q.sum(1)
        det = np.maximum(h11 * h22 - h12 * h12, 1e-12)
        step = np.column_stack([h22 * g[:, 0] - h12 * g[:, 1], h11 * g[:, 1] - h12 * g[:, 0]])
        step /= det[:, None]
        nb = nb + step
        nb[:, 0] = np.maximum(nb[:, 0], 0.0)
        nb[:, 1] = np.maximum(nb[:, 1], floor)
    mu = np.maximum(nb[:, :1] * psf + nb[:, 1:], 1e-9)
    ll = np.sum(d * np.log(mu) - mu, axis=1)
    if return_params:
        nb[:, 1] -= read_var
        return ll, nb
    return ll


def box_significance(
    boxes: np.ndarray, xy: np.ndarray, sigma: float, read_var: float
) -> tuple[np.ndarray, np.ndarray]:
    """Significance (:func:`significance`) of a spot of width ``sigma`` centred at ``xy``
    (``(n, 2)`` x, y in box pixels) in each box (photoelectrons), without a fit.

    For positions that do not come from a fit (the ML centroids): the Poisson + read-noise
    likelihood of the spot, maximised over its photons and background only
    (:func:`profile_loglik`, the generalised likelihood-ratio test of a known-shape source,
    Smith et al. 2010 Nat. Methods 7:373; Huang et al. 2013), against a flat background.
    Returns the significance and the ``(n, 2)`` photons and background."""
    n = len(boxes)
    flat = boxes.reshape(n, -1)
    bg = np.median(flat, axis=1)
    params = np.column_stack(
        [xy, np.maximum((flat - bg[:, None]).sum(1), 1.0), bg, np.full((n, 2), float(sigma))]
    )
    ll, nb = profile_loglik(boxes, params, read_var, return_params=True)
    return significance(boxes, ll, read_var), nb


def significance(boxes: np.ndarray, loglik: np.ndarray, read_var: float) -> np.ndarray:
    """``sqrt(2 * log-likelihood ratio)`` of the spot fit against a flat background.

    Under the Poisson + read-noise model of the MLE; a z-like score that does not depend on
    the camera's units, so one default threshold serves every data set.
    """
    n = len(boxes)
    dp = np.maximum(boxes.reshape(n, -1) + read_var, 0.0)
    b = np.maximum(dp.mean(1, keepdims=True), 1e-9)
    ll_bg = np.sum(dp * np.log(b) - b, axis=1)  # same data-only constant dropped as the fit
    return np.sqrt(np.maximum(2 * (np.asarray(loglik) - ll_bg), 0.0))
