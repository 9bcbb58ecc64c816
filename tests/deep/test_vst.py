"""N2V on Anscombe-stabilised data: the inverse is the exact unbiased one, not the algebraic."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.deep.api import predict, train
from napari_celldenoise.deep.vst import stabiliser
from napari_celldenoise.jobs import run


@pytest.mark.parametrize("lam", [0.5, 2.0, 10.0])
def test_exact_unbiased_inverse_of_the_ideal_denoiser(lam):
    """An ideal denoiser outputs E[f(z)]; its exact inverse returns the true intensity."""
    gain, offset, read = 2.0, 0.0, 1.5
    gat = stabiliser(gain, read**2 - gain * offset)
    rng = np.random.default_rng(0)
    z = gain * rng.poisson(lam, 400_000) + offset + rng.normal(0, read, 400_000)
    ideal = np.float32(gat.forward(z).mean())
    truth = gain * lam + offset
    exact = float(gat.inverse(np.array([ideal]), exact=True)[0])
    algebraic = float(gat.inverse(np.array([ideal]), exact=False)[0])
    assert exact == pytest.approx(truth, abs=0.02 * gain * max(lam, 1))
    if lam <= 2:  # the algebraic inverse is visibly biased at low counts
        assert abs(algebraic - truth) > 3 * abs(exact - truth)


@pytest.mark.tf
def test_n2v_with_vst_predicts_in_image_units(tmp_path, tiny_config):
    from napari_celldenoise.synthetic import fluorescence_image

    noisy, clean = fluorescence_image((96, 96), photons=5, seed=4)
    folder = tmp_path / "m"
    run(train(noisy, "YX", tiny_config(vst=True), str(folder)))
    assert (folder / "noise.yaml").is_file()
    out = run(predict(str(folder), noisy, "YX"))
    assert out.shape == noisy.shape
    assert abs(float(out.mean()) - float(clean.mean())) < float(noisy.std())
