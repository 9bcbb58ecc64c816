"""structN2V masks in 3D: autocorrelation, proposal and a few training steps on a volume."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_celldenoise.deep.config import TrainConfig
from napari_celldenoise.deep.masks import mask_from_data, noise_autocorrelation


def _z_smeared(shape=(12, 64, 64), seed=0) -> np.ndarray:
    """White noise smeared over 3 planes along Z (and not in YX) plus a smooth signal."""
    rng = np.random.default_rng(seed)
    noise = ndi.convolve1d(rng.normal(size=shape), [1.0, 1.0, 1.0], axis=0)
    _, y, x = np.indices(shape)
    return 100 + 10 * np.sin(y / 9.0) * np.cos(x / 11.0) + noise


def test_3d_autocorrelation_sees_correlation_along_z_only():
    vol = _z_smeared()
    ac = noise_autocorrelation(vol - ndi.uniform_filter(vol, (1, 9, 9)), radius=3, ndim=3)
    assert ac.shape == (7, 7, 7) and ac[3, 3, 3] == pytest.approx(1.0)
    # three-tap smear: lag 1 correlates 2/3, lag 2 1/3, lag 3 none; YX neighbours none
    assert ac[4, 3, 3] == pytest.approx(2 / 3, abs=0.08)
    assert ac[5, 3, 3] == pytest.approx(1 / 3, abs=0.08)
    assert abs(ac[3, 4, 3]) < 0.15 and abs(ac[3, 3, 4]) < 0.15 and abs(ac[6, 3, 3]) < 0.1


def test_3d_mask_proposal_from_a_volume():
    vol = _z_smeared()
    rng = np.random.default_rng(1)
    vol[:, :, :24] = 100 + ndi.convolve1d(rng.normal(size=(12, 64, 24)), [1.0, 1.0, 1.0], axis=0)
    # a background region (signal-free) drawn in YX spans the whole Z range
    proposal = mask_from_data(vol, "ZYX", region=(slice(0, 64), slice(0, 24)), radius=3, dims=3)
    assert proposal.mask.tolist() == [[[1]], [[1]], [[1]], [[1]], [[1]]]
    config = TrainConfig(method="structn2v", dims=3, patch=32, mask=proposal.mask.tolist())
    assert np.ndim(config.mask) == 3
    with pytest.raises(ValueError, match="a 2D mask for a 3D network"):
        TrainConfig(method="structn2v", dims=3, patch=32, mask=[[1, 1, 1]])
    with pytest.raises(ValueError, match="needs a Z axis"):
        mask_from_data(vol[0], "YX", dims=3)


@pytest.mark.tf
def test_3d_structn2v_trains_and_predicts(tmp_path):
    from napari_celldenoise.deep.api import predict, train
    from napari_celldenoise.jobs import run

    vol = _z_smeared((16, 64, 64)).astype(np.float32)
    mask = [[[1]], [[1]], [[1]]]
    config = TrainConfig(
        method="structn2v", dims=3, epochs=1, steps=2, patch=32, batch=2, features=8, mask=mask
    )
    info = run(train(vol, "ZYX", config, str(tmp_path / "m")))
    assert info.train.mask == mask and info.epochs_done == 1
    out = run(predict(str(tmp_path / "m"), vol, "ZYX"))
    assert out.shape == vol.shape and np.isfinite(out).all()
