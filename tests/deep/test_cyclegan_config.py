"""The CycleGAN's registry entry, config and command-line contract: pure, no TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_celldenoise.cli import main
from napari_celldenoise.deep.config import TrainConfig
from napari_celldenoise.deep.data import DeepInputError
from napari_celldenoise.deep.registry import METHODS, get_method


def test_the_registry_lists_cyclegan_with_its_losses_and_reference():
    method = get_method("cyclegan")
    assert "cyclegan" in METHODS and not method.three_d and method.export is None
    assert {"generator", "discriminator", "cycle"} <= set(method.losses)
    assert method.check_extra({"reference": np.ones((4, 4))}).keys() == {"reference"}
    assert method.check_extra({}) == {} and method.check_extra({"reference": None}) == {}
    with pytest.raises(DeepInputError, match="cyclegan takes no mask"):
        method.check_extra({"mask": np.ones(3)})
    # a ResNet generator with 9 blocks at depth 2 sees 92 px each way (~170 px across)
    assert method.receptive_radius(2) == 92


def test_config_defaults_and_checks():
    config = TrainConfig(method="cyclegan")
    assert (config.patch, config.batch, config.learning_rate) == (256, 1, 2e-4)
    assert (config.cycle_weight, config.identity_weight, config.target) == (10.0, 0.5, "auto")
    with pytest.raises(ValueError, match="cyclegan is 2D"):
        TrainConfig(method="cyclegan", dims=3)
    with pytest.raises(ValueError, match="res_blocks is a setting of cyclegan, not of n2v"):
        TrainConfig(method="n2v", res_blocks=3)
    assert TrainConfig(method="n2v", target="auto").method == "n2v"  # neutral: dropped
    assert (config.pool_size, config.fft_discriminator) == (50, False)
    with pytest.raises(ValueError, match="fft_discriminator is a setting of cyclegan"):
        TrainConfig(method="n2v", fft_discriminator=True)


def test_cli_accepts_the_method_and_refuses_target_for_others(tmp_path, capsys):
    img = tmp_path / "in.tif"
    tifffile.imwrite(img, np.random.default_rng(0).random((64, 64)).astype(np.float32))
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "cyclegan" in capsys.readouterr().out
    code = main(
        ["train", str(img), "--method", "n2v", "--target", "auto", "-o", str(tmp_path / "m")]
    )
    assert code == 2
    assert "--target is only used with --method cyclegan" in capsys.readouterr().err
    missing = tmp_path / "nope.tif"
    args = ["train", str(img), "--method", "cyclegan", "--target", str(missing), "--patch", "32"]
    assert main([*args, "-o", str(tmp_path / "m")]) == 2
    assert "nope.tif" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_a_train_spec_carries_the_reference(tmp_path):
    from napari_celldenoise.jobs.specs import load_spec, save_spec, train_spec

    config = TrainConfig(method="cyclegan", target="reference", patch=64)
    spec = train_spec("noisy.dm3", str(tmp_path / "m"), config, extra={"reference": "sim.tif"})
    save_spec(spec, tmp_path / "spec.yaml")
    again = load_spec(tmp_path / "spec.yaml")
    assert again.extra["reference"].path == "sim.tif" and again.config.target == "reference"
    assert train_spec("noisy.dm3", "m", config).extra == {}
