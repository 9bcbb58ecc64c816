"""Configs, input checks, patches, tiling and masks: pure numpy, no TensorFlow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import ndimage as ndi

from napari_celldenoise.deep.config import (
    TrainConfig,
    format_mask,
    parse_mask,
    train_config_from_widget,
)
from napari_celldenoise.deep.data import (
    DeepInputError,
    augment,
    draw_seed,
    make_patches,
    structure_weights,
    to_samples,
    validation_subset,
)
from napari_celldenoise.deep.masks import mask_from_data, noise_autocorrelation
from napari_celldenoise.deep.model import (
    ModelFolder,
    ModelFolderError,
    ModelInfo,
    prepare_new_folder,
)
from napari_celldenoise.deep.tiling import reflect_index, run_tiled, tile_windows
from napari_celldenoise.jobs import Log


def test_config_bounds_and_cross_fields():
    with pytest.raises(ValidationError, match="multiple of 2"):
        TrainConfig(patch=30, depth=2)
    with pytest.raises(ValidationError, match="needs a mask"):
        TrainConfig(method="structn2v")
    with pytest.raises(ValidationError, match="at least 128 pixels"):
        TrainConfig(method="pg-blindspot", depth=4)  # 64 x 64 patches: a 4 x 4 bottom level
    assert TrainConfig(method="pg-blindspot", depth=4, patch=128).depth == 4
    assert TrainConfig(method="pg-blindspot").depth == 3
    assert TrainConfig(method="pg-blindspot", patch=32).depth == 2  # the deepest that fits
    assert TrainConfig(method="pg-blindspot", patch=16).depth == 1
    assert TrainConfig(method="n2v", depth=4).patch == 64  # n2v's own U-Net is not limited
    with pytest.raises(ValidationError, match="odd"):
        TrainConfig(method="structn2v", mask=[[1, 1]])
    with pytest.raises(ValidationError, match="centre"):
        TrainConfig(method="structn2v", mask=[[1, 0, 1]])
    with pytest.raises(ValidationError):
        TrainConfig(epochs=0)
    # another method's setting is refused, naming its method, unless it means "not used"
    with pytest.raises(ValidationError, match="lr_schedule is a setting of pg-blindspot, not"):
        TrainConfig(method="n2v", lr_schedule="cosine")
    assert TrainConfig(method="pg-blindspot", lr_schedule="constant").lr_schedule == "constant"
    with pytest.raises(ValidationError, match="precision is a setting of pg-blindspot"):
        TrainConfig(method="n2v", precision="bfloat16")
    with pytest.raises(ValidationError, match="vst is a setting of n2v, structn2v, not of pg"):
        TrainConfig(method="pg-blindspot", vst=True)
    with pytest.raises(ValidationError, match="mask is a setting of structn2v, not of n2v"):
        TrainConfig(method="n2v", mask=[[1, 1, 1]])
    assert not hasattr(TrainConfig(method="structn2v", mask=[[1]], precision="auto"), "precision")
    assert TrainConfig(method="n2v", mask=None).method == "n2v"
    with pytest.raises(ValidationError, match="unknown method 'care'"):
        TrainConfig(method="care")


def test_config_from_widget_values():
    values = {"method": "structn2v", "epochs": 3, "patch": 32, "mask_text": "0 1 0\n0 1 0\n0 1 0"}
    config = train_config_from_widget(values)
    assert config.mask == [[0, 1, 0]] * 3 and config.epochs == 3
    # a mask left in the editor does not block N2V
    assert train_config_from_widget({**values, "method": "n2v"}).method == "n2v"
    assert parse_mask(format_mask([[1, 1, 1]])) == [[1, 1, 1]]
    assert parse_mask("111") == [[1, 1, 1]]
    # 3D: ZYX planes separated by a blank line (files) or "/" (one line)
    box = [[[0, 1, 0]], [[1, 1, 1]], [[0, 1, 0]]]
    assert parse_mask(format_mask(box)) == box
    assert parse_mask("010/111/010") == [[[0, 1, 0]], [[1, 1, 1]], [[0, 1, 0]]]
    assert TrainConfig(method="structn2v", dims=3, patch=32, mask=box).mask == box


def test_to_samples_axes():
    data = np.zeros((3, 5, 40, 48), np.float32)
    s, order = to_samples(data, "TZYX", 2)
    assert s.shape == (15, 40, 48) and order == "TZYX"
    s, order = to_samples(data, "TZYX", 3)
    assert s.shape == (3, 5, 40, 48)
    with pytest.raises(DeepInputError, match="Z axis"):
        to_samples(np.zeros((4, 40, 48)), "TYX", 3)
    with pytest.raises(DeepInputError, match="do not match"):
        to_samples(np.zeros((40, 48)), "TYX", 2)
    with pytest.raises(DeepInputError, match="channels"):
        to_samples(np.zeros((2, 40, 48)), "CYX", 2)


def test_patches_split_and_too_small():
    cfg = TrainConfig(patch=32)
    p = make_patches(np.random.default_rng(0).random((2, 64, 96), dtype=np.float32), cfg)
    assert len(p.train) + len(p.val) == 12 and len(p.val) >= 1
    assert p.train.shape[1:] == (32, 32)
    with pytest.raises(DeepInputError, match="smaller than the training patch"):
        make_patches(np.zeros((1, 20, 64), np.float32), cfg)
    with pytest.raises(DeepInputError, match="only one patch"):
        make_patches(np.zeros((1, 32, 40), np.float32), cfg)


def test_augment_keeps_pairs_together_and_inputs_intact():
    rng = np.random.default_rng(1)
    x = rng.random((6, 8, 8, 1)).astype(np.float32)
    y = np.concatenate([x, x > 0.5], axis=-1).astype(np.float32)
    x0 = x.copy()
    ax, ay = augment(x, rng, y)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(ax[..., 0], ay[..., 0])
    assert not np.array_equal(ax, x)  # some sample was rotated or flipped


def test_reflect_index():
    np.testing.assert_array_equal(
        reflect_index(np.arange(-3, 8), 5), [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]
    )
    assert reflect_index(np.arange(-2, 3), 1).tolist() == [0] * 5


def test_tiled_equals_untiled_for_a_local_operator():
    """A 9x9 box filter (radius 4) tiled with overlap 8 equals the untiled filter exactly."""
    img = np.random.default_rng(2).random((70, 53)).astype(np.float32)

    def box(w):
        return ndi.uniform_filter(w, 9, mode="constant")

    whole = run_tiled(box, img, tile=1024, overlap=8, align=4)
    tiled = run_tiled(box, img, tile=16, overlap=8, align=4)
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
    seams = run_tiled(box, img, tile=16, overlap=0, align=4)
    assert np.abs(seams - whole).max() > 1e-2  # without overlap the seams show


@pytest.mark.parametrize("border", [0, 4, (0, 8), 12])
def test_tiled_equals_untiled_whatever_the_context_at_the_image_edges(border):
    """Less mirrored context at the image's edges changes the edge pixels, not the seams."""
    img = np.random.default_rng(2).random((70, 53)).astype(np.float32)

    def box(w):
        return ndi.uniform_filter(w, 9, mode="constant")

    whole = run_tiled(box, img, tile=1024, overlap=8, align=4, border=border)
    for tile in (16, 20, 32):
        tiled = run_tiled(box, img, tile=tile, overlap=8, align=4, border=border)
        np.testing.assert_allclose(tiled, whole, atol=1e-6)
    mirrored = run_tiled(box, img, tile=1024, overlap=8, align=4)
    np.testing.assert_allclose(whole[4:-4, 4:-4], mirrored[4:-4, 4:-4], atol=1e-6)
    assert (np.abs(whole - mirrored).max() > 1e-2) == (np.min(border) < 4)


