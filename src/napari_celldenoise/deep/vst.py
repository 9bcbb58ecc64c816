"""Variance stabilisation for the networks: the classical generalized Anscombe transform.

N2V's mean-squared-error loss assumes noise of one variance; fluorescence noise is
Poisson-Gaussian (``var = a x + b``). With ``vst`` the network trains on GAT-stabilised data and
its output goes back through the *exact unbiased* inverse (Makitalo & Foi 2013), never the
algebraic one, whose bias at low counts shows as a darker, offset image. The transform itself
lives in :mod:`napari_celldenoise.classical.vst`; this module only picks it for ``(a, b)``.
"""

from __future__ import annotations

from typing import Any


def stabiliser(a: float, b: float) -> Any:
    """The :class:`~napari_celldenoise.classical.vst.GAT` for ``var = a * mean + b``."""
    from ..classical.vst import GAT

    if a <= 0:
        return GAT(0.0, max(float(b), 1e-12))
    return GAT(float(a), float(b))
