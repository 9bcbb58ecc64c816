"""`celldenoise predict` takes its defaults from PredictConfig, as the dock does."""

from __future__ import annotations

from napari_celldenoise.cli.main import build_parser
from napari_celldenoise.deep.config import PredictConfig


def test_predict_options_default_to_the_predict_config():
    args = build_parser().parse_args(["predict", "MODEL", "IN.tif", "-o", "OUT.tif"])
    defaults = PredictConfig()
    for name in ("tile", "tta", "tta_steps", "weights", "ensemble"):
        assert getattr(args, name) == getattr(defaults, name), name
