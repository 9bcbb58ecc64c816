"""The Noise dock's compare of a lattice image with its clean reference (EM metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.em.metrics import lattice_metrics
from napari_celldenoise.em.simulate import simulate_lattice

pytestmark = pytest.mark.qt


def test_compare_scores_columns_vacancies_and_dents_against_the_reference(
    make_napari_viewer, qtbot
):
    from napari_celldenoise._qt.noise import NoiseWidget

    viewer = make_napari_viewer()
    img, truth = simulate_lattice(
        (256, 256), kind="honeycomb", spacing=12, dose=20, dents=3, jitter=0.3,
        read_noise=0.5, vacancy_rate=0.01, seed=101,
    )  # fmt: skip
    geometry = {"scale": (0.0127, 0.0127), "units": ("nm", "nm")}
    viewer.add_image(img, name="noisy", **geometry)
    viewer.add_image(truth.clean, name="clean", **geometry)
    viewer.add_image(np.random.default_rng(0).normal(size=(256, 256)), name="vacuum")
    widget = NoiseWidget(viewer)
    qtbot.addWidget(widget)
    widget.cmp_image.setCurrentText("noisy")
    widget.cmp_ref.setCurrentText("clean")
    assert widget.compare() is not None and widget.last_lattice is None  # unticked: PSNR only
    widget.cmp_lattice.setChecked(True)
    widget.compare()
    qtbot.waitUntil(lambda: widget.last_lattice is not None, timeout=60_000)
    qtbot.waitUntil(widget.cmp_button.isEnabled, timeout=10_000)
    got, true = widget.last_lattice, lattice_metrics(img, truth)
    assert got["f1"] == pytest.approx(true["f1"], abs=0.02)
    assert got["rmse_pm"] == pytest.approx(true["rmse_pm"], rel=0.05)  # pm from the nm scale
    assert got["vacancies"] == len(truth.vacancies)
    text = widget.lattice_result.text()
    assert "F1" in text and "pm" in text and "vacancies filled" in text and "dent" in text

    widget.cmp_ref.setCurrentText("vacuum")  # a reference without a crystal: said in words
    widget.compare()
    qtbot.waitUntil(lambda: "no lattice found" in widget.lattice_result.text(), timeout=60_000)
    qtbot.waitUntil(widget.cmp_button.isEnabled, timeout=10_000)
    assert widget.last_lattice is None
