"""Configs of the self-supervised networks: one model drives the dock, the CLI and batch runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import ConfigDict, Field, field_validator, model_validator

from ..config import Config


class TrainConfig(Config):
    """How a denoising network is trained on the user's own noisy data: the settings every
    method shares. Each method's own settings live in its subclass (``deep/methods/``).

    The subclasses form a discriminated union on ``method``: ``TrainConfig(method=M, ...)``,
    ``TrainConfig.model_validate(mapping)`` and a field annotated ``TrainConfig`` all build the
    registered subclass of ``M`` (n2v by default). A setting of another method is refused with
    a line that names it, unless it holds that setting's neutral value (``mask: null`` for
    n2v), which is dropped.

    ``epochs`` is the number of epochs of this run; with ``resume`` they are *added* to the
    epochs already trained.

    Version 1 (before the per-method configs) flattened every method's settings into one model:
    such files (a model folder's ``celldenoise.yaml``) load as before, the other methods'
    settings, which training ignored, dropped.
    """

    # a field annotated TrainConfig (ModelInfo.train, a job spec's config) dumps every field
    # of the method's subclass, not only the shared ones
    model_config = ConfigDict(polymorphic_serialization=True)

    SCHEMA_VERSION: ClassVar[int] = 2
    # per-method cost of an epoch relative to the measured n2v one (see estimate_epoch_seconds)
    EPOCH_COST: ClassVar[float] = 1.0
    MEASURED_DEPTH: ClassVar[int] = 2
    DEFAULT: ClassVar[bool] = False
    NEUTRAL: ClassVar[dict[str, tuple[Any, ...]]] = {}
    """Values of this method's own settings that mean "not used": dropped, not refused, when
    given to another method (what the one flat config of version 1 stored there)."""

    version: int = Field(default=2, ge=1, description="schema version of this config")
    method: str = Field(default="", description="the denoising method (its registry name)")
    epochs: int = Field(default=20, ge=1, le=10_000, description="epochs of this run")
    steps: int = Field(default=100, ge=1, le=100_000, description="batches per epoch")
    patch: int = Field(default=64, ge=16, le=512, description="training patch side (pixels)")
    batch: int = Field(default=16, ge=1, le=1024, description="patches per batch")
    learning_rate: float = Field(default=4e-4, gt=0, le=1.0)
    val_fraction: float = Field(default=0.1, gt=0, lt=0.5, description="validation share")
    val_region: list[list[int]] | None = Field(
        default=None,
        description="validation patches from this region instead of a random share: "
        "[[y0, y1], [x0, x1]] (or [[z0, z1], [y0, y1], [x0, x1]]) in pixels, stop exclusive; "
        "training patches come from outside it",
    )
    augment: bool = Field(default=True, description="random flips and 90° rotations")
    dims: Literal[2, 3] = Field(default=2, description="2D network (Z/T become samples) or 3D")
    depth: int = Field(default=2, ge=1, le=5, description="U-Net levels (poolings)")
    features: int = Field(default=32, ge=4, le=256, description="features of the first level")
    seed: int = Field(default=0, ge=0)

    # ------------------------------------------------------------ the union
    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        name = cls.model_fields["method"].default
        if name:  # a concrete method (its ``method`` is a Literal with that default)
            _CONFIGS[name] = cls

    def __new__(cls, *args: Any, **data: Any) -> TrainConfig:
        if cls is TrainConfig and not args:
            target = _CONFIGS.get(data.get("method") or default_method())
            if target is not None:
                return target(**data)
        return super().__new__(cls)

    @model_validator(mode="wrap")
    @classmethod
    def _dispatch(cls, data: Any, handler: Any) -> Any:
        if cls is TrainConfig and isinstance(data, dict):
            target = _CONFIGS.get(data.get("method") or default_method())
            if target is not None:
                return target.model_validate(data)
        return handler(data)

    @model_validator(mode="before")
    @classmethod
    def _foreign_settings(cls, values: Any) -> Any:
        """Drop other methods' settings of a version-1 file or at their neutral value; refuse
        the others with a line that names the method they belong to."""
        if not isinstance(values, dict) or cls is TrainConfig:
            return values
        legacy = int(values.get("version", cls.SCHEMA_VERSION)) < cls.SCHEMA_VERSION
        own = cls.model_fields
        kept = {}
        for key, value in values.items():
            owners = [c for c in _CONFIGS.values() if key in c.model_fields and key not in own]
            if not owners:
                kept[key] = value
                continue
            neutral = any(value in c.NEUTRAL.get(key, ()) for c in owners)
            if legacy or neutral:
                continue
            names = ", ".join(dict.fromkeys(c.model_fields["method"].default for c in owners))
            method = own["method"].default
            raise ValueError(f"{key} is a setting of {names}, not of {method}")
        if legacy:
            kept["version"] = cls.SCHEMA_VERSION
        return kept

    @field_validator("method")
    @classmethod
    def _known(cls, method: str) -> str:
        if method not in _CONFIGS:
            raise ValueError(f"unknown method {method!r}: one of {', '.join(_CONFIGS)}")
        return method

    # ------------------------------------------------------------ checks
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
    def _patch_fits_depth(self) -> TrainConfig:
        div = 2**self.depth
        if self.patch % div:
            raise ValueError(f"patch {self.patch} must be a multiple of 2**depth = {div}")
        return self

    def depth_cost(self) -> float:
        """Work of this U-Net relative to the measured one of ``MEASURED_DEPTH`` levels.

        A U-Net that doubles its features at each level costs about as much per level as the
        first (a quarter of the pixels, four times the weights): the work grows with
        ``depth + 1``. Methods whose levels keep their width override this.
        """
        return (self.depth + 1) / (self.MEASURED_DEPTH + 1)


_CONFIGS: dict[str, type[TrainConfig]] = {}


def default_method() -> str:
    """The method a config gets when none is named (the one whose config says DEFAULT)."""
    return next((name for name, c in _CONFIGS.items() if c.DEFAULT), next(iter(_CONFIGS), ""))


def config_class(method: str) -> type[TrainConfig]:
    """The registered config class of ``method`` (ValueError naming the known ones)."""
    try:
        return _CONFIGS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}: one of {', '.join(_CONFIGS)}") from None


# what a continued run takes from the model folder: the architecture, and the validation split
# (region and seed), whose loss the folder's best weights were chosen by; each method adds its
# own architecture settings with ``KEPT_ON_RESUME`` on its config
KEPT_ON_RESUME = ("method", "dims", "depth", "features", "patch", "val_region", "seed")


def resume_config(saved: TrainConfig, given: TrainConfig | Mapping[str, Any]) -> TrainConfig:
    """This run's settings on an existing model: the one place a continued run is merged.

    The architecture and validation split (:data:`KEPT_ON_RESUME` and the method's own
    ``KEPT_ON_RESUME``, e.g. the structN2V mask) are the model's; the settings this run gives
    (a mapping, or the fields set on a config) win over the rest of the model's last run.
    Settings of another method (a run made for n2v on a PG folder) are dropped: the model's
    method brings its own.
    """
    cls = config_class(saved.method)
    if isinstance(given, TrainConfig):
        given = given.model_dump(exclude_unset=True)
    kept = set(KEPT_ON_RESUME) | set(getattr(cls, "KEPT_ON_RESUME", ()))
    base = saved.model_dump(exclude={"version"})
    run = {k: v for k, v in given.items() if k in cls.model_fields and k not in kept}
    return cls(**{**base, **run, "method": saved.method})


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
    if "mask" not in config_class(values.get("method") or default_method()).model_fields:
        values.pop("mask", None)
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
# either way. Each method's config holds its cost relative to n2v (EPOCH_COST, depth_cost).
_CPU_SECONDS_PER_PIXEL = 0.72 / (16 * 64 * 64)


def estimate_epoch_seconds(config: TrainConfig, *, gpu: bool = False) -> float:
    """A rough time per epoch before training starts (from a CPU measurement on 2 cores).

    Scales with patch pixels x batch x steps, the network's width and depth, and the method's
    cost (the PG blind-spot network runs its branch four times). On a GPU assume ~20x
    faster. The dock replaces this with the measured time after the first batches.
    """
    pixels = config.batch * config.patch**2 * (config.patch // 2 if config.dims == 3 else 1)
    width = (config.features / 32) ** 2
    cost = config.EPOCH_COST * config.depth_cost()
    seconds = config.steps * pixels * _CPU_SECONDS_PER_PIXEL * width * cost
    return seconds / 20 if gpu else seconds
