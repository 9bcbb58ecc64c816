"""Noise2Void (Krull, Buchholz and Jug, "Noise2Void - Learning Denoising From Single Noisy
Images", CVPR 2019): a U-Net trained to predict hidden pixels from their neighbours, through the
``n2v`` package (:mod:`..n2v`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from ..config import TrainConfig
from ..method import DeepMethod, ExportSupport
from ..model import N2V_CONFIG


class N2VConfig(TrainConfig):
    """Noise2Void's settings: the blind-spot hiding, batch norm, and the optional VST."""

    DEFAULT: ClassVar[bool] = True
    NEUTRAL: ClassVar[dict[str, tuple[Any, ...]]] = {
        "batch_norm": (False,),
        "perc_pix": (0.198,),
        "radius": (5,),
        "vst": (False,),
    }
    KEPT_ON_RESUME: ClassVar[tuple[str, ...]] = ("radius", "perc_pix", "batch_norm", "vst")

    method: Literal["n2v"] = "n2v"
    batch_norm: bool = Field(
        default=False,
        description="N2V: batch normalisation; off by default because its running statistics "
        "lag far behind in short trainings (measured: -7 dB on FMD after 80 steps)",
    )
    perc_pix: float = Field(default=0.198, gt=0, le=10, description="N2V: % of pixels masked")
    radius: int = Field(default=5, ge=1, le=20, description="N2V: neighbourhood of replacements")
    vst: bool = Field(
        default=False,
        description="N2V: train on Anscombe-stabilised data (exact unbiased inverse after)",
    )

    def blind_spot_mask(self) -> np.ndarray | None:
        """The structN2V mask (None: N2V hides single pixels)."""
        return None

    @model_validator(mode="after")
    def _hides_pixels(self) -> N2VConfig:
        hidden = int(np.prod(self.patch_shape) * self.perc_pix / 100)
        if hidden < 1:
            raise ValueError(
                f"n2v hides {self.perc_pix} % of a patch's pixels: a "
                f"{'x'.join(map(str, self.patch_shape))} patch has none to hide; raise the "
                "patch or perc_pix"
            )
        return self


def train(
    patches: Any, config: N2VConfig, folder: Any, info: Any, *, resume: bool, should_stop: Any,
    extra: dict[str, Any],
) -> Iterator[Any]:  # fmt: skip
    """The n2v trainer on the training and validation patches."""
    from ..n2v import train_n2v

    return (
        yield from train_n2v(
            patches.train, patches.val, config, folder, info, resume=resume,
            should_stop=should_stop,
        )
    )  # fmt: skip


def predictor(
    folder: Any, info: Any, config: Any, samples: Any, *, should_stop: Any
) -> Iterator[Any]:
    """The folder's network (with its calibration line), behind the VST if it was trained so."""
    from ..model import ModelFolderError
    from ..n2v import build_from_folder
    from ..predictors import KerasPredictor, Stabilised

    yield from ()
    net: Any = KerasPredictor(build_from_folder(folder, info, config.weights), info.mean, info.std)
    if info.train.vst:
        from ..vst import stabiliser

        noise = folder.read_noise()
        if noise is None:
            raise ModelFolderError(f"{folder.path}: a vst model without noise.yaml")
        net = Stabilised(net, stabiliser(noise["a"], noise["b"]))
    return net


def receptive_radius(depth: int) -> int:
    from ..n2v import receptive_radius as radius

    return radius(depth)


def load_for_export(folder: Any, info: Any) -> tuple[Any, Any]:
    from ..n2v import build_from_folder
    from ..predictors import KerasPredictor

    keras_model = build_from_folder(folder, info, "best")
    return keras_model, KerasPredictor(keras_model, info.mean, info.std)


def refuse_export(info: Any) -> str | None:
    if info.train.vst:
        return (
            "trained on Anscombe-stabilised data (vst), which the BioImage Model Zoo cannot "
            "express as a processing step: not exportable"
        )
    return None


def readme_lines(info: Any) -> list[str]:
    t = info.train
    lines = [f"- blind-spot pixels {t.perc_pix} %, replacement radius {t.radius}"]
    mask = t.blind_spot_mask()
    if mask is not None:
        lines.append(f"- structN2V mask: `{mask.tolist()}`")
    return lines


def export_support(title: str, short: str, citation: str, doi: str) -> ExportSupport:
    """The bioimage.io export of an n2v-family folder (N2V, structN2V)."""
    return ExportSupport(
        title=title, short=short, citation=citation, doi=doi, tags=("noise2void",),
        load=load_for_export, refuse=refuse_export, readme=readme_lines,
    )  # fmt: skip


METHOD = DeepMethod(
    name="n2v",
    title="n2v",
    summary="Noise2Void: hides single pixels; for noise independent from pixel to pixel",
    config=N2VConfig,
    train=train,
    predictor=predictor,
    receptive_radius=receptive_radius,
    export=export_support(
        "Noise2Void",
        "N2V",
        "A. Krull, T.-O. Buchholz and F. Jug, Noise2Void - Learning Denoising From Single Noisy "
        "Images, CVPR 2019, pp. 2129-2137",
        "10.1109/CVPR.2019.00223",
    ),
    side_files=(N2V_CONFIG,),
    order=0,
)
