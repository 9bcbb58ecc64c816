"""What a spot fitter returns: the CPU fitter (:mod:`.fit`) and the batched TensorFlow one
(:mod:`.fit_tf`) share it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
