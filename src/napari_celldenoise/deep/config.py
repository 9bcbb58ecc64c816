"""Configs of the self-supervised networks: one model drives the dock, the CLI and batch runs."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from ..config import Config

Method = Literal["n2v", "structn2v", "pg-blindspot"]
METHODS: tuple[str, ...] = ("n2v", "structn2v", "pg-blindspot")


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


class TrainConfig(Config):
    """How a denoising network is trained on the user's own noisy data.

    ``epochs`` is the number of epochs of this run; with ``resume`` they are *added* to the
    epochs already trained.
    """

    method: Method = "n2v"
    epochs: int = Field(default=20, ge=1, le=10_000, description="epochs of this run")
    steps: int = Field(default=100, ge=1, le=100_000, description="batches per epoch")
    patch: int = Field(default=64, ge=16, le=512, description="training patch side (pixels)")
    batch: int = Field(default=16, ge=1, le=1024, description="patches per batch")
    learning_rate: float = Field(default=4e-4, gt=0, le=1.0)
    lr_schedule: Literal["constant", "cosine"] = Field(
        default="constant",
        description="PG: 'cosine' decays the learning rate to 0 over this run's epochs x steps "
        "(a continued run starts a new cycle); N2V keeps n2v's reduce-on-plateau",
    )
    val_fraction: float = Field(default=0.1, gt=0, lt=0.5, description="validation share")
    val_region: list[list[int]] | None = Field(
        default=None,
        description="validation patches from this region instead of a random share: "
        "[[y0, y1], [x0, x1]] (or [[z0, z1], [y0, y1], [x0, x1]]) in pixels, stop exclusive; "
        "training patches come from outside it",
    )
    augment: bool = Field(default=True, description="random flips and 90° rotations")
    structure_share: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="PG: share of training patches drawn in proportion to their structure "
        "rather than uniformly, so that mostly-background fields do not spend most steps on "
        "background (pg-blindspot default 0.5; measured on FMD: see docs/deep.md)",
    )
    dims: Literal[2, 3] = Field(default=2, description="2D network (Z/T become samples) or 3D")
    depth: int = Field(default=2, ge=1, le=5, description="U-Net levels (poolings)")
    features: int = Field(default=32, ge=4, le=256, description="features of the first level")
    batch_norm: bool = Field(
        default=False,
        description="N2V: batch normalisation; off by default because its running statistics "
        "lag far behind in short trainings (measured: -7 dB on FMD after 80 steps)",
    )
    perc_pix: float = Field(default=0.198, gt=0, le=10, description="N2V: % of pixels masked")
    radius: int = Field(default=5, ge=1, le=20, description="N2V: neighbourhood of replacements")
    mask: list[list[int]] | list[list[list[int]]] | None = Field(
        default=None, description="structN2V mask (1 = hidden): YX rows, or ZYX planes for dims 3"
    )
    learn_noise: bool = Field(default=False, description="PG: learn noise parameters a, b")
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto",
        description="PG: 'bfloat16' computes the network in bfloat16 (weights, prior head and "
        "loss stay float32); 'auto' does so on a CPU with bfloat16 instructions and no GPU, "
        "where it gave 1.5x the steps per CPU-minute at no loss of quality; N2V is float32",
    )
    vst: bool = Field(
        default=False,
        description="N2V: train on Anscombe-stabilised data (exact unbiased inverse after)",
    )
    seed: int = Field(default=0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _method_defaults(cls, values: Any) -> Any:
        """PG blind-spot: depth 3 (less on patches under 64 pixels, see :func:`min_pg_patch`),
        16 features, cosine from 1e-3, half the patches drawn by structure, unless given.

        Measured on FMD with 2 CPU cores: 16 features beat 32 in the same minutes; the cosine
        schedule gives +0.4 dB over a constant rate after 8 minutes; a peak of 1e-3 rather
        than 4e-4 gave +0.2 and +1.6 dB after 4 minutes in two same-seed pairs (2e-3: as 1e-3).
        """
        if isinstance(values, dict) and values.get("method") == "pg-blindspot":
            patch = values.get("patch", cls.model_fields["patch"].default)
            values = {
                "depth": pg_depth_for(patch) if isinstance(patch, int) else 3,
                "features": 16,
                "lr_schedule": "cosine",
                "learning_rate": 1e-3,
                "structure_share": 0.5,
                **values,
            }
        return values

    @field_validator("mask")
    @classmethod
    def _mask_shape(cls, mask: list | None) -> list | None:
        if mask is None:
            return mask
        try:
            arr = np.array(mask)
        except ValueError:
            arr = np.array([], dtype=object)
        if arr.ndim not in (2, 3) or arr.size == 0 or arr.dtype == object:
            raise ValueError("the mask must be a non-empty rectangle (or box) of 0/1 values")
        if any(n % 2 == 0 for n in arr.shape):
            sides = "x".join(map(str, arr.shape))
            raise ValueError(f"the mask must have odd sides (a centre pixel), got {sides}")
        if not np.isin(arr, (0, 1)).all():
            raise ValueError("mask values must be 0 or 1")
        if arr[tuple(n // 2 for n in arr.shape)] != 1:
            raise ValueError("the mask's centre pixel must be 1 (it is the blind spot)")
        return mask

    @field_validator("val_region")
    @classmethod
    def _region_ranges(cls, region: list[list[int]] | None) -> list[list[int]] | None:
        if region is None:
            return region
        if len(region) not in (2, 3) or any(len(r) != 2 for r in region):
            raise ValueError("val_region is [[y0, y1], [x0, x1]] or [[z0, z1], [y0, y1], [x0, x1]]")
        if any(r[0] < 0 or r[1] <= r[0] for r in region):
            raise ValueError(f"val_region ranges need 0 <= start < stop, got {region}")
        return region

    @property
    def patch_shape(self) -> tuple[int, ...]:
        """Training patch shape: ``(p, p)`` or, for 3D, ``(pz, p, p)`` with a thinner Z."""
        if self.dims == 3:
            div = 2**self.depth
            pz = max(div, (min(self.patch // 2, 32) // div) * div)
            return (pz, self.patch, self.patch)
        return (self.patch, self.patch)

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        div = 2**self.depth
        if self.patch % div:
            raise ValueError(f"patch {self.patch} must be a multiple of 2**depth = {div}")
        if self.method == "structn2v" and self.mask is None:
            raise ValueError("structn2v needs a mask (draw one or let it be found from the noise)")
        if self.method != "structn2v" and self.mask is not None:
            raise ValueError(f"a mask is only used by structn2v, not {self.method}")
        if self.lr_schedule == "cosine" and self.method != "pg-blindspot":
            raise ValueError("the cosine schedule is for pg-blindspot; n2v reduces on plateau")
        if self.precision == "bfloat16" and self.method != "pg-blindspot":
            raise ValueError("bfloat16 is for pg-blindspot; n2v's network computes in float32")
        if self.structure_share and self.method != "pg-blindspot":
            raise ValueError("structure_share is for pg-blindspot; n2v draws its patches itself")
        if self.vst and self.method == "pg-blindspot":
            raise ValueError("pg-blindspot models the Poisson-Gaussian noise itself: no vst")
        if self.mask is not None and np.ndim(self.mask) != self.dims:
            raise ValueError(
                f"a {np.ndim(self.mask)}D mask for a {self.dims}D network: use a "
                f"{'ZYX' if self.dims == 3 else 'YX'} mask"
            )
        if self.method == "pg-blindspot" and self.patch < min_pg_patch(self.depth):
            raise ValueError(
                f"pg-blindspot at depth {self.depth} needs patches of at least "
                f"{min_pg_patch(self.depth)} pixels (a bottom level of 8 x 8): on smaller ones "
                "it learns their zero border and fails on whole images; raise the patch or "
                "lower the depth"
            )
        if self.method == "pg-blindspot" and self.dims == 3:
            raise ValueError("pg-blindspot is 2D: Z slices are trained as separate images")
        if self.mask is not None and any(
            m > p for m, p in zip(np.shape(self.mask), self.patch_shape)
        ):
            raise ValueError(
                f"the mask ({'x'.join(map(str, np.shape(self.mask)))}) is larger than the "
                f"patch ({'x'.join(map(str, self.patch_shape))})"
            )
        hidden = int(np.prod(self.patch_shape) * self.perc_pix / 100)
        if self.method != "pg-blindspot" and hidden < 1:
            raise ValueError(
                f"n2v hides {self.perc_pix} % of a patch's pixels: a "
                f"{'x'.join(map(str, self.patch_shape))} patch has none to hide; raise the "
                "patch or perc_pix"
            )
        return self

    def continued(self, trained: TrainConfig) -> TrainConfig:
        """This run's settings on an existing model: the architecture is the model's.

        Only the settings given for this run are kept (defaults are left out), so that when
        they were made for another method, the model's method brings its own defaults (PG's
        cosine rate and structure draws) instead of the other method's.
        """
        kept = trained.model_dump(include=set(KEPT_ON_RESUME))
        return TrainConfig(**{**self.model_dump(exclude_unset=True), **kept})


# what a continued run takes from the model folder: the architecture, and the validation split
# (region and seed), whose loss the folder's best weights were chosen by
KEPT_ON_RESUME = (
    "method",
    "dims",
    "depth",
    "features",
    "mask",
    "patch",
    "radius",
    "perc_pix",
    "learn_noise",
    "batch_norm",
    "vst",
    "val_region",
    "seed",
)


class PredictConfig(Config):
    """How a trained network denoises an image."""

    tile: int = Field(default=256, ge=32, le=4096, description="tile side (pixels) before overlap")
    overlap: int = Field(default=32, ge=0, le=512, description="context added on each side")
    weights: Literal["best", "last"] = "best"
    tta: bool = Field(default=True, description="PG: test-time adaptation on this image")
    tta_steps: int = Field(
        default=100, ge=1, le=10_000, description="PG: fine-tuning batches on this image"
    )
    ensemble: bool = Field(
        default=False,
        description="average the predictions of the 8 flips and 90° rotations of each tile "
        "(YX plane): 8x the time; on FMD +0.1 to +0.2 dB for PG, -0.3 dB for N2V",
    )


def train_config_from_widget(values: dict[str, Any]) -> TrainConfig:
    """Build a :class:`TrainConfig` from the dock's widget values (names as the fields).

    Widget-only keys (``mask_text``) are translated; ``mask`` is dropped for methods that do
    not use one so a mask left in the editor does not block N2V.
    """
    values = dict(values)
    text = values.pop("mask_text", None)
    if text is not None and values.get("mask") is None:
        values["mask"] = parse_mask(text) if text.strip() else None
    if values.get("method") != "structn2v":
        values["mask"] = None
    return TrainConfig(**values)


def parse_mask(text: str) -> list:
    """Mask text -> nested lists of 0/1: YX rows, or ZYX planes.

    Rows are lines (or ``,``/``;``-separated: ``010,010,010``), digits separated by spaces or
    not; planes of a 3D mask are separated by a blank line or ``/``
    (``000,010,000/010,111,010/000,010,000``).
    """
    import re

    blocks = [b for b in re.split(r"/|\n\s*\n", text) if b.strip()]
    planes = [_parse_rows(b) for b in blocks]
    return planes[0] if len(planes) == 1 else planes


def _parse_rows(text: str) -> list[list[int]]:
    rows = [r for r in text.replace(",", "\n").replace(";", "\n").splitlines() if r.strip()]
    out = []
    for r in rows:
        tokens = r.split() if len(r.split()) > 1 else list(r.strip())
        try:
            out.append([int(t) for t in tokens])
        except ValueError:
            raise ValueError(f"mask rows hold 0/1 digits, got {r!r}") from None
    return out


def parse_region(text: str) -> list[list[int]]:
    """``"Y0:Y1,X0:X1"`` (or ``"Z0:Z1,Y0:Y1,X0:X1"``) -> ``[[y0, y1], [x0, x1]]``."""
    out = []
    for part in text.split(","):
        start, sep, stop = part.strip().partition(":")
        try:
            out.append([int(start), int(stop)])
        except ValueError:
            raise ValueError(f"expected Y0:Y1,X0:X1 in pixels, got {text!r}") from None
        if not sep:
            raise ValueError(f"expected Y0:Y1,X0:X1 in pixels, got {text!r}")
    return out


def format_mask(mask: list) -> str:
    """Inverse of :func:`parse_mask` (3D: planes separated by a blank line)."""
    if np.ndim(mask) == 3:
        return "\n\n".join(format_mask(plane) for plane in mask)
    return "\n".join(" ".join(str(v) for v in row) for row in mask)


# measured on 2 AVX2 cores (AMD EPYC), FMD, epochs of 20 steps of 16 x 64 x 64 patches with
# their validation: n2v (depth 2) 14.5 s (0.72 s a step), PG (16 features, depth 3) 48 s
# (2.4 s a step). DESIGN.md's 0.14 s per n2v step is 5x faster than this: the estimate is rough
# either way.
_CPU_SECONDS_PER_PIXEL = 0.72 / (16 * 64 * 64)
_METHOD_COST = {"n2v": 1.0, "structn2v": 1.0, "pg-blindspot": 13.0}
_MEASURED_DEPTH = {"n2v": 2, "structn2v": 2, "pg-blindspot": 3}


def _depth_cost(method: str, depth: int) -> float:
    """Work of a U-Net of ``depth`` levels relative to the measured one.

    n2v doubles the features at each level, so every level costs about as much as the first
    (a quarter of the pixels, four times the weights): the work grows with ``depth + 1``. PG's
    branch keeps its width, so a level costs a quarter of the one above it.
    """
    if method == "pg-blindspot":
        return sum(4.0**-level for level in range(depth + 1)) / sum(
            4.0**-level for level in range(_MEASURED_DEPTH[method] + 1)
        )
    return (depth + 1) / (_MEASURED_DEPTH[method] + 1)


def estimate_epoch_seconds(config: TrainConfig, *, gpu: bool = False) -> float:
    """A rough time per epoch before training starts (from a CPU measurement on 2 cores).

    Scales with patch pixels x batch x steps, the network's width and depth; the PG blind-spot
    network runs its branch four times. On a GPU assume ~20x faster. The dock replaces this
    with the measured time after the first batches.
    """
    pixels = config.batch * config.patch**2 * (config.patch // 2 if config.dims == 3 else 1)
    width = (config.features / 32) ** 2
    cost = _METHOD_COST[config.method] * _depth_cost(config.method, config.depth)
    seconds = config.steps * pixels * _CPU_SECONDS_PER_PIXEL * width * cost
    return seconds / 20 if gpu else seconds
