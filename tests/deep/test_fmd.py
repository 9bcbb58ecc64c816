"""The quick quality goal on real data (FMD confocal): slow, TensorFlow in-process."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.deep.api import predict, train
from napari_celldenoise.deep.config import TrainConfig
from napari_celldenoise.jobs import run

pytestmark = [pytest.mark.slow, pytest.mark.tf]


def test_short_n2v_training_beats_the_noisy_frame_by_2_db(shared_data, tmp_path):
    import cv2
    from skimage.metrics import peak_signal_noise_ratio

    gt_path = shared_data("denoise", "fmd_confocal_bpae_b_fov1", "gt", "avg50.png")
    raw = sorted((gt_path.parent.parent / "raw").glob("*.png"))[:8]
    stack = np.stack([cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in raw]).astype(np.float32)
    gt = cv2.imread(str(gt_path), cv2.IMREAD_UNCHANGED).astype(np.float32)
    config = TrainConfig(method="n2v", epochs=2, steps=40, patch=64, batch=16)
    run(train(stack, "TYX", config, str(tmp_path / "m")))
    out = run(predict(str(tmp_path / "m"), stack[0], "YX"))
    noisy = peak_signal_noise_ratio(gt, stack[0], data_range=255)
    denoised = peak_signal_noise_ratio(gt, np.clip(out, 0, 255), data_range=255)
    # 15 uncalibrated runs of this set-up ranged from +0.8 to +6.8 dB: a short training often
    # ends with the right structure but the wrong gain; the output calibration fitted on hidden
    # validation pixels (deep/calibration.py) removes that (12 calibrated runs: see docs/deep.md)
    assert denoised > noisy + 2.0, (noisy, denoised)
