"""The registry of deep methods and the per-method configs: pure, no TensorFlow.

``data/legacy/`` holds files written by the version before per-method configs (one flat
``TrainConfig``, schema version 1): model folders' ``celldenoise.yaml`` of each method and a
train job spec. They must load as before.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from napari_celldenoise.deep.config import TrainConfig, estimate_epoch_seconds
from napari_celldenoise.deep.model import ModelFolder, ModelInfo
from napari_celldenoise.deep.registry import METHODS, NAMES, get_method

LEGACY = Path(__file__).parent / "data" / "legacy"


def _folder(tmp_path: Path, name: str) -> ModelFolder:
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(LEGACY / f"{name}.yaml", folder / "celldenoise.yaml")
    return ModelFolder(folder)


def test_the_registry_lists_the_methods_in_order_with_their_configs():
    assert NAMES == ("n2v", "structn2v", "pg-blindspot", "cyclegan")
    for name, method in METHODS.items():
        assert method.config.model_fields["method"].default == name
        assert type(TrainConfig(method=name, mask=[[1]] if "mask" in method.dock else None)) is (
            method.config
        )
    assert type(TrainConfig()) is METHODS["n2v"].config  # the default method
    assert [m for m in NAMES if METHODS[m].export is not None] == ["n2v", "structn2v"]
    assert not METHODS["pg-blindspot"].three_d and METHODS["n2v"].three_d
    assert METHODS["pg-blindspot"].receptive_radius(3) == 96
    assert METHODS["n2v"].receptive_radius(2) == 24
    with pytest.raises(ValueError, match="unknown method 'care': one of n2v"):
        get_method("care")


def test_legacy_model_folders_load_with_each_methods_config(tmp_path):
    n2v = _folder(tmp_path, "n2v").read_info()
    assert type(n2v.train) is METHODS["n2v"].config
    assert n2v.train.vst and n2v.train.epochs == 3 and n2v.train.steps == 5
    assert not hasattr(n2v.train, "learn_noise")  # PG's setting, ignored by n2v training
    assert (n2v.axes, n2v.mean, n2v.std, n2v.epochs_done) == ("TYX", 101.5, 12.25, 3)
    assert n2v.best_val_loss == 0.0123 and n2v.overlap == 20

    struct = _folder(tmp_path, "structn2v").read_info().train
    assert type(struct) is METHODS["structn2v"].config
    assert struct.mask == [[1, 1, 1]] and struct.radius == 3

    pg = _folder(tmp_path, "pg-blindspot").read_info().train
    assert type(pg) is METHODS["pg-blindspot"].config
    assert (pg.depth, pg.features, pg.learning_rate) == (2, 16, 1e-3)
    assert pg.structure_share == 0.25 and pg.precision == "float32"
    assert pg.lr_schedule == "cosine"
    assert not hasattr(pg, "perc_pix") and not hasattr(pg, "radius")  # n2v's, unused by PG


def test_a_legacy_folder_written_again_keeps_its_settings(tmp_path):
    folder = _folder(tmp_path, "pg-blindspot")
    info = folder.read_info()
    folder.write_info(info.model_copy(update={"epochs_done": 2}))
    again = folder.read_info()
    assert again.train == info.train and again.train.version == 2
    assert again.epochs_done == 2
    text = folder.file("celldenoise.yaml").read_text()
    assert "structure_share: 0.25" in text and "perc_pix" not in text


def test_a_legacy_train_spec_loads(tmp_path):
    from napari_celldenoise.jobs.specs import load_spec

    spec = load_spec(LEGACY / "train-spec.yaml")
    assert type(spec.config) is METHODS["structn2v"].config
    assert spec.config.mask == [[1], [1], [1]] and spec.config.epochs == 4
    assert spec.input.axes == "TYX"


def test_every_method_config_round_trips_through_a_model_folder(tmp_path):
    configs = [
        TrainConfig(method="n2v", vst=True, perc_pix=0.5),
        TrainConfig(method="structn2v", mask=[[1, 1, 1]], radius=2),
        TrainConfig(method="pg-blindspot", structure_share=0.2, learn_noise=True),
    ]
    for i, config in enumerate(configs):
        folder = ModelFolder(tmp_path / str(i))
        folder.path.mkdir()
        folder.write_info(ModelInfo(train=config, axes="YX"))
        assert folder.read_info().train == config  # every field of the method's class kept


def test_the_estimate_uses_each_methods_cost():
    n2v = estimate_epoch_seconds(TrainConfig(method="n2v", steps=20))
    struct = estimate_epoch_seconds(TrainConfig(method="structn2v", mask=[[1]], steps=20))
    assert struct == n2v  # the same network and hiding
    assert estimate_epoch_seconds(TrainConfig(method="pg-blindspot", steps=20)) > 3 * n2v


def test_patches_know_where_the_first_validation_patch_came_from():
    from napari_celldenoise.deep.api import patch_origin
    from napari_celldenoise.deep.data import make_patches

    rng = np.random.default_rng(0)
    samples = rng.random((6, 64, 96), dtype=np.float32)  # 2 T x 3 Z as samples
    for region in (None, [[32, 64], [32, 96]]):
        patches = make_patches(samples, TrainConfig(patch=32, val_region=region, seed=2))
        s, y, x = patches.val_origin
        np.testing.assert_array_equal(patches.val[0], samples[s, y : y + 32, x : x + 32])
    origin = patch_origin((4, 32, 64), "TZ", (2, 3))
    assert origin == {"T": 1, "Z": 1, "Y": 32, "X": 64}
    assert patch_origin((0, 0, 32), "", ()) == {"Y": 0, "X": 32}


def test_a_folder_is_checked_for_the_side_files_its_method_registers(tmp_path):
    from napari_celldenoise.deep.model import N2V_CONFIG, ModelFolderError

    assert METHODS["n2v"].side_files == METHODS["structn2v"].side_files == (N2V_CONFIG,)
    assert METHODS["pg-blindspot"].side_files == ()
    masks = {"structn2v": {"mask": [[1, 1, 1]]}}
    for method in NAMES:
        folder = ModelFolder(tmp_path / method)
        folder.path.mkdir()
        config = TrainConfig(method=method, **masks.get(method, {}))
        folder.write_info(ModelInfo(train=config, axes="YX"))
        (folder.path / "weights_best.h5").write_bytes(b"\x89HDF\r\n\x1a\n")  # weights: present
        (folder.path / N2V_CONFIG).write_text("{not json")
        if N2V_CONFIG in METHODS[method].side_files:
            with pytest.raises(ModelFolderError, match="n2v_config.json: damaged"):
                folder.read_info()
        else:
            assert folder.read_info().train.method == method  # not its file: not read