def test_a_thin_axis_without_edge_context_runs_in_windows_of_its_own_length():
    windows = tile_windows((20, 512, 512), tile=256, overlap=32, align=4, border=(0, 32, 32))
    assert {w[1][0].size for w in windows} == {20}
    assert {w[1][1].size for w in windows} == {256 + 2 * 32}
    mirrored = tile_windows((20, 512, 512), tile=256, overlap=32, align=4)
    assert {w[1][0].size for w in mirrored} == {84}


def test_tiled_reads_dask_lazily():
    da = pytest.importorskip("dask.array")
    img = np.random.default_rng(3).random((40, 44)).astype(np.float32)
    out = run_tiled(lambda w: w * 2, da.from_array(img, chunks=16), tile=16, overlap=4, align=4)
    np.testing.assert_allclose(out, img * 2)


def test_mask_from_correlated_noise():
    rng = np.random.default_rng(0)
    white = rng.normal(size=(192, 192))
    smeared = ndi.convolve1d(white, [1.0, 1.0, 1.0], axis=1)  # correlated along X over +-2
    proposal = mask_from_data(smeared + 50, "YX")
    assert proposal.mask.tolist() == [[1, 1, 1, 1, 1]]
    assert proposal.autocorrelation[7, 8] == pytest.approx(2 / 3, abs=0.05)
    assert mask_from_data(white, "YX").mask.tolist() == [[1]]
    vertical = ndi.convolve1d(white, [1.0, 1.0], axis=0)
    assert mask_from_data(vertical, "YX", region=(slice(0, 96), slice(0, 96))).mask.shape == (3, 1)


