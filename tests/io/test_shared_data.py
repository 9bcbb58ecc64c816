"""Axes and pixel sizes of the real development files, compared with what tifffile reports."""

from __future__ import annotations

import pytest

from napari_celldenoise.io import read_image

CASES = [
    # file, axes, shape, expected scale (None = uncalibrated)
    (
        ("spots", "telomeres_timelapse", "timelapse_telomeres_2d.tif"),
        "TYX",
        (200, 133, 162),
        {"T": (0.05, "s"), "Y": (0.11, "µm"), "X": (0.11, "µm")},
    ),
    (("volumes", "cryo_tomogram", "tomo.tif"), "ZYX", (101, 135, 135), None),
    (("spots", "thunderstorm_tubulins1", "tubulins1_00020.tif"), "YX", (256, 256), None),
    (("spots", "spotmax_2d", "single_image.tiff"), "YX", (700, 700), None),
    # 1 pixel per 100 cm and ImageJ's 2147483646/5000 resolution mean "not calibrated"
    (("spots", "cellprofiler_speckles", "1-162hrh2ax2.tif"), "YX", (1000, 1200), None),
    (("spots", "airlocalize_smfish", "2DsmFISH_humCells.tif"), "YX", (319, 507), None),
    (("denoise", "fmd_confocal_bpae_b_fov1", "gt", "avg50.png"), "YX", (512, 512), None),
]


@pytest.mark.parametrize(("parts", "axes", "shape", "scale"), CASES)
def test_real_files_open_with_the_right_axes_and_scale(shared_data, parts, axes, shape, scale):
    image = read_image(shared_data(*parts))
    assert image.axes == axes
    assert image.shape == shape
    if scale is None:
        assert set(image.units.values()) <= {"pixel"} and set(image.scale.values()) == {1.0}
    else:
        for ax, (value, unit) in scale.items():
            assert image.scale[ax] == pytest.approx(value, rel=1e-6)
            assert image.units[ax] == unit
