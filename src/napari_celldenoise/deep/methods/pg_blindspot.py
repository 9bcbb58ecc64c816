"""The Poisson-Gaussian blind-spot network (:mod:`..pg`): a half-plane blind-spot U-Net with a
prior head and a posterior-mean output under a Poisson-Gaussian noise model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from ..config import TrainConfig
from ..method import DeepMethod


def min_pg_patch(depth: int) -> int:
    """Smallest training patch for a PG blind-spot network of ``depth`` levels: ``8 * 2**depth``.

    The half-plane branch reaches about ``8 * 2**depth`` rows up. Measured on FMD (16
    features, 7-8 epochs, seed 0): on 64 x 64 patches, depth 3 predicted whole 512 x 512
    frames as well as 256 x 256 crops (prior mean 40.14 against 40.09 dB), but depth 4 scored
    39.65 dB on 64 x 64 crops and 33.70 dB on the whole frame (posterior 32.47 dB, below the
    noisy 33.27 dB). Depth 4 on 128 x 128 patches (batch 4) scored 40.40 dB on the whole frame.
    """
    return 8 * 2**depth


def pg_depth_for(patch: int) -> int:
    """PG's default depth on ``patch``-pixel patches: 3, or the deepest that fits them."""
    return next((d for d in (3, 2) if patch >= min_pg_patch(d)), 1)


class PGBlindSpotConfig(TrainConfig):
    """The PG blind-spot network's settings: schedule, structure draws, noise, precision."""

    EPOCH_COST: ClassVar[float] = 13.0
    MEASURED_DEPTH: ClassVar[int] = 3
    NEUTRAL: ClassVar[dict[str, tuple[Any, ...]]] = {
        "lr_schedule": ("constant",),
        "structure_share": (0, 0.0),
        "learn_noise": (False,),
        "precision": ("auto", "float32"),
    }
    KEPT_ON_RESUME: ClassVar[tuple[str, ...]] = ("learn_noise",)

    method: Literal["pg-blindspot"] = "pg-blindspot"
    features: int = Field(default=16, ge=4, le=256, description="features of the first level")
    learning_rate: float = Field(default=1e-3, gt=0, le=1.0)
    lr_schedule: Literal["constant", "cosine"] = Field(
        default="cosine",
        description="'cosine' decays the learning rate to 0 over this run's epochs x steps "
        "(a continued run starts a new cycle)",
    )
    structure_share: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="share of training patches drawn in proportion to their structure rather "
        "than uniformly, so that mostly-background fields do not spend most steps on "
        "background (measured on FMD: see docs/deep.md)",
    )
    learn_noise: bool = Field(default=False, description="learn noise parameters a, b")
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto",
        description="'bfloat16' computes the network in bfloat16 (weights, prior head and "
        "loss stay float32); 'auto' does so on a CPU with bfloat16 instructions and no GPU, "
        "where it gave 1.5x the steps per CPU-minute at no loss of quality",
    )

    @model_validator(mode="before")
    @classmethod
    def _depth_for_the_patch(cls, values: Any) -> Any:
        """Depth 3, or less on patches under 64 pixels (see :func:`min_pg_patch`), unless given.

        The other defaults (16 features, cosine from 1e-3, half the patches drawn by
        structure) were measured on FMD with 2 CPU cores: 16 features beat 32 in the same
        minutes; the cosine schedule gives +0.4 dB over a constant rate after 8 minutes; a peak
        of 1e-3 rather than 4e-4 gave +0.2 and +1.6 dB after 4 minutes in two same-seed pairs
        (2e-3: as 1e-3).
        """
        if isinstance(values, dict) and "depth" not in values:
            patch = values.get("patch", cls.model_fields["patch"].default)
            values = {**values, "depth": pg_depth_for(patch) if isinstance(patch, int) else 3}
        return values

    @model_validator(mode="after")
    def _fits(self) -> PGBlindSpotConfig:
        if self.patch < min_pg_patch(self.depth):
            raise ValueError(
                f"pg-blindspot at depth {self.depth} needs patches of at least "
                f"{min_pg_patch(self.depth)} pixels (a bottom level of 8 x 8): on smaller ones "
                "it learns their zero border and fails on whole images; raise the patch or "
                "lower the depth"
            )
        if self.dims == 3:
            raise ValueError("pg-blindspot is 2D: Z slices are trained as separate images")
        return self

    def depth_cost(self) -> float:
        """The branch keeps its width: a level costs a quarter of the one above it."""

        def work(depth: int) -> float:
            return sum(4.0**-level for level in range(depth + 1))

        return work(self.depth) / work(self.MEASURED_DEPTH)


def train(
    patches: Any, config: PGBlindSpotConfig, folder: Any, info: Any, *, resume: bool,
    should_stop: Any, extra: dict[str, Any],
) -> Iterator[Any]:  # fmt: skip
    from ..pg import train_pg

    return (
        yield from train_pg(
            patches.train, patches.val, config, folder, info, resume=resume,
            should_stop=should_stop,
        )
    )  # fmt: skip


def predictor(
    folder: Any, info: Any, config: Any, samples: Any, *, should_stop: Any
) -> Iterator[Any]:
    """The posterior-mean predictor, adapted to ``samples`` first (test-time adaptation)."""
    from ..pg import PGPredictor

    net = PGPredictor(folder, info, config)
    yield from net.adapt(samples, should_stop=should_stop)
    return net


def receptive_radius(depth: int) -> int:
    from ..pg import receptive_radius as radius

    return radius(depth)


METHOD = DeepMethod(
    name="pg-blindspot",
    title="pg-blindspot",
    summary="Poisson-Gaussian blind-spot network: posterior mean under the fitted noise model",
    config=PGBlindSpotConfig,
    train=train,
    predictor=predictor,
    receptive_radius=receptive_radius,
    three_d=False,
    dock=frozenset({"tta"}),
    order=2,
)
