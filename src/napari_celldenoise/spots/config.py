"""The settings of a spot run: one frozen, validated model shared by the dock and the CLI."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..config import Config
from .expr import ExpressionError, parse_expression
from .simulate import Camera

DEFAULT_THRESHOLD = "0.7*localnoise(Wave.F1)"
"""0.7 times the local robust noise of the first wavelet plane (``localnoise``: 1.4826 MAD in
16-px blocks, interpolated; SExtractor's noise map). Against the noise and not the image's
spread, it finds dim spots among dense ones that ThunderSTORM's ``std(Wave.F1)`` misses (the
spots inflate that standard deviation); local, it rises where a bright background makes the
noise larger, so textured real images do not flood it with noise maxima. Maxima of noise
that pass are removed by the fit's significance and the rules. One rule for every data set:
on the benchmark it meets the isolated, dense and tubulins1 goals (docs/benchmarks.md)."""

THUNDERSTORM_THRESHOLD = "std(Wave.F1)"
"""ThunderSTORM's default: the standard deviation of the first wavelet plane. It includes the
image's structure and the spots themselves, so it is conservative: crowded frames lose their
dim spots (benchmark: dense recall 0.83)."""

THRESHOLDS = {
    "wavelet": DEFAULT_THRESHOLD,
    "dog": "3*noise(F)",
    "log": "3*noise(F)",
    "none": "3*noise(F)",
}
"""A sensible default threshold per filter."""


class SpotsConfig(Config):
    """Filter, detection, fit and camera settings of :func:`~.pipeline.find_spots`."""

    filter: Literal["wavelet", "dog", "log", "none"] = "wavelet"
    wavelet_order: int = Field(3, ge=1, le=5, description="B-spline order")
    wavelet_scale: float = Field(2.0, gt=0, le=8, description="B-spline scale")
    wavelet_level: int = Field(2, ge=1, le=4, description="wavelet plane used for detection")
    threshold: str = Field(
        DEFAULT_THRESHOLD, description="number or expression over the filter images"
    )
    min_distance: float = Field(1.0, ge=1.0, le=50.0, description="px between two maxima")
    border: int | None = Field(None, ge=0, description="px excluded at the edges (default box//2)")
    fit: Literal["mle", "lsq", "none"] = "mle"
    elliptical: bool = False
    sigma: float = Field(1.3, gt=0.2, le=20.0, description="PSF sigma in px (start of the fit)")
    box: int = Field(7, ge=3, le=31, description="fit box side in px (odd)")
    min_significance: float = Field(
        4.0, ge=0, description="drop fits whose sqrt(2 log-likelihood ratio) vs flat is lower"
    )
    subtract_neighbours: bool = Field(
        True, description="refit spots with neighbours in their box, the neighbours subtracted"
    )
    classify: bool = Field(True, description="set 'class' with the default rules")
    duplicate_distance: float = Field(0.5, ge=0, description="px: closer fits are one spot")
    fitter: Literal["cpu", "gpu", "auto"] = Field(
        "cpu",
        description="cpu: numba on the cores; gpu: batched TensorFlow fitter (outside the "
        "viewer); auto: the GPU when TensorFlow has one, else the CPU with a message",
    )
    max_iter: int = Field(100, ge=1, le=10000)
    tol: float = Field(1e-3, gt=0, le=1.0, description="stop when every step is smaller")
    offset: float = Field(100.0, ge=0, description="camera offset (ADU)")
    sensitivity: float = Field(0.5, gt=0, description="photoelectrons per ADU")
    read_noise: float = Field(1.6, ge=0, description="read noise (e- rms)")
    em_gain: float = Field(1.0, ge=1.0, description="EM gain (1 = none)")
    qe: float = Field(1.0, gt=0, le=1.0, description="quantum efficiency")
    pixel_size: float = Field(100.0, gt=0, description="nm per pixel")
    merge_z: bool = Field(
        True,
        description="volumes (a Z axis): one row per emitter, its 2D fits in consecutive "
        "slices merged (see spots.zmerge); False: 2D spots per slice",
    )
    merge_distance: float = Field(
        1.0, gt=0, le=20.0, description="px between fits of consecutive slices of one emitter"
    )

    @field_validator("threshold")
    @classmethod
    def _parsable(cls, value: str) -> str:
        try:
            parse_expression(value)
        except ExpressionError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("box")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"box must be odd, got {value}")
        return value

    @model_validator(mode="after")
    def _threshold_matches_filter(self) -> SpotsConfig:
        from .expr import referenced_names

        names = referenced_names(self.threshold)
        prefix = {"wavelet": "Wave.", "dog": "DoG.", "log": "LoG."}.get(self.filter, "")
        for name in names:
            if "." in name and not name.startswith(prefix):
                raise ValueError(
                    f"threshold {self.threshold!r} uses {name} but the filter is {self.filter}"
                )
        return self

    @property
    def camera(self) -> Camera:
        return Camera(
            offset=self.offset,
            sensitivity=self.sensitivity,
            read_noise=self.read_noise,
            em_gain=self.em_gain,
            qe=self.qe,
        )

    @property
    def border_px(self) -> int:
        return self.box // 2 if self.border is None else max(self.border, self.box // 2)

    def filter_options(self) -> dict[str, float]:
        if self.filter == "wavelet":
            return {
                "order": self.wavelet_order,
                "scale": self.wavelet_scale,
                "level": self.wavelet_level,
            }
        return {}

    def with_camera(self, camera: Camera) -> SpotsConfig:
        return self.model_copy(
            update={
                "offset": camera.offset,
                "sensitivity": camera.sensitivity,
                "read_noise": camera.read_noise,
                "em_gain": camera.em_gain,
                "qe": camera.qe,
            }
        )
