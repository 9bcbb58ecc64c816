"""Config models: bounds, versions, YAML round trip, clear errors."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError

from napari_celldenoise.config import Config, ConfigError, ReaderConfig


class Demo(Config):
    SCHEMA_VERSION = 2
    version: int = 2
    sigma: float = Field(1.0, gt=0, le=50)
    method: str = "gaussian"


def test_yaml_round_trip(tmp_path):
    cfg = Demo(sigma=2.5, method="median")
    path = cfg.to_yaml(tmp_path / "c.yaml")
    assert "sigma: 2.5" in path.read_text()
    assert Demo.from_yaml(path) == cfg


def test_bounds_and_unknown_keys_are_refused():
    with pytest.raises(ValidationError):
        Demo(sigma=0)
    with pytest.raises(ValidationError):
        Demo(sigmaa=1.0)


def test_configs_are_frozen():
    with pytest.raises(ValidationError):
        Demo().sigma = 3.0


def test_file_from_a_newer_version_is_refused_with_the_file_name(tmp_path):
    path = tmp_path / "new.yaml"
    path.write_text("version: 7\nsigma: 1.0\n")
    with pytest.raises(ConfigError, match="new.yaml.*newer than this plugin"):
        Demo.from_yaml(path)


@pytest.mark.parametrize("text", ["[1, 2]", "sigma: [\n", "sigma: -1\n"])
def test_bad_files_give_one_line(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        Demo.from_yaml(path)
    assert "bad.yaml" in str(info.value) and "\n" not in str(info.value)


def test_reader_config_axes_validation():
    assert ReaderConfig(axes="tyx").axes == "TYX"
    with pytest.raises(ValidationError):
        ReaderConfig(axes="TTX")
    with pytest.raises(ValidationError):
        ReaderConfig(lazy_limit=-1)


def test_validation_errors_read_as_one_plain_line():
    from napari_celldenoise.config import format_validation_error
    from napari_celldenoise.deep.config import TrainConfig

    with pytest.raises(ValidationError) as model_level:
        TrainConfig(patch=30)
    assert (
        format_validation_error(model_level.value) == "patch 30 must be a multiple of 2**depth = 4"
    )
    with pytest.raises(ValidationError) as field_level:
        TrainConfig(epochs=0)
    assert format_validation_error(field_level.value).startswith("epochs: Input should be")
