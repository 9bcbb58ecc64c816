"""Reading TIFF/OME/ImageJ/PNG with axes and scale, and lossless OME-TIFF round trips."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_celldenoise.io import (
    ImageData,
    ImageReadError,
    ImageWriteError,
    read_image,
    write_ome_tiff,
)
from napari_celldenoise.io.layers import image_to_layers, layers_to_image


def _ome(path, data, axes, **meta):
    tifffile.imwrite(path, data, ome=True, metadata={"axes": axes, **meta})
    return path


def _imagej(path, data, axes, pixel=0.2, spacing=0.5, finterval=2.0):
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / pixel, 1 / pixel),
        metadata={"axes": axes, "unit": "um", "spacing": spacing, "finterval": finterval},
    )
    return path


def test_ome_five_axes_gives_axes_scale_and_named_channels(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 4000, (3, 4, 2, 16, 20), dtype=np.uint16)
    path = _ome(
        tmp_path / "a.ome.tif",
        data,
        "TZCYX",
        PhysicalSizeX=0.11,
        PhysicalSizeY=0.12,
        PhysicalSizeZ=0.5,
        TimeIncrement=1.5,
        TimeIncrementUnit="s",
        Channel={"Name": ["DAPI", "GFP"]},
    )
    image = read_image(path)
    assert image.axes == "TZCYX"
    assert image.scale == {"T": 1.5, "Z": 0.5, "Y": 0.12, "X": 0.11}
    assert image.units == {"T": "s", "Z": "µm", "Y": "µm", "X": "µm"}
    assert image.channel_names == ["DAPI", "GFP"]
    np.testing.assert_array_equal(image.data, data)
    (layer,) = image_to_layers(image)
    _, kwargs, kind = layer
    assert kind == "image" and kwargs["channel_axis"] == 2
    assert kwargs["name"] == ["a [DAPI]", "a [GFP]"]
    assert kwargs["scale"] == [1.5, 0.5, 0.12, 0.11]
    assert kwargs["axis_labels"] == ["T", "Z", "Y", "X"]


def test_ome_in_another_dimension_order_is_reordered_to_tzcyx(tmp_path):
    data = np.arange(2 * 3 * 8 * 9, dtype=np.uint16).reshape(2, 3, 8, 9)
    path = _ome(tmp_path / "c.ome.tif", data, "CZYX", PhysicalSizeZ=2.0)
    image = read_image(path)
    assert image.axes == "ZCYX"
    np.testing.assert_array_equal(image.data, data.transpose(1, 0, 2, 3))
    assert image.scale["Z"] == 2.0


def test_imagej_hyperstack_pixel_size_spacing_and_interval(tmp_path):
    data = np.random.default_rng(1).random((2, 3, 2, 10, 12), dtype=np.float32)
    image = read_image(_imagej(tmp_path / "h.tif", data, "TZCYX"))
    assert image.axes == "TZCYX" and image.format == "imagej-tiff"
    assert image.scale["X"] == pytest.approx(0.2) and image.scale["Y"] == pytest.approx(0.2)
    assert image.scale["Z"] == 0.5 and image.scale["T"] == 2.0
    assert image.units["X"] == "µm" and image.units["Z"] == "µm"
    assert image.channel_names == ["C0", "C1"]
    layers = image_to_layers(image)
    assert layers[0][1]["channel_axis"] == 2


def test_plain_multipage_tiff_opens_as_z_like_imagej(tmp_path):
    tifffile.imwrite(tmp_path / "p.tif", np.zeros((5, 8, 8), np.uint8))
    assert read_image(tmp_path / "p.tif").axes == "ZYX"


def test_png_grey_and_rgb(tmp_path):
    import imagecodecs

    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    (tmp_path / "g.png").write_bytes(imagecodecs.png_encode(grey))
    image = read_image(tmp_path / "g.png")
    assert image.axes == "YX" and image.format == "png"
    np.testing.assert_array_equal(image.data, grey)
    rgb = np.zeros((6, 7, 3), np.uint8)
    rgb[..., 1] = 200
    (tmp_path / "c.png").write_bytes(imagecodecs.png_encode(rgb))
    image = read_image(tmp_path / "c.png")
    assert image.axes == "YXS" and image.rgb
    assert image_to_layers(image)[0][1]["rgb"] is True


@pytest.mark.parametrize(
    ("shape", "axes", "meta"),
    [
        ((32, 40), "YX", {"PhysicalSizeX": 0.065, "PhysicalSizeY": 0.065}),
        ((6, 32, 40), "ZYX", {"PhysicalSizeX": 0.1, "PhysicalSizeY": 0.1, "PhysicalSizeZ": 0.3}),
        (
            (3, 2, 2, 16, 20),
            "TZCYX",
            {
                "PhysicalSizeX": 0.2,
                "PhysicalSizeY": 0.2,
                "PhysicalSizeZ": 1.0,
                "TimeIncrement": 30.0,
                "Channel": {"Name": ["a", "b"]},
            },
        ),
    ],
)
def test_ome_round_trip_is_lossless(tmp_path, shape, axes, meta):
    data = np.random.default_rng(2).integers(0, 65535, shape, dtype=np.uint16)
    first = read_image(_ome(tmp_path / "in.ome.tif", data, axes, **meta))
    out = write_ome_tiff(tmp_path / "out.ome.tif", first)
    second = read_image(out)
    np.testing.assert_array_equal(second.data, first.data)
    assert (second.axes, second.scale, second.units) == (first.axes, first.scale, first.units)
    assert second.channel_names == first.channel_names


@pytest.mark.parametrize(
    ("shape", "axes"), [((20, 24), "YX"), ((4, 20, 24), "ZYX"), ((2, 3, 2, 20, 24), "TZCYX")]
)
def test_imagej_round_trip_through_ome_is_lossless(tmp_path, shape, axes):
    data = np.random.default_rng(3).random(shape, dtype=np.float32)
    first = read_image(_imagej(tmp_path / "in.tif", data, axes))
    second = read_image(write_ome_tiff(tmp_path / "out.ome.tif", first))
    np.testing.assert_array_equal(second.data, data)
    assert second.axes == axes
    assert second.scale == pytest.approx(first.scale)
    assert second.units == first.units


def test_round_trip_through_napari_layer_tuples(tmp_path):
    data = np.random.default_rng(4).integers(0, 255, (2, 3, 10, 12), dtype=np.uint8)
    src = read_image(
        _ome(
            tmp_path / "in.ome.tif",
            data,
            "ZCYX",
            PhysicalSizeX=0.3,
            PhysicalSizeY=0.3,
            PhysicalSizeZ=1.2,
            Channel={"Name": ["r", "g", "b"]},
        )
    )
    (layer,) = image_to_layers(src)
    ch_axis = layer[1]["channel_axis"]
    # napari splits channels into layers: emulate that and write them back as one file
    per_channel = [
        (
            np.take(layer[0], i, axis=ch_axis),
            {
                "name": n,
                "scale": layer[1]["scale"],
                "units": layer[1]["units"],
                "axis_labels": layer[1]["axis_labels"],
            },
            "image",
        )
        for i, n in enumerate(src.channel_names)
    ]
    back = read_image(write_ome_tiff(tmp_path / "out.ome.tif", layers_to_image(per_channel)))
    np.testing.assert_array_equal(back.data, src.data)
    assert back.axes == "ZCYX" and back.channel_names == ["r", "g", "b"]
    assert back.scale == src.scale


def test_writer_refuses_to_overwrite_input_or_existing_file(tmp_path):
    src_path = _ome(tmp_path / "in.ome.tif", np.ones((4, 4), np.uint8), "YX")
    before = src_path.read_bytes()
    image = read_image(src_path)
    with pytest.raises(ImageWriteError, match="input"):
        write_ome_tiff(src_path, image.with_data(np.zeros((4, 4), np.uint8)))
    assert src_path.read_bytes() == before
    other = tmp_path / "other.ome.tif"
    other.write_bytes(b"keep me")
    with pytest.raises(ImageWriteError, match="exists"):
        write_ome_tiff(other, image)
    assert other.read_bytes() == b"keep me"
    write_ome_tiff(src_path, image.with_data(np.zeros((4, 4), np.uint8)), overwrite=True)
    assert read_image(src_path).data.sum() == 0


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    import napari_celldenoise.io.write as write_module

    def failing_planes(data, n_lead):
        yield np.asarray(data[0])
        raise RuntimeError("disk full")

    monkeypatch.setattr(write_module, "_planes", failing_planes)
    image = ImageData(data=np.ones((3, 4, 4), np.uint8), axes="ZYX", lazy=True)
    with pytest.raises(RuntimeError, match="disk full"):
        write_ome_tiff(tmp_path / "x.ome.tif", image)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "empty file"),
        (b"GIF89a not a tiff at all", "wrong magic"),
        (b"II*\x00\xff\xff\xff\x7f", "not a readable TIFF"),
    ],
)
def test_broken_files_give_one_clear_message(tmp_path, content, problem):
    path = tmp_path / "broken.tif"
    path.write_bytes(content)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    message = str(info.value)
    assert str(path) in message and problem in message and "\n" not in message


def test_truncated_tiff_is_reported_as_truncated(tmp_path):
    path = tmp_path / "t.tif"
    tifffile.imwrite(path, np.ones((4, 64, 64), np.uint16), photometric="minisblack")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(path)


def test_truncated_compressed_ome_is_reported(tmp_path):
    path = tmp_path / "t.ome.tif"
    rng = np.random.default_rng(0)
    tifffile.imwrite(
        path,
        rng.integers(0, 9, (6, 64, 64), dtype=np.uint16),
        ome=True,
        compression="zlib",
        metadata={"axes": "ZYX"},
    )
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(ImageReadError, match="truncated|corrupt|readable"):
        read_image(path)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.tif")
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ImageReadError, match="not a TIFF or PNG"):
        read_image(tmp_path / "table.csv")