def lag_one_noise(rho: float, shape=(256, 256), seed: int = 0) -> np.ndarray:
    """White noise smoothed along X by ``[c, 1, c]``: correlation ``rho`` at lag 1 only."""
    c = (1 - np.sqrt(1 - 2 * rho**2)) / (2 * rho)
    return ndi.convolve1d(np.random.default_rng(seed).normal(size=shape), [c, 1.0, c], axis=1)


def test_a_weak_correlation_is_not_masked():
    # FMD's confocal noise has 0.05 between horizontal neighbours, where a 1x3 mask cost 2 dB;
    # at 0.2 hiding the neighbours still cost 0.4 dB
    weak = mask_from_data(lag_one_noise(0.2) + 50, "YX")
    assert weak.mask.tolist() == [[1]] and weak.hides_nothing
    assert weak.strongest == pytest.approx(0.2, abs=0.02)
    assert "no neighbour is worth hiding" in weak.describe()
    strong = mask_from_data(lag_one_noise(0.4) + 50, "YX")
    assert strong.mask.tolist() == [[1, 1, 1]] and not strong.hides_nothing
    assert strong.strongest == pytest.approx(0.4, abs=0.03)
    assert strong.describe().startswith("proposed mask 1x3 (strongest neighbour correlation")


def test_strongest_names_the_neighbour_that_decides_the_mask():
    # correlation 0.5 at X lag 2 only (periodic read-out): not connected, so nothing is hidden,
    # and the line the user reads names the neighbours' ~0, not 0.5
    white = np.random.default_rng(0).normal(size=(256, 256))
    c = (1 - np.sqrt(1 - 2 * 0.5**2)) / (2 * 0.5)
    lag_two = ndi.convolve1d(white, [c, 0.0, 1.0, 0.0, c], axis=1)
    proposal = mask_from_data(lag_two + 50, "YX")
    assert proposal.autocorrelation[7, 9] == pytest.approx(0.5, abs=0.03)
    assert proposal.hides_nothing and proposal.strongest < 0.05


def test_mask_from_residual_and_errors():
    rng = np.random.default_rng(1)
    clean = ndi.gaussian_filter(rng.random((2, 96, 96)), 4) * 100
    noise = ndi.convolve1d(rng.normal(size=clean.shape), [1.0, 1.0, 1.0], axis=2)
    proposal = mask_from_data(clean + noise, "TYX", residual=noise)
    assert proposal.mask.shape == (1, 5)
    with pytest.raises(DeepInputError, match="too small"):
        noise_autocorrelation(np.zeros((5, 5)), radius=7)


