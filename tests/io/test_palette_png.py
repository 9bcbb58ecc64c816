"""PNGs with a lookup table (palette, "P" mode): one intensity channel, colour kept."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest

from napari_celldenoise.cli.main import main
from napari_celldenoise.io import read_image
from napari_celldenoise.io.layers import image_to_layers

GREEN_LUT = [(0, i, 0) for i in range(256)]  # as ImageJ saves a green lookup table


def write_palette_png(path, indices: np.ndarray, palette) -> str:
    """An 8-bit indexed-colour PNG (colour type 3) written chunk by chunk."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    h, w = indices.shape
    rows = b"".join(b"\x00" + indices[y].astype(np.uint8).tobytes() for y in range(h))
    raw = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
        + chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).ravel()))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    path.write_bytes(raw)
    return str(path)


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(3)
    clean = np.clip(np.linspace(20, 200, 64)[None, :] + np.zeros((64, 1)), 0, 255)
    noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255)
    low = write_palette_png(tmp_path / "low.png", noisy.astype(np.uint8), GREEN_LUT)
    high = write_palette_png(tmp_path / "high.png", clean.astype(np.uint8), GREEN_LUT)
    return low, high, noisy.astype(np.uint8), clean.astype(np.uint8)


def test_a_one_colour_lut_png_is_one_channel_with_its_colour(pair):
    low, _, noisy, _ = pair
    image = read_image(low)
    assert image.axes == "YX" and image.dtype == np.uint8
    np.testing.assert_array_equal(image.data, noisy)
    [(_, kwargs, kind)] = image_to_layers(image)
    assert kind == "image" and "rgb" not in kwargs
    colors = np.asarray(kwargs["colormap"]["colors"])
    np.testing.assert_allclose(colors[-1], (0, 1, 0))  # the layer stays green
    assert kwargs["contrast_limits"] == (0.0, 255.0)


def test_the_index_is_the_intensity_for_any_monotone_ramp(tmp_path):
    indices = np.arange(64, dtype=np.uint8).reshape(8, 8)
    falling = [(0, 0, 252 - 4 * i) for i in range(64)]  # an inverted blue ramp of 64 entries
    image = read_image(write_palette_png(tmp_path / "b.png", indices, falling))
    assert image.axes == "YX"
    np.testing.assert_array_equal(image.data, indices)


def test_grey_palettes_give_grey_values_and_colour_palettes_stay_colour(tmp_path):
    indices = np.array([[0, 1], [2, 1]], np.uint8)
    grey = [(9, 9, 9), (200, 200, 200), (50, 50, 50)]  # grey but not a ramp
    image = read_image(write_palette_png(tmp_path / "g.png", indices, grey))
    assert image.axes == "YX" and "palette" not in image.extra
    np.testing.assert_array_equal(image.data, [[9, 200], [50, 200]])
    colour = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    image = read_image(write_palette_png(tmp_path / "c.png", indices, colour))
    assert image.axes == "YXS"
    np.testing.assert_array_equal(image.data[1, 0], (0, 0, 255))


def test_metrics_on_lut_pngs_score_the_one_channel(pair, capsys):
    low, high, noisy, clean = pair
    assert main(["metrics", low, high]) == 0
    m = json.loads(capsys.readouterr().out)
    mse = np.mean((noisy.astype(float) - clean) ** 2)
    assert m["psnr"] == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-3)


def test_metrics_score_true_colour_per_channel_never_averaged(tmp_path, capsys):
    import imagecodecs

    clean = np.zeros((32, 32, 3), np.uint8)
    clean[..., 1] = 120
    noisy = clean.copy()
    noisy[..., 1] += np.random.default_rng(0).integers(0, 20, (32, 32), dtype=np.uint8)
    (tmp_path / "n.png").write_bytes(imagecodecs.png_encode(noisy))
    (tmp_path / "c.png").write_bytes(imagecodecs.png_encode(clean))
    assert main(["metrics", str(tmp_path / "n.png"), str(tmp_path / "c.png")]) == 0
    m = json.loads(capsys.readouterr().out)
    assert "psnr" not in m and list(m["channels"]) == ["R", "G", "B"]
    mse = np.mean((noisy[..., 1].astype(float) - clean[..., 1]) ** 2)
    assert m["channels"]["G"]["psnr"] == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-3)
    assert m["channels"]["R"]["psnr"] is None  # identical channel: infinite PSNR


def test_spots_channel_0_works_on_a_lut_png(pair, tmp_path, capsys):
    low, _, _, _ = pair
    out = tmp_path / "spots.csv"
    assert main(["spots", low, "--channel", "0", "-o", str(out)]) == 0, capsys.readouterr().err
    assert out.exists()
