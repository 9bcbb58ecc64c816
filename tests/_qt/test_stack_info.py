"""The Stack info dock on layers that are not images, and on unlabelled image layers."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

pytestmark = pytest.mark.qt


def test_a_points_layer_shows_its_count_and_no_row_of_the_image_before(
    make_napari_viewer, qtbot, tmp_path
):
    from napari_celldenoise._qt.stack_info import StackInfoWidget

    viewer = make_napari_viewer()
    widget = StackInfoWidget(viewer)
    qtbot.addWidget(widget)
    path = tmp_path / "stack.ome.tif"
    tifffile.imwrite(path, np.zeros((3, 16, 20), np.uint16), ome=True, metadata={"axes": "ZYX"})
    viewer.open(str(path), plugin="napari-celldenoise")
    assert "in the file: 3 x 16 x 20 (ZYX)" in widget.text()
    viewer.add_points(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), name="spots")
    viewer.layers.selection.active = viewer.layers["spots"]
    text = widget.text()
    assert "(points layer)" in widget.title.text()
    assert "describes image layers" in text and "points: 3" in text and "dimensions: 2" in text
    assert "in the file" not in text and "-2" not in text and "axes:" not in text


def test_an_unlabelled_image_shows_the_axes_the_docks_read(make_napari_viewer, qtbot):
    from napari_celldenoise._qt.stack_info import StackInfoWidget

    viewer = make_napari_viewer()
    widget = StackInfoWidget(viewer)
    qtbot.addWidget(widget)
    viewer.add_image(np.zeros((4, 8, 9)), name="volume")
    text = widget.text()
    assert "axes: ZYX" in text and "-3" not in text
