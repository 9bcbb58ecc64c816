"""The command-line contract of filter, noise, metrics and add-noise."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_celldenoise.cli import main
from napari_celldenoise.io import read_image


def _ome(path, data, axes, **meta):
    tifffile.imwrite(path, data, ome=True, metadata={"axes": axes, **meta})
    return str(path)


@pytest.fixture
def stack_u16(tmp_path, cells):
    noisy, _ = cells
    data = np.stack([np.rint(noisy[:64, :80] + i) for i in range(3)]).astype(np.uint16)
    return _ome(tmp_path / "t.ome.tif", data, "TYX", PhysicalSizeX=0.11, PhysicalSizeY=0.11,
                TimeIncrement=2.0, TimeIncrementUnit="s"), data  # fmt: skip


def test_filter_keeps_shape_axes_scale_and_units(tmp_path, stack_u16, capsys):
    path, data = stack_u16
    out = str(tmp_path / "o.ome.tif")
    assert main(["filter", path, "-o", out, "--method", "gaussian", "--param", "sigma=1.5"]) == 0
    img, src = read_image(out), read_image(path)
    assert img.shape == data.shape and img.axes == "TYX" and img.dtype == np.float32
    assert img.scale == src.scale and img.units == src.units
    res = np.asarray(img.data)
    assert abs(res.mean() - data.mean()) < 1.0  # intensity units, not 0-1
    assert "gaussian sigma=1.5" in capsys.readouterr().out


def test_keep_dtype_and_float_input_stays_float(tmp_path, stack_u16):
    path, data = stack_u16
    out = str(tmp_path / "k.ome.tif")
    assert main(["filter", path, "-o", out, "--method", "median", "--keep-dtype", "-q"]) == 0
    assert read_image(out).dtype == np.uint16
    f64 = _ome(tmp_path / "f.ome.tif", data.astype(np.float64), "TYX")
    out2 = str(tmp_path / "f_out.ome.tif")
    assert main(["filter", f64, "-o", out2, "--method", "tv", "-q"]) == 0
    assert read_image(out2).dtype == np.float64


def test_auto_tune_vst_3d_and_json(tmp_path, volume, capsys):
    noisy, _ = volume
    path = _ome(tmp_path / "v.ome.tif", noisy[:, :40, :40], "ZYX", PhysicalSizeZ=0.5,
                PhysicalSizeX=0.2, PhysicalSizeY=0.2)  # fmt: skip
    out = str(tmp_path / "v_out.ome.tif")
    args = ["filter", path, "-o", out, "--method", "gaussian", "--auto-tune", "--vst", "--3d",
            "--json", "-q"]  # fmt: skip
    assert main(args) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["three_d"] and info["vst"]["a"] > 0
    assert info["auto_tune"]["param"] == "sigma" and len(info["auto_tune"]["losses"]) >= 8
    assert info["params"]["sigma"] == info["auto_tune"]["best"]
    assert read_image(out).shape == noisy[:, :40, :40].shape


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "wiener"], "unknown method 'wiener'"),
        (["--method", "median", "--param", "size=4"], "must be odd"),
        (["--method", "gaussian", "--param", "sigma=-2"], "out of range"),
        (["--method", "gaussian", "--param", "width=2"], "unknown parameter"),
        (["--method", "gridlof", "--auto-tune"], "not available"),
    ],
)
def test_bad_filter_input_exits_2_with_one_line(tmp_path, stack_u16, capsys, extra, message):
    path, _ = stack_u16
    assert main(["filter", path, "-o", str(tmp_path / "x.ome.tif"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.ome.tif").exists()


def test_unreadable_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff at all")
    assert main(["filter", str(bad), "-o", str(tmp_path / "o.tif"), "--method", "median"]) == 2
    assert main(["noise", str(tmp_path / "missing.tif")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "bad.tif" in lines[0] and "no such file" in lines[1]


def test_noise_json_from_image_and_stack(tmp_path, capsys):
    from napari_celldenoise.classical.noise import add_poisson_gaussian

    rng = np.random.default_rng(0)
    clean = np.linspace(20, 500, 256 * 256, dtype=np.float32).reshape(256, 256)
    frames = np.stack([add_poisson_gaussian(clean, 2.0, 9.0, rng=rng) for _ in range(8)])
    path = _ome(tmp_path / "frames.ome.tif", frames, "TYX")
    assert main(["noise", path, "--stack"]) == 0
    stack = json.loads(capsys.readouterr().out)
    assert stack["model"] == "poisson-gaussian" and stack["a"] == pytest.approx(2.0, rel=0.1)
    assert {"model", "a", "b", "sigma", "fit"} <= set(stack) and "r2" in stack["fit"]
    single = _ome(tmp_path / "one.ome.tif", frames[0], "YX")
    plot = str(tmp_path / "n.png")
    assert main(["noise", single, "--plot", plot]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["a"] == pytest.approx(2.0, rel=0.25) and (tmp_path / "n.png").stat().st_size > 0
    assert main(["noise", single, "--stack"]) == 2


def test_metrics_json_and_shape_mismatch(tmp_path, cells, capsys):
    noisy, clean = cells
    a = _ome(tmp_path / "a.ome.tif", noisy, "YX")
    b = _ome(tmp_path / "b.ome.tif", clean, "YX")
    assert main(["metrics", a, b]) == 0
    m = json.loads(capsys.readouterr().out)
    span = float(clean.max() - clean.min())
    expected = 10 * np.log10(span**2 / np.mean((noisy.astype(np.float64) - clean) ** 2))
    assert m["psnr"] == pytest.approx(expected, abs=1e-3)
    assert 0 < m["ssim"] < 1 and m["psnr_affine"] >= m["psnr"] - 1e-6
    c = _ome(tmp_path / "c.ome.tif", clean[:100], "YX")
    assert main(["metrics", a, c]) == 2
    err = capsys.readouterr().err.strip()
    assert "shape mismatch" in err and len(err.splitlines()) == 1


def test_add_noise_kinds(tmp_path, capsys):
    x = np.full((64, 64), 1000, np.uint16)
    path = _ome(tmp_path / "flat.ome.tif", x, "YX", PhysicalSizeX=0.3, PhysicalSizeY=0.3)
    g = str(tmp_path / "g.ome.tif")
    assert main(["add-noise", path, "-o", g, "--kind", "gaussian", "--sigma", "5", "--seed",
                 "1"]) == 0  # fmt: skip
    img = read_image(g)
    assert img.dtype == np.float32 and img.scale["X"] == pytest.approx(0.3)
    assert np.std(np.asarray(img.data)) == pytest.approx(5, rel=0.1)
    sp = str(tmp_path / "sp.ome.tif")
    assert main(["add-noise", path, "-o", sp, "--kind", "salt-pepper", "--amount", "0.1",
                 "--keep-dtype"]) == 0  # fmt: skip
    d = np.asarray(read_image(sp).data)
    assert d.dtype == np.uint16 and set(np.unique(d)) == {0, 1000, 65535}
    pg = str(tmp_path / "pg.ome.tif")
    assert main(["add-noise", path, "-o", pg, "--kind", "poisson-gaussian", "--a", "2",
                 "--b", "4"]) == 0  # fmt: skip
    assert np.var(np.asarray(read_image(pg).data)) == pytest.approx(2004, rel=0.1)
    assert main(["add-noise", path, "-o", str(tmp_path / "z.tif"), "--kind", "gaussian"]) == 2
    assert main(["add-noise", path, "-o", str(tmp_path / "z.tif"), "--kind", "salt-pepper",
                 "--amount", "2"]) == 2  # fmt: skip
    assert "--sigma > 0" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["filter", "noise", "metrics", "add-noise"])
def test_each_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert command in capsys.readouterr().out


def test_filter_on_the_real_data(shared_data, tmp_path):
    fmd = shared_data("denoise", "fmd_confocal_bpae_b_fov1", "raw", "HV110_P0500510000.png")
    gt = shared_data("denoise", "fmd_confocal_bpae_b_fov1", "gt", "avg50.png")
    tomo = shared_data("volumes", "cryo_tomogram", "tomo.tif")
    tel = shared_data("spots", "telomeres_timelapse", "timelapse_telomeres_2d.tif")
    from napari_celldenoise.classical.metrics import psnr

    out = str(tmp_path / "fmd.ome.tif")
    assert main(["filter", str(fmd), "-o", out, "--method", "gaussian", "--auto-tune", "-q"]) == 0
    gt_data = np.asarray(read_image(gt).data)
    assert psnr(np.asarray(read_image(out).data), gt_data) > 40.0  # noisy frame: 33.3 dB
    out = str(tmp_path / "tomo.ome.tif")
    assert main(["filter", str(tomo), "-o", out, "--method", "gaussian", "--3d", "-q"]) == 0
    assert read_image(out).shape == read_image(tomo).shape
    out = str(tmp_path / "tel.ome.tif")
    assert main(["filter", str(tel), "-o", out, "--method", "median", "--vst", "-q"]) == 0
    res, src = read_image(out), read_image(tel)
    assert res.shape == src.shape and res.axes == "TYX" and res.scale == src.scale
