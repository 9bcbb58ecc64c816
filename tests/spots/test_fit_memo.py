"""A frame's refits reuse the fits of boxes they saw before, with results identical to fitting
every box again."""

import numpy as np
import pandas as pd

from napari_celldenoise.spots import refit
from napari_celldenoise.spots.config import SpotsConfig
from napari_celldenoise.spots.fit import fit_boxes
from napari_celldenoise.spots.fit_memo import FIELDS, FitMemo
from napari_celldenoise.spots.pipeline import locate_frame
from napari_celldenoise.spots.simulate import simulate_spots


def _boxes(n, seed):
    rng = np.random.default_rng(seed)
    return rng.poisson(20.0, (n, 7, 7)).astype(float)


def test_memo_fits_only_new_boxes_and_returns_the_same_rows():
    calls = []

    def fit(b, fixed=None):
        calls.append(len(b))
        return fit_boxes(b, method="mle", sigma=1.3 if fixed is None else fixed,
                         fixed_sigma=fixed is not None, threads=1)  # fmt: skip

    a, b = _boxes(30, 1), _boxes(20, 2)
    memo = FitMemo(fit)
    first = memo(a)
    mixed = np.concatenate([b[:10], a[5:25], b[:10], b[10:]])  # seen, new, repeated inside
    again = memo(mixed)
    held = memo(a[:4], fixed=1.5)  # another width is another fit
    assert calls == [30, 20, 4]
    assert (memo.fitted, memo.reused) == (54, 30)
    direct = fit_boxes(mixed, method="mle", sigma=1.3, threads=1)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(again, name), getattr(direct, name))
        np.testing.assert_array_equal(getattr(again, name)[10:30], getattr(first, name)[5:25])
    direct = fit_boxes(a[:4], method="mle", sigma=1.5, fixed_sigma=True, threads=1)
    np.testing.assert_array_equal(held.params, direct.params)
    again.params[:] = 0  # callers update results in place: the memo keeps its own rows
    np.testing.assert_array_equal(memo(a[:3]).params, first.params[:3])


def test_a_crowded_frame_fits_fewer_boxes_and_finds_the_same_spots(monkeypatch):
    """The refits of a crowded frame (neighbours subtracted twice, a second round) ask for
    many boxes they fitted before; the table is the one of fitting each again."""
    frames, _ = simulate_spots(1, (96, 96), n_spots=60, background=(5.0, 40.0), seed=3)
    config = SpotsConfig(fit="lsq", threshold="0.3*localnoise(Wave.F1)")
    memos = []

    class Counting(FitMemo):
        def __init__(self, fit):
            super().__init__(fit)
            memos.append(self)

    monkeypatch.setattr(refit, "FitMemo", Counting)
    table = locate_frame(frames[0], config)
    assert len(table) > 20
    reused = sum(m.reused for m in memos)
    fitted = sum(m.fitted for m in memos)
    assert reused > 0.2 * (reused + fitted)

    monkeypatch.setattr(refit, "FitMemo", lambda fit: fit)  # every box fitted again
    pd.testing.assert_frame_equal(table, locate_frame(frames[0], config), check_exact=True)
