"""Validation patches from a drawn region; training patches from elsewhere (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.deep.config import TrainConfig, parse_region
from napari_celldenoise.deep.data import DeepInputError, make_patches


def _marked(shape=(2, 96, 128)) -> np.ndarray:
    """Each pixel's value is its flat index: a patch tells where it was cut."""
    return np.arange(np.prod(shape), dtype=np.float32).reshape(shape)


def _yx(samples: np.ndarray, patch: np.ndarray) -> tuple[int, int]:
    flat = int(patch[0, 0]) % (samples.shape[1] * samples.shape[2])
    return divmod(flat, samples.shape[2])


def test_region_gives_validation_inside_and_training_outside():
    samples = _marked()
    region = [[40, 80], [10, 90]]  # not aligned with the 32-pixel training grid
    p = make_patches(samples, TrainConfig(patch=32, val_region=region))
    # 1 x 2 patches fit in the 40 x 80 region, in each of the 2 samples
    assert p.val.shape == (4, 32, 32)
    for patch in p.val:
        y, x = _yx(samples, patch)
        assert 40 <= y and y + 32 <= 80 and 10 <= x and x + 32 <= 90
    # training: the 3 x 4 grid minus the 6 patches touching the region (grid rows 1-2, cols 0-2)
    assert p.train.shape == (2 * (12 - 6), 32, 32)
    for patch in p.train:
        y, x = _yx(samples, patch)
        assert y + 32 <= 40 or y >= 80 or x + 32 <= 10 or x >= 90


def test_region_too_small_or_too_large_is_a_clear_error():
    samples = _marked()
    with pytest.raises(
        DeepInputError, match=r"region \(20x80 pixels.*smaller than the training patch \(32x32\)"
    ):
        make_patches(samples, TrainConfig(patch=32, val_region=[[0, 20], [0, 80]]))
    with pytest.raises(DeepInputError, match="no whole training patch outside"):
        make_patches(samples, TrainConfig(patch=32, val_region=[[0, 96], [0, 128]]))
    with pytest.raises(DeepInputError, match="outside the image"):
        make_patches(samples, TrainConfig(patch=32, val_region=[[200, 300], [0, 64]]))


def test_region_of_a_3d_network_spans_z():
    samples = _marked((1, 16, 64, 64))
    p = make_patches(samples, TrainConfig(patch=32, dims=3, val_region=[[0, 32], [0, 32]]))
    assert p.val.shape == (1, 16, 32, 32) and p.train.shape == (3, 16, 32, 32)


def test_region_text_and_config_bounds():
    assert parse_region("10:50, 0:64") == [[10, 50], [0, 64]]
    with pytest.raises(ValueError, match="Y0:Y1"):
        parse_region("10-50,0:64")
    with pytest.raises(ValueError, match="start < stop"):
        TrainConfig(val_region=[[50, 10], [0, 64]])


def test_cli_refuses_a_region_smaller_than_the_patch_before_training(tmp_path, capsys):
    import tifffile

    from napari_celldenoise.cli import main

    tifffile.imwrite(
        tmp_path / "in.tif", np.random.default_rng(0).normal(size=(96, 96)).astype(np.float32)
    )
    args = [
        "train",
        str(tmp_path / "in.tif"),
        "--method",
        "n2v",
        "-o",
        str(tmp_path / "m"),
        "--patch",
        "32",
    ]
    assert main([*args, "--val-region", "0:16,0:64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "smaller than the training patch" in err[0]
    assert main([*args, "--val-region", "0-16"]) == 2
    assert "--val-region" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


@pytest.mark.tf
def test_training_validates_on_the_region(tmp_path, small_noisy):
    from napari_celldenoise.deep.api import train
    from napari_celldenoise.deep.model import SAMPLE
    from napari_celldenoise.jobs import Epoch, run

    events = []
    config = TrainConfig(
        epochs=1, steps=1, patch=32, batch=2, features=8, val_region=[[64, 96], [0, 32]]
    )
    run(train(small_noisy, "YX", config, str(tmp_path / "m")), events.append)
    assert [e.val_loss is not None for e in events if isinstance(e, Epoch)] == [True]
    # the first validation patch (kept as the export's test input) is the region itself
    np.testing.assert_array_equal(np.load(tmp_path / "m" / SAMPLE), small_noisy[64:96, 0:32])
