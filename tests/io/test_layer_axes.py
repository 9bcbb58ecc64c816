"""One rule for the axes of a layer, shared by the reader, the writer and every dock."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_celldenoise.io import read_image
from napari_celldenoise.io.layers import axes_of, image_to_layers, known_axes, layers_to_image


@pytest.mark.parametrize(
    ("ndim", "expected"), [(1, "X"), (2, "YX"), (3, "ZYX"), (4, "TZYX"), (5, "TZCYX")]
)
def test_unnamed_layers_get_axes_by_their_dimensions(ndim, expected):
    labels = [str(i - ndim) for i in range(ndim)]  # napari's defaults: -3 -2 -1
    assert known_axes(ndim, labels=labels) is None
    assert axes_of(ndim, labels=labels) == expected


def test_an_unnamed_3d_layer_is_a_volume_unless_read_as_time():
    assert axes_of(3) == "ZYX"
    assert axes_of(3, time=True) == "TYX"
    assert axes_of(4, time=True) == "TZYX"  # only an unnamed 3D layer is ambiguous
    assert axes_of(3, labels=("Z", "Y", "X"), time=True) == "ZYX"  # named axes stay


def test_letters_and_time_units_name_the_axes():
    assert axes_of(3, labels=("t", "y", "x")) == "TYX"
    assert axes_of(3, labels=("C", "Y", "X")) == "CYX"
    assert known_axes(3, labels=("Y", "X", "Z")) is None  # the plane must come last
    assert known_axes(3, labels=("Z", "Z", "X")) is None
    assert axes_of(3, units=("second", "micrometer", "micrometer")) == "TYX"
    assert axes_of(3, units=("micrometer",) * 3) == "ZYX"


@pytest.mark.parametrize("axes", ["TYX", "ZYX", "CYX"])
def test_a_layer_from_a_file_has_the_files_axes(tmp_path, axes):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.zeros((3, 16, 16), np.uint16), imagej=True, metadata={"axes": axes})
    image = read_image(path)
    assert image.axes == axes
    [(data, kwargs, _)] = image_to_layers(image)
    metadata = kwargs["metadata"] if axes != "CYX" else kwargs["metadata"][0]
    ndim = data.ndim - (1 if axes == "CYX" else 0)  # napari splits the channels off
    expected = axes.replace("C", "")
    # the reader's record alone, as after a user renamed the axis labels in napari
    assert axes_of(ndim, labels=["a", "b", "c"][-ndim:], metadata=metadata) == expected
    assert axes_of(ndim, labels=kwargs["axis_labels"], metadata=metadata) == expected


def test_the_writer_names_an_unlabelled_3d_layer_like_the_docks():
    image = layers_to_image([(np.zeros((3, 8, 8)), {"axis_labels": ("-3", "-2", "-1")}, "image")])
    assert image.axes == "ZYX"
    image = layers_to_image(
        [(np.zeros((3, 8, 8)), {"units": ("second", "pixel", "pixel")}, "image")]
    )
    assert image.axes == "TYX"


def test_too_many_unnamed_dimensions_are_refused():
    with pytest.raises(ValueError, match="6-dimensional"):
        axes_of(6)
