"""A lookup-table PNG opens as one green intensity layer that every dock offers."""

from __future__ import annotations

import numpy as np
import pytest
from tests.io.test_palette_png import GREEN_LUT, write_palette_png

pytestmark = pytest.mark.qt


def test_lut_png_opens_green_and_the_docks_list_it(make_napari_viewer, qtbot, tmp_path):
    from napari_celldenoise._qt.classical import ClassicalDenoiseWidget
    from napari_celldenoise._qt.noise import NoiseWidget
    from napari_celldenoise._qt.spots import SpotsWidget

    indices = (np.arange(48 * 48).reshape(48, 48) % 200).astype(np.uint8)
    viewer = make_napari_viewer()
    [layer] = viewer.open(write_palette_png(tmp_path / "lut.png", indices, GREEN_LUT),
                          plugin="napari-celldenoise")  # fmt: skip
    assert not layer.rgb and layer.ndim == 2
    np.testing.assert_array_equal(layer.data, indices)
    np.testing.assert_allclose(layer.colormap.map(np.array([1.0]))[0, :3], (0, 1, 0), atol=0.01)
    for dock in (ClassicalDenoiseWidget, NoiseWidget, SpotsWidget):
        widget = dock(viewer)
        qtbot.addWidget(widget)
        combo = getattr(widget, "layer_combo", None) or widget.est_layer
        assert [combo.itemText(i) for i in range(combo.count())] == ["lut"], dock.__name__
