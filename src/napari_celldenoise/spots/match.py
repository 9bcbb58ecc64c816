"""Match localizations to ground truth: true/false positives, F1, RMSE (per frame, Hungarian)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree


@dataclass(frozen=True, eq=False)
class MatchResult:
    """Counts, scores and the matched pairs (indices into the found and true arrays)."""

    tp: int
    fp: int
    fn: int
    found_index: np.ndarray
    true_index: np.ndarray
    distance: np.ndarray

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        denom = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denom if denom else 1.0

    @property
    def rmse(self) -> float:
        return float(np.sqrt(np.mean(self.distance**2))) if len(self.distance) else float("nan")

    def summary(self) -> dict[str, float]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "rmse_px": self.rmse,
        }


def match_points(
    found: np.ndarray,
    truth: np.ndarray,
    *,
    tolerance: float = 1.0,
    found_frame: np.ndarray | None = None,
    true_frame: np.ndarray | None = None,
) -> MatchResult:
    """One-to-one matching within ``tolerance`` px that minimises the total distance.

    ``found`` and ``truth`` are ``(n, 2)`` (y, x) arrays; with frames, only points of the same
    frame match.
    """
    found = np.asarray(found, float).reshape(-1, 2)
    truth = np.asarray(truth, float).reshape(-1, 2)
    ff = np.zeros(len(found), int) if found_frame is None else np.asarray(found_frame)
    tf = np.zeros(len(truth), int) if true_frame is None else np.asarray(true_frame)
    fi_all, ti_all, d_all = [], [], []
    for frame in np.union1d(np.unique(ff), np.unique(tf)):
        fi = np.flatnonzero(ff == frame)
        ti = np.flatnonzero(tf == frame)
        if len(fi) == 0 or len(ti) == 0:
            continue
        hits = cKDTree(truth[ti]).query_ball_point(found[fi], tolerance)
        cols = np.repeat(np.arange(len(fi)), [len(h) for h in hits])
        rows = np.concatenate([np.asarray(h, int) for h in hits]) if len(cols) else cols
        if len(cols) == 0:
            continue
        data = np.hypot(*(truth[ti][rows] - found[fi][cols]).T)
        # solve per connected block via a dense matrix of candidates only
        rows_u, rows_inv = np.unique(rows, return_inverse=True)
        cols_u, cols_inv = np.unique(cols, return_inverse=True)
        big = 1e6
        cost = np.full((len(rows_u), len(cols_u)), big)
        cost[rows_inv, cols_inv] = data
        r, c = linear_sum_assignment(cost)
        ok = cost[r, c] <= tolerance
        ti_all.append(ti[rows_u[r[ok]]])
        fi_all.append(fi[cols_u[c[ok]]])
        d_all.append(cost[r[ok], c[ok]])
    fidx = np.concatenate(fi_all) if fi_all else np.empty(0, int)
    tidx = np.concatenate(ti_all) if ti_all else np.empty(0, int)
    dist = np.concatenate(d_all) if d_all else np.empty(0)
    tp = len(fidx)
    return MatchResult(tp, len(found) - tp, len(truth) - tp, fidx, tidx, dist)
