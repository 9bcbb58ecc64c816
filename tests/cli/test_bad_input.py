"""Bad input found before any work: one line on stderr and exit 2."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_celldenoise.cli.main import main
from napari_celldenoise.deep.config import TrainConfig
from napari_celldenoise.deep.model import ModelFolder, ModelInfo


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, np.random.default_rng(0).poisson(20, (64, 64)).astype(np.uint16))
    return path


def test_predict_refuses_a_missing_output_folder_before_predicting(tmp_path, image, capsys):
    # the model folder has no weights: reaching the prediction would fail differently
    model = tmp_path / "model"
    model.mkdir()
    ModelFolder(model).write_info(ModelInfo(train=TrainConfig(), axes="YX"))
    out = tmp_path / "missing" / "out.tif"
    assert main(["predict", str(model), str(image), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out.parent}: no such folder for the output" in err and len(err.splitlines()) == 1
    assert not out.parent.exists()


def test_filter_refuses_a_missing_output_folder(tmp_path, image, capsys):
    out = tmp_path / "missing" / "out.tif"
    assert main(["filter", str(image), "-o", str(out), "--method", "gaussian"]) == 2
    assert "no such folder for the output" in capsys.readouterr().err


def test_three_planes_read_as_channels_get_a_hint_to_give_the_axes(tmp_path, capsys):
    path = tmp_path / "three.tif"
    planes = np.random.default_rng(0).poisson(20, (3, 64, 64)).astype(np.uint16)
    # what tifffile.imwrite stores by default for 3 or 4 planes: separate colour planes
    tifffile.imwrite(path, planes, photometric="rgb", planarconfig="separate")
    assert main(["train", str(path), "--method", "n2v", "-o", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "read as 3 channels (axes CYX)" in err and "give --axes (e.g. ZYX or TYX)" in err
    assert not (tmp_path / "m").exists()