def test_new_model_folder_rules(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(ModelFolderError, match="not empty"):
        prepare_new_folder(tmp_path / "full", resume=False)
    with pytest.raises(ModelFolderError, match="not a model folder"):
        prepare_new_folder(tmp_path / "full", resume=True)
    prepare_new_folder(tmp_path / "new", resume=False)
    assert not (tmp_path / "new").exists()  # nothing created by the check
    # a start killed before its first epoch ended (info, sample, no weights): a new run may
    # reuse the folder, but it cannot be continued
    killed = tmp_path / "killed"
    killed.mkdir()
    ModelFolder(killed).write_info(ModelInfo(train=TrainConfig(), axes="YX"))
    (killed / "sample.npy").write_bytes(b"x")
    with pytest.raises(ModelFolderError, match="no trained weights"):
        prepare_new_folder(killed, resume=True)
    assert not ModelFolder(killed).is_taken() and ModelFolder(tmp_path / "full").is_taken()
    prepare_new_folder(killed, resume=False)
    assert killed.is_dir() and not any(killed.iterdir())


def test_a_training_that_fails_before_its_first_weights_leaves_nothing(
    tmp_path, small_noisy, tiny_config, monkeypatch
):
    from napari_celldenoise.deep import api, n2v

    written = []

    def crash(train, val, config, folder, info, **kwargs):  # the trainer dies before an epoch ends
        folder.write_info(info)
        written.append(sorted(p.name for p in folder.path.iterdir()))
        yield Log("TensorFlow starting")
        raise MemoryError("out of memory building the network")

    monkeypatch.setattr(n2v, "train_n2v", crash)
    with pytest.raises(MemoryError):
        list(api.train(small_noisy, "YX", tiny_config("n2v"), str(tmp_path / "m")))
    assert written == [["celldenoise.yaml", "sample.npy"]]
    assert not (tmp_path / "m").exists()
    (tmp_path / "empty").mkdir()  # a folder the user made stays, emptied
    with pytest.raises(MemoryError):
        list(api.train(small_noisy, "YX", tiny_config("n2v"), str(tmp_path / "empty")))
    assert (tmp_path / "empty").is_dir() and not any((tmp_path / "empty").iterdir())


def test_n2v_patches_need_a_hidden_pixel_and_masks_must_fit_them():
    # 0.198 % of a 16 x 16 patch is 0.5 pixel: n2v's data wrapper would assert deep in training
    with pytest.raises(ValueError, match="has none to hide"):
        TrainConfig(method="n2v", patch=16)
    assert TrainConfig(method="n2v", patch=16, dims=3).patch_shape == (8, 16, 16)
    with pytest.raises(ValueError, match=r"mask \(9x1x1\) is larger than the patch \(8x16x16\)"):
        TrainConfig(method="structn2v", dims=3, patch=16, mask=[[[1]]] * 9)


def test_dihedral_ensemble_averages_the_eight_transforms():
    from scipy.ndimage import uniform_filter

    from napari_celldenoise.deep.predictors import Dihedral as _Dihedral

    rng = np.random.default_rng(3)
    img = rng.normal(size=(16, 16)).astype(np.float32)
    # an operator that commutes with flips and rotations comes out unchanged
    box = _Dihedral(lambda w: uniform_filter(w, 3, mode="wrap"))(img)
    np.testing.assert_allclose(box, uniform_filter(img, 3, mode="wrap"), atol=1e-5)
    # "the left neighbour" averaged over the 8 transforms is the mean of the 4 neighbours
    left = _Dihedral(lambda w: np.roll(w, 1, axis=-1))(img)
    four = sum(np.roll(img, s, axis=a) for s in (1, -1) for a in (0, 1)) / 4
    np.testing.assert_allclose(left, four, atol=1e-5)
    # ZYX windows: only the YX plane is transformed
    vol = rng.normal(size=(3, 8, 8)).astype(np.float32)
    up = _Dihedral(lambda w: np.roll(w, 1, axis=0))(vol)
    np.testing.assert_allclose(up, np.roll(vol, 1, axis=0), atol=1e-5)


def test_pg_learning_rate_defaults_to_1e_3_and_a_given_rate_is_kept():
    assert TrainConfig(method="pg-blindspot").learning_rate == 1e-3
    assert TrainConfig(method="n2v").learning_rate == 4e-4
    assert TrainConfig(method="pg-blindspot", learning_rate=2e-4).learning_rate == 2e-4


def test_structure_weights_favour_structured_patches():
    rng = np.random.default_rng(0)
    flat = rng.normal(10, 1, (6, 32, 32))  # background: noise only
    cells = rng.normal(10, 1, (2, 32, 32))
    cells[:, 8:24, 8:24] += 50  # a bright object in two patches
    patches = np.concatenate([flat, cells]).astype(np.float32)
    assert structure_weights(patches, 0.0) is None
    half = structure_weights(patches, 0.5)
    assert half.sum() == pytest.approx(1.0)
    # half of the draws uniform (1/16 each), the other half almost all on the object patches
    assert half[:6] == pytest.approx(0.5 / 8, abs=0.01)
    assert half[6:].sum() > 0.55  # uniform draws alone would give them 0.25
    only = structure_weights(patches, 1.0)
    assert only[6:].sum() > 0.9
    assert structure_weights(np.zeros((3, 8, 8), np.float32), 0.5) is None  # flat: uniform


def test_pg_batches_follow_the_weights():
    from napari_celldenoise.deep.pg import _batches

    x = np.stack([np.full((8, 8, 1), i, np.float32) for i in range(4)])
    weights = np.array([0.0, 0.0, 0.0, 1.0])
    batch, _ = next(_batches(x, 16, 8, np.random.default_rng(0), True, weights))
    assert (batch == 3).all()
    batch, _ = next(_batches(x, 64, 8, np.random.default_rng(0), False))
    assert set(np.unique(batch)) == {0, 1, 2, 3}  # uniform without weights


def test_structure_share_is_half_for_pg_and_pg_only():
    assert TrainConfig(method="pg-blindspot").structure_share == 0.5
    assert TrainConfig(method="pg-blindspot", structure_share=0).structure_share == 0
    assert TrainConfig(method="n2v", structure_share=0).method == "n2v"  # "not used": dropped
    with pytest.raises(ValidationError, match="structure_share is a setting of pg-blindspot"):
        TrainConfig(method="n2v", structure_share=0.5)
    with pytest.raises(ValidationError):
        TrainConfig(method="pg-blindspot", structure_share=1.5)


def test_resume_config_takes_the_models_method_and_its_settings():
    from napari_celldenoise.deep.config import resume_config

    pg = TrainConfig(method="pg-blindspot", patch=32, features=8)
    run = TrainConfig(method="n2v", epochs=3, perc_pix=0.5)  # a CLI --resume left at n2v
    merged = resume_config(pg, run)
    assert merged.method == "pg-blindspot" and merged.patch == 32 and merged.features == 8
    assert merged.epochs == 3  # this run's own setting; n2v's perc_pix does not apply
    assert merged.lr_schedule == "cosine" and merged.structure_share == 0.5
    assert merged.learning_rate == 1e-3
    own = {"structure_share": 0.2, "learning_rate": 5e-4, "features": 64, "patch": 128}
    again = resume_config(pg, own)  # the network stays the model's
    assert again.structure_share == 0.2 and again.learning_rate == 5e-4
    assert again.features == 8 and again.patch == 32
    # what the run does not give stays the model's last run's (the dock has no rate field)
    slow = TrainConfig(method="pg-blindspot", learning_rate=2e-4, lr_schedule="constant")
    kept = resume_config(slow, {"epochs": 2, "steps": 5, "batch": 4})
    assert kept.learning_rate == 2e-4 and kept.lr_schedule == "constant" and kept.steps == 5
    # the validation split stays the one the folder's best weights were chosen on, and the
    # structN2V mask is the model's
    region = TrainConfig(method="structn2v", mask=[[1, 1, 1]], val_region=[[0, 64], [0, 64]])
    run = TrainConfig(method="structn2v", mask=[[1], [1], [1]], seed=4)
    merged = resume_config(region, run)
    assert merged.val_region == [[0, 64], [0, 64]] and merged.seed == 0
    assert merged.mask == [[1, 1, 1]]


def test_validation_subset_caps_pixels_and_keeps_one_patch():
    val = np.arange(10 * 4 * 8, dtype=np.float32).reshape(10, 4, 8)
    three = validation_subset(val, pixels=100)  # 32 pixels a patch: 3 fit
    assert three.shape == (3, 4, 8)
    np.testing.assert_array_equal(three, val[:3])
    assert len(validation_subset(val, pixels=10)) == 1
    assert len(validation_subset(val, pixels=10**6)) == 10
    assert len(validation_subset(np.zeros((400, 64, 64), np.float32))) == 64


def test_continued_runs_draw_new_batches():
    """A first run keeps its seed; Continue (epochs done) must not replay the first run's draws."""
    from napari_celldenoise.deep.pg import _batches

    x = np.random.default_rng(1).normal(size=(20, 32, 32, 1)).astype(np.float32)

    def first_batch(epochs_done: int) -> np.ndarray:
        rng = np.random.default_rng(draw_seed(7, epochs_done))
        return next(_batches(x, 4, 16, rng, True))[0]

    assert draw_seed(7, 0) == 7
    np.testing.assert_array_equal(first_batch(0), first_batch(0))
    np.testing.assert_array_equal(first_batch(3), first_batch(3))
    assert not np.array_equal(first_batch(0), first_batch(3))
    assert not np.array_equal(first_batch(3), first_batch(6))
    np.random.seed(draw_seed(7, 3))  # noqa: NPY002 - n2v's wrapper draws from the global one


def test_epoch_estimate_follows_the_measured_step_times():
    from napari_celldenoise.deep.config import estimate_epoch_seconds

    # measured on 2 AVX2 cores: 14.5 s (n2v) and 48 s (PG) per epoch of 20 steps of 16 x 64^2
    n2v = estimate_epoch_seconds(TrainConfig(method="n2v", steps=20))
    pg = estimate_epoch_seconds(TrainConfig(method="pg-blindspot", steps=20))
    assert n2v == pytest.approx(14.5, rel=0.1) and pg == pytest.approx(48, rel=0.1)
    assert estimate_epoch_seconds(TrainConfig(steps=20), gpu=True) < n2v / 10
    # n2v doubles its features per level (each level costs about the same): depth 3 is 4/3 of
    # depth 2; PG's constant width makes a fourth level add only 1/340 of the work
    n2v_deep = estimate_epoch_seconds(TrainConfig(method="n2v", steps=20, depth=3))
    assert n2v_deep == pytest.approx(n2v * 4 / 3)
    pg_128 = {"method": "pg-blindspot", "steps": 20, "patch": 128}
    pg_deep = estimate_epoch_seconds(TrainConfig(**pg_128, depth=4))
    assert pg_deep == pytest.approx(estimate_epoch_seconds(TrainConfig(**pg_128)) * 341 / 340)


def test_saving_weights_drops_only_that_files_calibration_line(tmp_path):
    # Continue used to delete every line when it started: a continued run that died left the
    # untouched best weights without theirs
    class Net:  # stands in for a Keras model: writes a weights file
        def save_weights(self, path, save_format):
            Path(path).write_bytes(b"w")

    folder = ModelFolder(tmp_path)
    folder.write_json(
        "calibration.json", {"weights_best.h5": [0.9, 0.1], "weights_last.h5": [1.1, 0.0]}
    )
    folder.save_weights(Net(), "last")
    assert folder.read_json("calibration.json") == {"weights_best.h5": [0.9, 0.1]}
    assert folder.file("weights_last.h5").read_bytes() == b"w"
