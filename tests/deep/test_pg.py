"""Poisson-Gaussian blind-spot network: the blind spot, loss, posterior mean, TTA (TensorFlow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_celldenoise.deep.api import predict, train
from napari_celldenoise.deep.config import PredictConfig
from napari_celldenoise.jobs import Calibration, Device, Log, run

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module", params=["float32", "mixed_bfloat16"])
def net(request):
    from napari_celldenoise.deep.pg import build_blindspot

    return build_blindspot(depth=2, features=8, precision=request.param)


def _centre_change(net, x, dy, dx, amount=5.0):
    y0, x0 = x.shape[1] // 2, x.shape[2] // 2
    before = net(x, training=False).numpy()[0, y0, x0, :2]
    x2 = x.copy()
    x2[0, y0 + dy, x0 + dx, 0] += amount
    after = net(x2, training=False).numpy()[0, y0, x0, :2]
    return float(np.abs(after - before).max())


def test_output_ignores_its_own_pixel(net):
    x = np.random.default_rng(0).random((1, 32, 32, 1)).astype(np.float32)
    assert _centre_change(net, x, 0, 0, amount=100.0) == 0.0


@pytest.mark.parametrize(
    ("dy", "dx"), [(-3, 0), (3, 0), (0, -3), (0, 3)], ids=["up", "down", "left", "right"]
)
def test_output_sees_each_of_the_four_directions(net, dy, dx):
    x = np.random.default_rng(1).random((1, 32, 32, 1)).astype(np.float32)
    assert _centre_change(net, x, dy, dx) > 1e-5


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_deeper_networks_keep_the_blind_spot_on_a_whole_frame(depth):
    from napari_celldenoise.deep.pg import build_blindspot

    deep = build_blindspot(depth=depth, features=4)
    x = np.random.default_rng(depth).random((1, 512, 512, 1)).astype(np.float32)
    assert _centre_change(deep, x, 0, 0, amount=100.0) == 0.0
    for dy, dx in [(-5, 0), (5, 0), (0, -5), (0, 5)]:
        assert _centre_change(deep, x, dy, dx) > 1e-6, (dy, dx)


def test_rotation_layers_each_keep_their_own_angle(net):
    turns = sorted(net.get_layer(n).turns for n in ("rot0", "rot90", "rot180", "rot270"))
    assert turns == [0, 1, 2, 3]


def test_loss_and_posterior_mean_match_the_formulas():
    from napari_celldenoise.deep.pg import pg_loss, posterior_mean

    rng = np.random.default_rng(2)
    y = rng.normal(size=(2, 4, 4, 1)).astype(np.float32)
    mu, s2, nv = (
        rng.normal(size=y.shape),
        rng.uniform(0.1, 2, y.shape),
        rng.uniform(0.1, 2, y.shape),
    )
    out = np.concatenate([mu, s2, nv], axis=-1).astype(np.float32)
    total = s2 + nv
    expected = np.mean(0.5 * np.log(total) + 0.5 * (y - mu) ** 2 / total)
    assert float(pg_loss(y, out)) == pytest.approx(expected, rel=1e-5)
    # the gradient is the NLL's weighted by the variance: the squared error's for the mean
    tf = pytest.importorskip("tensorflow")
    t = tf.Variable(out)
    with tf.GradientTape() as tape:
        loss = pg_loss(tf.constant(y), t)
    grad = tape.gradient(loss, t).numpy()
    n = y.size
    np.testing.assert_allclose(grad[..., :1], (mu - y) / n, rtol=1e-4, atol=1e-7)
    d_total = 0.5 * (1 - (y - mu) ** 2 / total) / n
    np.testing.assert_allclose(grad[..., 1:2], d_total, rtol=1e-4, atol=1e-7)
    post = posterior_mean(y[..., 0], out)
    np.testing.assert_allclose(post, ((y * s2 + mu * nv) / (s2 + nv))[..., 0], rtol=1e-5)
    # no prior uncertainty: the prior mean; no noise: the observation
    out0 = out.copy()
    out0[..., 1] = 0
    np.testing.assert_allclose(posterior_mean(y[..., 0], out0), out[..., 0])
    out0 = out.copy()
    out0[..., 2] = 0
    np.testing.assert_allclose(posterior_mean(y[..., 0], out0), y[..., 0])
    # a calibration line moves the prior mean: alpha mu + beta
    lined = posterior_mean(y[..., 0], out, (2.0, 0.5))
    mu2 = 2.0 * mu + 0.5
    np.testing.assert_allclose(lined, ((y * s2 + mu2 * nv) / (s2 + nv))[..., 0], rtol=1e-5)


@pytest.fixture(scope="module")
def pg_model(tmp_path_factory, small_noisy):
    from napari_celldenoise.deep.config import TrainConfig

    folder = tmp_path_factory.mktemp("pg") / "m"
    cfg = TrainConfig(method="pg-blindspot", epochs=1, steps=3, patch=32, batch=4, features=8)
    events = []
    info = run(train(small_noisy, "YX", cfg, str(folder)), events.append)
    return folder, info, events


def test_pg_folder_holds_noise_parameters(pg_model):
    folder, info, events = pg_model
    text = (folder / "noise.yaml").read_text()
    assert "a:" in text and "b:" in text
    assert info.epochs_done == 1 and info.overlap >= 48
    lines = json.loads((folder / "calibration.json").read_text())
    assert "weights_last.h5" in lines and all(np.isfinite(v).all() for v in lines.values())
    # the device and the prior-mean lines as typed events too
    assert [e.description for e in events if isinstance(e, Device)] == [info.device]
    calibrations = [e for e in events if isinstance(e, Calibration)]
    assert {e.weights for e in calibrations} == set(lines)
    assert all(e.variable == "mu" and e.scope == "validation" for e in calibrations)


def test_pg_tiled_equals_untiled(pg_model, small_noisy):
    folder, *_ = pg_model
    whole = run(predict(str(folder), small_noisy, "YX", PredictConfig(tile=512, tta=False)))
    tiled = run(predict(str(folder), small_noisy, "YX", PredictConfig(tile=32, tta=False)))
    np.testing.assert_allclose(tiled, whole, atol=1e-4 * float(np.abs(whole).max()))


def test_tta_refits_noise_and_changes_the_result(pg_model, small_noisy):
    folder, *_ = pg_model
    logs = []
    off = run(predict(str(folder), small_noisy, "YX", PredictConfig(tta=False)))
    on = run(
        predict(str(folder), small_noisy, "YX", PredictConfig(tta=True, tta_steps=2)), logs.append
    )
    assert any(isinstance(e, Log) and "test-time adaptation" in e.message for e in logs)
    assert any(isinstance(e, Log) and "calibration on this image" in e.message for e in logs)
    (line,) = [e for e in logs if isinstance(e, Calibration)]
    assert line.scope == "this image" and line.variable == "mu" and line.weights.endswith(".h5")
    assert np.abs(on - off).max() > 0
    # the folder's weights are untouched by adaptation
    again = run(predict(str(folder), small_noisy, "YX", PredictConfig(tta=False)))
    np.testing.assert_array_equal(again, off)


def test_pg_resume_and_learned_noise(tmp_path, small_noisy, tiny_config):
    folder = tmp_path / "m"
    cfg = tiny_config("pg-blindspot", learn_noise=True, learning_rate=0.05)
    run(train(small_noisy, "YX", cfg, str(folder)))
    first = (folder / "noise.yaml").read_text()
    info = run(train(small_noisy, "YX", tiny_config("pg-blindspot"), str(folder), resume=True))
    assert info.epochs_done == 2 and info.train.learn_noise
    assert (folder / "noise.yaml").read_text() != first  # learned parameters moved


def test_pg_learning_rate_follows_a_cosine_over_the_run(tmp_path, small_noisy, tiny_config):
    folder = tmp_path / "m"
    cfg = tiny_config("pg-blindspot", epochs=3, steps=2)
    assert cfg.lr_schedule == "cosine"  # the PG default
    run(train(small_noisy, "YX", cfg, str(folder)))
    rates = [h["learning_rate"] for h in json.loads((folder / "history.json").read_text())]
    # set before batches 2, 4, 6 of 6: lr0 * (1 + cos(pi * k / 6)) / 2 for k = 1, 3, 5
    expected = [cfg.learning_rate * 0.5 * (1 + np.cos(np.pi * k / 6)) for k in (1, 3, 5)]
    np.testing.assert_allclose(rates, expected, rtol=1e-5)


def test_tta_fine_tuning_rate_follows_its_own_cosine(pg_model, small_noisy):
    from napari_celldenoise.deep.model import ModelFolder
    from napari_celldenoise.deep.pg import TTA_LR, PGPredictor
    from napari_celldenoise.deep.training import cosine_rate

    folder, info, _ = pg_model
    predictor = PGPredictor(ModelFolder(folder), info, PredictConfig(tta=True, tta_steps=4))
    list(predictor.adapt(small_noisy[None]))
    peak = info.train.learning_rate * TTA_LR
    # the last of 4 batches ran at step 3 of the cycle: well below the peak, above 0
    rate = float(predictor.tuned.optimizer.learning_rate.numpy())
    assert rate == pytest.approx(cosine_rate(peak, 3, 4), rel=1e-5)
    assert 0 < rate < 0.2 * peak


def test_bfloat16_training_predicts_in_float32(tmp_path, small_noisy, tiny_config):
    from napari_celldenoise.deep.model import ModelFolder
    from napari_celldenoise.deep.pg import PGPredictor

    folder = tmp_path / "m"
    logs = []
    cfg = tiny_config("pg-blindspot", precision="bfloat16")
    info = run(train(small_noisy, "YX", cfg, str(folder)), logs.append)
    assert any(isinstance(e, Log) and "in bfloat16:" in e.message for e in logs)
    assert info.device.endswith(" in bfloat16")
    predictor = PGPredictor(ModelFolder(folder), info, PredictConfig(tta=True, tta_steps=2))
    before = predictor.model.get_weights()
    list(predictor.adapt(small_noisy[None]))
    # the fine-tuning ran in a bfloat16 twin; its weights came back into the float32 network
    assert predictor.tuned is not predictor.model
    assert predictor.tuned.layers[-1].compute_dtype == "float32"  # the head stays float32
    assert predictor.model.get_layer("rot90").compute_dtype == "float32"
    assert any(np.abs(a - b).max() > 0 for a, b in zip(before, predictor.model.get_weights()))
    out = run(predict(str(folder), small_noisy, "YX", PredictConfig(tta=True, tta_steps=2)))
    assert out.dtype == np.float32 and out.shape == small_noisy.shape and np.isfinite(out).all()


def test_precision_settings(tmp_path):
    from napari_celldenoise.deep._tf import compute_precision, cpu_has_bfloat16

    assert compute_precision("float32") == "float32"
    assert compute_precision("bfloat16") == "mixed_bfloat16"
    from napari_celldenoise.deep._tf import gpus

    native = cpu_has_bfloat16() and not gpus()
    assert compute_precision("auto") == ("mixed_bfloat16" if native else "float32")
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu sse2 avx512f avx512_bf16 fma\n")
    assert cpu_has_bfloat16(str(info))
    info.write_text("processor : 0\nflags : fpu sse2 avx2 fma\n")
    assert not cpu_has_bfloat16(str(info))
    assert not cpu_has_bfloat16(str(tmp_path / "missing"))


def test_continue_restores_the_optimizer_state(tmp_path, small_noisy, tiny_config):
    """Continue goes on with Adam's moments and step count, not fresh ones (a fresh Adam after
    a cosine cycle threw PG's validation loss back on FMD)."""
    folder = tmp_path / "m"
    run(train(small_noisy, "YX", tiny_config("pg-blindspot", steps=3), str(folder)))
    saved = dict(np.load(folder / "optimizer_last.npz"))
    events = []
    cfg = tiny_config("pg-blindspot", steps=3, learning_rate=1e-12)  # too small to move anything
    run(train(small_noisy, "YX", cfg, str(folder), resume=True), events.append)
    logs = [e.message for e in events if isinstance(e, Log)]
    assert "optimizer state restored (after 3 steps)" in logs
    resumed = dict(np.load(folder / "optimizer_last.npz"))
    assert int(resumed["v0000"]) == 6  # the step count went on from 3
    # Adam's second moments decay by beta2 = 0.999 per step from the restored ones (the
    # gradients of a network that barely moved add about as much again: measured 1.7 times
    # the saved ones; fresh moments hold 3 new steps' worth only (measured 0.9)
    second = sorted(k for k in saved if k != "v0000")[1::2]
    ratio = np.mean([resumed[k].sum() / max(saved[k].sum(), 1e-30) for k in second])
    assert 1.3 < ratio < 2.6


def test_optimizer_state_that_does_not_fit_is_not_used(tmp_path):
    from napari_celldenoise.deep.model import ModelFolder
    from napari_celldenoise.deep.pg import _compile, build_blindspot

    folder = ModelFolder(tmp_path)
    assert "fresh Adam moments" in folder.restore_optimizer(None)  # nothing saved yet
    x = np.zeros((1, 16, 16, 1), np.float32)
    small = build_blindspot(depth=2, features=4)
    _compile(small, 1e-3)
    small.train_on_batch(x, x)
    folder.save_optimizer(small.optimizer)
    wider = build_blindspot(depth=2, features=8)
    _compile(wider, 1e-3)
    assert "does not fit" in folder.restore_optimizer(wider)
    assert int(wider.optimizer.iterations.numpy()) == 0
