"""Structured Noise2Void (Broaddus, Krull, Weigert, Schmidt and Myers, "Removing Structured
Noise with Self-Supervised Blind-Spot Networks", ISBI 2020): N2V hiding a mask of neighbours
with each pixel, for noise correlated along rows or columns."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from ..method import DeepMethod
from ..model import N2V_CONFIG
from .n2v import N2VConfig, export_support, predictor, receptive_radius, train


class StructN2VConfig(N2VConfig):
    """N2V plus the structN2V mask (1 = hidden with the centre pixel)."""

    DEFAULT: ClassVar[bool] = False
    NEUTRAL: ClassVar[dict[str, tuple[Any, ...]]] = {"mask": (None,)}
    KEPT_ON_RESUME: ClassVar[tuple[str, ...]] = (*N2VConfig.KEPT_ON_RESUME, "mask")

    method: Literal["structn2v"] = "structn2v"  # type: ignore[assignment]
    mask: list[list[int]] | list[list[list[int]]] | None = Field(
        default=None, description="structN2V mask (1 = hidden): YX rows, or ZYX planes for dims 3"
    )

    def blind_spot_mask(self) -> np.ndarray | None:
        return np.array(self.mask)

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

    @model_validator(mode="after")
    def _mask_fits(self) -> StructN2VConfig:
        if self.mask is None:
            raise ValueError("structn2v needs a mask (draw one or let it be found from the noise)")
        if np.ndim(self.mask) != self.dims:
            raise ValueError(
                f"a {np.ndim(self.mask)}D mask for a {self.dims}D network: use a "
                f"{'ZYX' if self.dims == 3 else 'YX'} mask"
            )
        if any(m > p for m, p in zip(np.shape(self.mask), self.patch_shape)):
            raise ValueError(
                f"the mask ({'x'.join(map(str, np.shape(self.mask)))}) is larger than the "
                f"patch ({'x'.join(map(str, self.patch_shape))})"
            )
        return self


METHOD = DeepMethod(
    name="structn2v",
    title="structn2v",
    summary="structured N2V: hides a mask of neighbours too; for noise correlated along lines",
    config=StructN2VConfig,
    train=train,
    predictor=predictor,
    receptive_radius=receptive_radius,
    export=export_support(
        "structN2V",
        "structN2V",
        "C. Broaddus, A. Krull, M. Weigert, U. Schmidt and G. Myers, Removing Structured Noise "
        "with Self-Supervised Blind-Spot Networks, ISBI 2020, pp. 159-163",
        "10.1109/ISBI45749.2020.9098336",
    ),
    side_files=(N2V_CONFIG,),
    dock=frozenset({"mask"}),
    order=1,
)
