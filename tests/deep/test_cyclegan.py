"""The CycleGAN for lattice images: networks, training, model folder, prediction (TensorFlow)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tifffile

from napari_celldenoise.deep.api import predict, train
from napari_celldenoise.deep.config import PredictConfig, TrainConfig
from napari_celldenoise.deep.data import DeepInputError
from napari_celldenoise.em.simulate import simulate_lattice
from napari_celldenoise.jobs import Done, Epoch, Preview, run

pytestmark = pytest.mark.tf

TINY = dict(patch=64, features=8, res_blocks=2, batch=2, steps=2)


@pytest.fixture(scope="module")
def lattice():
    return simulate_lattice((192, 192), kind="honeycomb", spacing=12, dose=20, seed=3)


def test_generator_starts_as_the_identity_and_tiles_seamlessly():
    from napari_celldenoise.deep.cyclegan import build_generator, receptive_radius
    from napari_celldenoise.deep.tiling import predict_tiled

    net = build_generator(features=8, depth=2, res_blocks=3)
    x = np.random.default_rng(0).normal(size=(1, 96, 96, 1)).astype(np.float32)
    assert np.array_equal(net(x).numpy(), x)  # the last layer starts at zero
    rng = np.random.default_rng(1)
    net.set_weights([rng.normal(0, 0.2, w.shape).astype(np.float32) for w in net.get_weights()])
    image = rng.normal(size=(150, 170)).astype(np.float32)

    def window(w):
        return net(w[None, ..., None]).numpy()[0, ..., 0]

    def tiled(tile: int, overlap: int) -> np.ndarray:
        out = np.empty(image.shape, np.float32)
        for _ in predict_tiled(window, image, tile=tile, overlap=overlap, align=4, out=out):
            pass
        return out

    radius = receptive_radius(2, res_blocks=3)
    whole = tiled(512, radius)  # one window
    assert np.abs(whole - image).mean() > 0.1 * image.std()  # the network does change it
    scale = np.abs(whole).max()
    assert np.abs(tiled(32, radius) - whole).max() <= 1e-5 * scale  # 5 x 6 tiles
    assert np.abs(tiled(32, radius - 8) - whole).max() > 1e-3 * scale  # and it is needed


@pytest.mark.slow
def test_trains_saves_loads_predicts_and_continues(tmp_path, lattice, monkeypatch):
    img, truth = lattice
    model = tmp_path / "model"
    config = TrainConfig(method="cyclegan", epochs=2, **TINY)
    events = list(train(img, "YX", config, str(model), extra={"reference": truth.clean}))
    epochs = [e for e in events if isinstance(e, Epoch)]
    assert len(epochs) == 2
    for e in epochs:
        for name in ("loss", "generator", "discriminator", "cycle", "identity", "lowpass"):
            assert math.isfinite(e.metrics[name]), (name, e.metrics)
        assert math.isfinite(e.val_loss)
    previews = [e for e in events if isinstance(e, Preview)]
    assert previews[-1].image.shape == (64, 64)
    info = events[-1].result
    assert isinstance(events[-1], Done) and info.epochs_done == 2
    assert info.overlap == 92 and info.train.target == "auto"  # given: the yaml says auto
    for name in ("weights_best.h5", "weights_last.h5", "celldenoise.yaml", "cyclegan.json"):
        assert (model / name).is_file()
    assert (model / "weights_last.h5").stat().st_size < 2_000_000  # networks only, no pools
    saved = json.loads((model / "cyclegan.json").read_text())
    assert saved["spacing_px"] == pytest.approx(12, rel=0.03)  # the majority of the patches

    out = run(predict(str(model), img, "YX", PredictConfig(weights="last")))
    assert out.shape == img.shape and out.dtype == np.float32 and np.isfinite(out).all()
    # keep_thickness: the stitched output gets the input's unit-cell mean (the data's dents)
    import napari_celldenoise.deep.cyclegan as cyclegan
    from napari_celldenoise.em.thickness import keep_thickness

    basis = np.asarray(saved["basis_px"])
    assert basis.shape == (2, 2)
    step = cyclegan.thickness_step
    monkeypatch.setattr(cyclegan, "thickness_step", lambda folder, info: None)
    raw = run(predict(str(model), img, "YX", PredictConfig(weights="last")))
    monkeypatch.setattr(cyclegan, "thickness_step", step)
    assert np.abs(raw - out).max() > 1e-4 * float(img.std())  # the step changed something
    np.testing.assert_allclose(out, keep_thickness(raw, img, basis), atol=1e-5 * float(img.std()))
    # the residual generator starts as the identity: a short training stays near the input
    assert abs(float(out.mean()) - float(img.mean())) < 0.5 * float(img.std())
    stack = np.stack([img, img[::-1]])
    out2 = run(predict(str(model), stack, "TYX", PredictConfig(weights="last", tile=64)))
    assert out2.shape == stack.shape
    np.testing.assert_allclose(out2[0], out, atol=1e-3 * float(np.abs(out).max()))

    more = TrainConfig(method="cyclegan", epochs=1, **TINY)
    info = run(train(img, "YX", more, str(model), resume=True, extra={"reference": truth.clean}))
    assert info.epochs_done == 3


def test_a_field_without_lattice_is_refused_in_words(tmp_path):
    noise = np.random.default_rng(0).normal(100, 5, (128, 128)).astype(np.float32)
    config = TrainConfig(method="cyclegan", epochs=1, **TINY)
    with pytest.raises(DeepInputError, match="cyclegan needs a crystal lattice"):
        run(train(noise, "YX", config, str(tmp_path / "m")))
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_cli_train_with_a_reference_then_predict(tmp_path, lattice, capsys):
    from napari_celldenoise.cli import main
    from napari_celldenoise.io import read_image

    img, truth = lattice
    noisy, ref = tmp_path / "noisy.tif", tmp_path / "ref.tif"
    tifffile.imwrite(noisy, img.astype(np.float32))
    # the reference at another zoom: the targets are resampled onto the noisy lattice
    from scipy import ndimage as ndi

    tifffile.imwrite(ref, ndi.zoom(truth.clean, 1.5, order=1).astype(np.float32))
    model = tmp_path / "model"
    args = ["train", str(noisy), "--method", "cyclegan", "--target", str(ref), "-o", str(model)]
    tiny = ["--patch", "64", "--batch", "1", "--epochs", "1", "--steps", "2"]
    assert main([*args, *tiny]) == 0
    assert "1 epochs" in capsys.readouterr().out
    info = (model / "celldenoise.yaml").read_text()
    assert "target: reference" in info and "patch: 64" in info
    out = tmp_path / "out.tif"
    assert main(["predict", str(model), str(noisy), "-o", str(out)]) == 0
    assert read_image(out).data.shape == img.shape


@pytest.mark.slow  # 40 steps of four networks: ~2.5 min on a loaded 2-core machine
def test_a_short_training_denoises_beyond_the_noisy_input(tmp_path):
    # the old generator (no full-resolution skip) stayed the identity even under the synthetic
    # supervision: its output equalled the input and its PSNR the noisy one (measured: 40 steps
    # here move it by 0.25 of the image's std and add 2.7 dB; at weight 10, identity 0: 0.3 dB)
    from napari_celldenoise.em.metrics import image_scores

    img, truth = simulate_lattice(
        (192, 192), kind="honeycomb", spacing=12, dose=50, dents=2, seed=7
    )
    config = TrainConfig(
        method="cyclegan", patch=96, features=8, res_blocks=1, batch=2, epochs=1, steps=40,
        learning_rate=1e-3, supervised_weight=50.0,
    )  # fmt: skip
    run(train(img, "YX", config, str(tmp_path / "m")))
    out = run(predict(str(tmp_path / "m"), img, "YX", PredictConfig(weights="last")))
    assert np.abs(out - img).mean() > 0.2 * img.std()  # not the identity
    noisy, denoised = image_scores(img, truth.clean), image_scores(out, truth.clean)
    assert denoised["psnr"] > noisy["psnr"] + 1.0, (noisy, denoised)


def test_the_fft_discriminator_and_pool_size_train_save_and_continue(tmp_path, lattice):
    """A fifth network (on the clean domain's power spectrum) is trained and saved, and a
    continued run keeps it; a pool of 0 shows the discriminators the newest images only."""
    import h5py

    img, _ = lattice
    model = tmp_path / "model"
    config = TrainConfig(
        method="cyclegan", epochs=1, fft_discriminator=True, pool_size=0, supervised_weight=0,
        **{**TINY, "steps": 1},
    )  # fmt: skip
    events = list(train(img, "YX", config, str(model)))
    (epoch,) = [e for e in events if isinstance(e, Epoch)]
    assert math.isfinite(epoch.metrics["discriminator"]) and math.isfinite(epoch.loss)
    with h5py.File(model / "weights_last.h5") as f:
        assert any("d_fft" in name for name in f.attrs["layer_names"].astype(str))
    more = TrainConfig(method="cyclegan", epochs=1, **{**TINY, "steps": 1})  # no FFT asked
    info = run(train(img, "YX", more, str(model), resume=True))
    assert info.epochs_done == 2 and info.train.fft_discriminator  # the folder's networks
