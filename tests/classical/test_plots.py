"""The auto-tune and noise plots as the docks draw them: readable ticks, honest empty plots."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from napari_celldenoise.classical.autotune import TuneResult
from napari_celldenoise.classical.plots import NO_DATA, draw_empty, draw_loss_curve


def _dock_axes():
    fig = Figure(figsize=(4, 2.6), dpi=90, tight_layout=True)  # the Classical dock's canvas
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _shown_labels(fig, axis):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    lo, hi = sorted(axis.get_view_interval())
    labels = []
    for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
        label = tick.label1
        if label.get_visible() and label.get_text() and lo <= tick.get_loc() <= hi:
            labels.append((label.get_text(), label.get_window_extent(renderer)))
    return labels


@pytest.mark.parametrize(
    "lo, hi", [(0.3, 5.0), (0.2, 10.0), (1.0, 9.5), (0.1, 3.0), (1.0, 100.0), (10.0, 5000.0)]
)
def test_log_axis_labels_of_the_loss_curve_do_not_overlap(lo, hi):
    fig, ax = _dock_axes()
    values = list(np.geomspace(lo, hi, 9))
    losses = [1.0 + (np.log(v) - np.log(lo * 2)) ** 2 for v in values]
    draw_loss_curve(ax, TuneResult("tv", "weight", values[2], values, losses))
    assert ax.get_xscale() == "log"
    labels = _shown_labels(fig, ax.xaxis)
    assert len(labels) >= 2, labels
    boxes = sorted((box for _, box in labels), key=lambda b: b.x0)
    for left, right in itertools.pairwise(boxes):
        assert left.x1 < right.x0, [text for text, _ in labels]
    assert all("times" not in text and "^" not in text for text, _ in labels)


def test_an_empty_plot_says_so_instead_of_drawing_axes():
    fig, ax = _dock_axes()
    draw_empty(ax)
    fig.canvas.draw()
    assert not ax.axison
    assert [t.get_text() for t in ax.texts] == [NO_DATA]
