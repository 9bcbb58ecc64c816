"""Unpaired CycleGAN (Zhu, Park, Isola and Efros, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV 2017) towards synthetic clean targets of the
user's crystal, for atomic-resolution electron micrographs (:mod:`..cyclegan`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from ..config import TrainConfig
from ..method import DeepMethod


class CycleGANConfig(TrainConfig):
    """The CycleGAN's settings: the networks, the loss weights and the target domain."""

    # counted, not measured at the defaults: a generator (32 features, 6 residual blocks) does
    # ~160k multiply-adds per pixel, a training step runs six generator passes and their
    # backward (~18 passes), against ~210k per pixel for an n2v step (depth 2): ~14 x per pixel
    EPOCH_COST: ClassVar[float] = 14.0
    NEUTRAL: ClassVar[dict[str, tuple[Any, ...]]] = {
        "target": ("auto",),
        "res_blocks": (6,),
        "cycle_weight": (10.0,),
        "identity_weight": (0.5,),
        "lowpass_weight": (10.0,),
        "lowpass_sigma": (None,),
        "supervised_weight": (0.0,),
        "supervised_jitter": (0.0,),
        "noisy_cycle": (1.0,),
        "pool_size": (50,),
        "fft_discriminator": (False,),
    }
    # the architecture: an FFT discriminator is a fifth network in the weight files
    KEPT_ON_RESUME: ClassVar[tuple[str, ...]] = ("res_blocks", "target", "fft_discriminator")

    method: Literal["cyclegan"] = "cyclegan"
    patch: int = Field(
        default=256,
        ge=32,
        le=512,
        description="training crop side (pixels) at the image's own pixel size; a ResNet "
        "generator sees ~170 px, so crops of 256 px or more (smaller only for tests)",
    )
    batch: int = Field(default=1, ge=1, le=64, description="crops per batch (Zhu et al.: 1)")
    learning_rate: float = Field(default=2e-4, gt=0, le=1.0, description="Adam, beta1 0.5")
    res_blocks: int = Field(default=6, ge=1, le=9, description="residual blocks per generator")
    target: Literal["auto", "reference"] = Field(
        default="auto",
        description="clean domain: synthetic targets from the user's clean reference image "
        "('reference') or from the lattice and motif measured on the noisy image ('auto')",
    )
    cycle_weight: float = Field(default=10.0, ge=0, le=100, description="cycle-consistency")
    identity_weight: float = Field(
        default=0.5, ge=0, le=10, description="identity loss, as a share of the cycle weight"
    )
    lowpass_weight: float = Field(
        default=10.0,
        ge=0,
        le=100,
        description="low-pass consistency: the output keeps the input's thickness map",
    )
    lowpass_sigma: float | None = Field(
        default=None, gt=0, le=100, description="its Gaussian (px); None: the lattice spacing"
    )

    supervised_weight: float = Field(
        default=10.0,
        ge=0,
        le=100,
        description="synthetic supervision: a target recorded with the noisy image's measured "
        "Poisson-Gaussian noise must come back as the target, |G(noisify(y)) - y|; 0: off",
    )
    supervised_jitter: float = Field(
        default=0.0,
        ge=0,
        le=5,
        description="scan-line jitter (px, standard deviation along x) added to those "
        "recordings; the noise is measured, the jitter is not",
    )
    noisy_cycle: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="weight of the noisy-side cycle |F(G(x)) - x|, as a share of the cycle "
        "weight (it asks for the noise back: a high share holds G at the identity)",
    )

    vacancy_rate: float = Field(
        default=0.01,
        ge=0,
        le=0.2,
        description="share of the columns taken out of each synthetic target: the network "
        "learns that vacancies exist, so it does not fill them in",
    )
    keep_thickness: bool = Field(
        default=True,
        description="after prediction, the output's mean over one unit cell is replaced by "
        "the input's: the thickness map (dents) comes from the data, not the network",
    )

    pool_size: int = Field(
        default=50,
        ge=0,
        le=200,
        description="image pool: the discriminators also see generated images of earlier "
        "steps (Zhu et al.: 50); 0: only the newest",
    )
    fft_discriminator: bool = Field(
        default=False,
        description="a third discriminator on the clean domain's power spectrum "
        "log|FFT|^2, so that the output's Bragg peaks and background match the targets' "
        "(Khan et al., npj Comput. Mater. 2023); about a third more work per step",
    )

    @model_validator(mode="after")
    def _two_d(self) -> CycleGANConfig:
        if self.dims == 3:
            raise ValueError("cyclegan is 2D: Z slices are trained as separate images")
        return self


def train(
    patches: Any, config: CycleGANConfig, folder: Any, info: Any, *, resume: bool,
    should_stop: Any, extra: dict[str, Any],
) -> Iterator[Any]:  # fmt: skip
    import numpy as np

    from ..cyclegan import train_cyclegan

    reference = extra.get("reference")
    if reference is not None:
        reference = np.squeeze(np.asarray(reference, np.float32))
    return (
        yield from train_cyclegan(
            patches.train, patches.val, config, folder, info, reference=reference,
            resume=resume, should_stop=should_stop,
        )
    )  # fmt: skip


def predictor(
    folder: Any, info: Any, config: Any, samples: Any, *, should_stop: Any
) -> Iterator[Any]:
    """The noisy -> clean generator, on data normalised as in training."""
    from ..cyclegan import generator_from_folder
    from ..predictors import KerasPredictor

    yield from ()
    return KerasPredictor(generator_from_folder(folder, info, config.weights), info.mean, info.std)


def finish(folder: Any, info: Any) -> Any:
    """The plane step after the tiles: the input's thickness map into the output
    (``keep_thickness``), on the lattice the training measured."""
    from ..cyclegan import thickness_step

    return thickness_step(folder, info)


def receptive_radius(depth: int) -> int:
    from ..cyclegan import receptive_radius as radius

    return radius(depth)


METHOD = DeepMethod(
    name="cyclegan",
    title="cyclegan (EM)",
    summary="unpaired CycleGAN towards synthetic clean targets of the crystal; for "
    "atomic-resolution electron micrographs (keeps dents and vacancies)",
    config=CycleGANConfig,
    train=train,
    predictor=predictor,
    receptive_radius=receptive_radius,
    finish=finish,
    three_d=False,
    dock=frozenset({"gan"}),
    optional_inputs=("reference",),
    losses=("loss", "val_loss", "generator", "discriminator", "cycle", "lowpass", "supervised"),
    order=3,
)
