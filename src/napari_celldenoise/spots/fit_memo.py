"""A frame's box fits remembered by the box's content, so that a refit of a box that did not
change is not computed again.

:func:`~.refit.fit_frame` fits most boxes of a crowded frame several times: the raw boxes,
then twice with the neighbours' models subtracted, and the whole round again after the split
and residual passes added candidates. Where a box's neighbours kept their models, the box is
the same, bit for bit, as in the fit before: on simulated 512 x 512 frames of ~5000 candidates
the second refit of a round sees identical boxes for every candidate, and the second round's
first fit for all but the new ones (40 % of the frame's fits in all). The CPU fitter fits each
box on its own (its result does not depend on the other boxes of the call nor on the threads),
so a remembered fit is exactly the fit it replaces.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .fit_result import FitResult

FIELDS = ("params", "crlb", "loglik", "chi2", "iterations", "converged")


class FitMemo:
    """``fit(boxes, fixed=None)`` (a frame's fit closure) that fits only the boxes it has not
    seen with the same ``fixed`` width, and returns the remembered rows for the others."""

    def __init__(self, fit: Callable[..., FitResult]):
        self._fit = fit
        self._rows: dict[tuple[float | None, bytes], int] = {}
        self._parts: dict[str, list[np.ndarray]] = {name: [] for name in FIELDS}
        self.fitted = 0
        self.reused = 0

    def __call__(self, boxes: np.ndarray, fixed: float | None = None) -> FitResult:
        boxes = np.ascontiguousarray(boxes, np.float64)
        if boxes.ndim != 3 or len(boxes) == 0:
            return self._fit(boxes, fixed=fixed)
        keys = [(fixed, b.tobytes()) for b in boxes]
        rows = np.empty(len(keys), np.intp)
        new: dict[tuple[float | None, bytes], int] = {}
        first: list[int] = []
        start = len(self._rows)
        for i, key in enumerate(keys):
            row = self._rows.get(key)
            if row is None:
                row = new.get(key)
                if row is None:
                    row = new[key] = start + len(first)
                    first.append(i)
            rows[i] = row
        if first:
            res = self._fit(boxes[first], fixed=fixed)
            for name in FIELDS:
                self._parts[name].append(getattr(res, name))
            self._rows.update(new)
        self.fitted += len(first)
        self.reused += len(keys) - len(first)
        out = {}
        for name in FIELDS:
            parts = self._parts[name]
            if len(parts) > 1:
                parts[:] = [np.concatenate(parts)]
            out[name] = parts[0][rows]
        return FitResult(**out)


__all__ = ["FitMemo"]
