"""What a user sees in the "Lattice" dock."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.em.simulate import simulate_lattice

pytestmark = pytest.mark.qt


@pytest.fixture
def dock(make_napari_viewer, qtbot):
    from napari_celldenoise._qt.lattice import LatticeWidget

    viewer = make_napari_viewer()
    img, truth = simulate_lattice(
        (192, 192), kind="honeycomb", spacing=14, angle=12, dose=40, seed=5
    )
    viewer.add_image(img, name="lattice", scale=(0.0127, 0.0127), units=("nm", "nm"))
    viewer.add_image(np.random.default_rng(0).normal(size=(128, 128)), name="vacuum")
    widget = LatticeWidget(viewer)
    qtbot.addWidget(widget)
    return viewer, widget, truth


def test_measuring_overlays_the_lattice_and_shows_the_numbers(dock, qtbot):
    viewer, widget, truth = dock
    widget.set_layer("lattice")
    widget.measure()
    qtbot.waitUntil(lambda: not widget.busy and widget.result is not None, timeout=30000)
    assert widget.lattice.kind == "hexagonal"
    assert widget.lattice.lengths_px == pytest.approx((14, 14), rel=0.005)
    assert widget.lattice.lengths == pytest.approx((14 * 0.0127,) * 2, rel=0.005)
    points = viewer.layers["lattice of lattice"]
    vectors = viewer.layers["basis of lattice"]
    assert tuple(points.scale) == pytest.approx((0.0127, 0.0127))
    assert set(points.features["sublattice"]) == {0, 1}  # Mo and S2 columns
    # every overlaid column sits on a true one
    d = np.linalg.norm(points.data[:, None] - truth.positions[None], axis=-1).min(axis=1)
    assert np.median(d) < 1.0
    assert vectors.data.shape == (2, 2, 2)
    assert "hexagonal" in widget.numbers.text() and "nm" in widget.numbers.text()
    assert "zero level" in widget.numbers.text()
    assert widget.result["noise"]["zero_level"] == pytest.approx(
        -widget.result["noise"]["offset_variance"] / widget.result["noise"]["gain"]
    )
    assert len(widget.axes.collections) == 2  # all peaks and the basis peaks on the FFT
    assert "calibration" not in widget.result and "implied" not in widget.numbers.text()


def test_known_lattice_constant_shows_the_implied_pixel_size(dock, qtbot):
    # the simulated 14 px spacing with a = 0.2 nm: 0.2 / 14 nm per pixel, the layer says 0.0127
    _, widget, _ = dock
    widget.set_layer("lattice")
    widget.measure()
    qtbot.waitUntil(lambda: not widget.busy and widget.result is not None, timeout=30000)
    assert widget.known_a.suffix() == " nm"
    widget.known_a.setValue(0.2)  # after measuring: the report follows without measuring again
    cal = widget.result["calibration"]
    assert cal["pixel_size"] == pytest.approx(0.2 / 14, rel=0.005)
    assert cal["relative_error"] == pytest.approx(0.0127 * 14 / 0.2 - 1, abs=0.005)
    assert f"{cal['pixel_size']:.6g} nm implied" in widget.numbers.text()
    widget.known_a.setValue(0.0)  # off again
    assert "calibration" not in widget.result and "implied" not in widget.numbers.text()


def test_a_field_without_lattice_says_so(dock, qtbot):
    viewer, widget, _ = dock
    widget.set_layer("vacuum")
    widget.measure()
    qtbot.waitUntil(lambda: not widget.busy, timeout=30000)
    assert widget.result is None
    assert "no lattice found" in widget.status.text()
    assert "lattice of vacuum" not in viewer.layers
