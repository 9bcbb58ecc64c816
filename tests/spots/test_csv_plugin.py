import numpy as np
import pandas as pd
import pytest

from napari_celldenoise.io.spots_csv import (
    HEADER,
    SpotTableError,
    is_spot_table,
    read_spots_csv,
    write_spots_csv,
)
from napari_celldenoise.plugin.spots_reader import napari_get_reader, table_to_points
from napari_celldenoise.plugin.spots_writer import pixel_size_nm, write_points
from napari_celldenoise.spots.config import SpotsConfig
from napari_celldenoise.spots.pipeline import locate


def _table():
    t = pd.DataFrame(
        {
            "frame": [0, 2],
            "z": [0, 0],
            "y": [3.0, 10.25],
            "x": [4.5, 0.0],
            "sigma": [1.3, 1.5],
            "photons": [1000.0, 250.0],
            "background": [9.0, 11.0],
            "bkgstd": [3.0, 3.5],
            "uncertainty": [0.1, 0.3],
            "crlb_x": [0.1, 0.3],
            "significance": [40.0, 9.0],
            "class": ["good", "bad"],
        }
    )
    t.attrs["pixel_size"] = 160.0
    return t


def test_header_units_and_round_trip(tmp_path):
    path = write_spots_csv(tmp_path / "s.csv", _table())
    raw = pd.read_csv(path)
    assert list(raw.columns[: len(HEADER)]) == HEADER
    assert raw["frame"].tolist() == [1, 3]  # 1-based
    assert raw["x [nm]"].tolist() == [(4.5 + 0.5) * 160, 0.5 * 160]  # ThunderSTORM's convention
    assert raw["y [px]"].tolist() == [3.0, 10.25]
    assert raw["sigma [nm]"].tolist() == pytest.approx([1.3 * 160, 1.5 * 160])
    assert raw["crlb_x [nm]"].tolist() == pytest.approx([16.0, 48.0])
    back = read_spots_csv(path)
    assert back.attrs["pixel_size"] == pytest.approx(160.0)
    for col in ("frame", "x", "y", "sigma", "photons", "uncertainty", "crlb_x", "significance"):
        np.testing.assert_allclose(back[col].to_numpy(float), _table()[col].to_numpy(float))
    assert back["class"].tolist() == ["good", "bad"]


def test_write_is_atomic_and_refuses_to_overwrite(tmp_path):
    path = write_spots_csv(tmp_path / "s.csv", _table())
    with pytest.raises(FileExistsError):
        write_spots_csv(path, _table())
    write_spots_csv(path, _table().iloc[:1], overwrite=True)
    assert len(read_spots_csv(path)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["s.csv"]  # no temporary left behind


def test_thunderstorm_csv_with_quoted_header(tmp_path):
    path = tmp_path / "ts.csv"
    path.write_text(
        '"id","frame","x [nm]","y [nm]","sigma [nm]","intensity [photon]",'
        '"offset [photon]","bkgstd [photon]","uncertainty_xy [nm]"\n'
        "1.0,1.0,150.0,450.0,195.0,800.0,10.0,3.0,12.0\n"
    )
    t = read_spots_csv(path, pixel_size=150)
    assert t["frame"].tolist() == [0]
    assert t["x"].tolist() == [0.5] and t["y"].tolist() == [2.5]
    assert t["sigma"].tolist() == [1.3] and t["uncertainty"].tolist() == [0.08]
    assert t["photons"].tolist() == [800.0]


def test_empty_table_writes_the_header(tmp_path):
    table = locate(np.full((20, 20), 100, np.uint16))
    path = write_spots_csv(tmp_path / "e.csv", table)
    assert path.read_text().splitlines()[0].startswith(",".join(HEADER))
    assert len(read_spots_csv(path)) == 0


def test_reader_returns_none_for_anything_else(tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01" * 20)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    good = write_spots_csv(tmp_path / "s.csv", _table())
    for p in (
        other,
        binary,
        empty,
        tmp_path / "missing.csv",
        tmp_path,
        str(good) + ".tif",
        [str(good), str(other)],
        [],
        42,
        None,
    ):
        assert napari_get_reader(p) is None, p
    assert not is_spot_table(binary)
    reader = napari_get_reader(str(good))
    ((data, meta, kind),) = reader(str(good))
    assert kind == "points" and data.shape == (2, 3)
    np.testing.assert_allclose(data[:, 0], [0, 2])
    assert meta["scale"] == (1.0, 0.16, 0.16)
    assert list(meta["features"]["class"]) == ["good", "bad"]


def test_broken_table_is_one_error_not_a_traceback(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("x [nm],y [nm]\nabc,1\n")
    with pytest.raises(SpotTableError, match="not numeric"):
        read_spots_csv(path)
    reader = napari_get_reader(str(path))
    assert reader(str(path)) == [(None,)]


def test_points_layer_round_trip(tmp_path):
    data, meta, _ = table_to_points(_table())
    assert meta["size"][1] == pytest.approx(2.5 * 1.5)
    assert meta["border_color"][0][:3].tolist() != meta["border_color"][1][:3].tolist()
    assert pixel_size_nm({"scale": (1, 0.16, 0.16), "units": ("s", "µm", "µm")}) == pytest.approx(
        160
    )
    assert pixel_size_nm({}) == 100.0
    (path,) = write_points(str(tmp_path / "p"), data, meta)
    assert path.endswith(".csv")
    back = read_spots_csv(path)
    np.testing.assert_allclose(back[["frame", "y", "x"]].to_numpy(float), data)
    assert back.attrs["pixel_size"] == pytest.approx(160.0)
    (data2d, meta2d, _) = table_to_points(_table().assign(frame=0))
    assert data2d.shape == (2, 2) and meta2d["scale"] == (0.16, 0.16)


def test_real_thunderstorm_ground_truth(shared_data):
    path = shared_data("spots", "thunderstorm_tubulins1", "tubulins1_00020.csv")
    t = read_spots_csv(path, pixel_size=150)
    assert len(t) == 49 and t["frame"].eq(19).all()
    assert t["x"].iloc[0] == pytest.approx(25713.33 / 150 - 0.5)
    assert SpotsConfig().pixel_size == 100.0


def test_class_colours_are_one_rgba_per_point_by_class():
    from matplotlib.colors import to_rgba_array

    from napari_celldenoise.plugin.spots_reader import CLASS_COLORS, class_colors

    classes = np.array(["good", "bad", "other", "good"], object)
    expected = to_rgba_array([CLASS_COLORS.get(c, "#ffd000") for c in classes])
    np.testing.assert_allclose(class_colors(classes), expected)
    assert class_colors(np.array([], object)).shape == (0, 4)
