"""Job specs: a complete, versioned description of every job, to save, send and replay.

A spec says what to read (:class:`InputSpec`: a path or URL, axes, channel), how to process it
(the job's config: :class:`ClassicalConfig`, :class:`~..deep.config.TrainConfig`,
:class:`~..deep.config.PredictConfig`, :class:`~..spots.config.SpotsConfig`) and where the result
goes. :data:`JobSpec` is the union of all kinds, told apart by their ``kind`` field;
:func:`~.run_spec.run_spec` executes any of them, and every output file carries the spec that
made it (:mod:`.provenance`). The same spec is what the CLI builds from its options, what a dock
records, what a remote worker receives as its ``job.json`` and what a batch recipe lists.

Specs are frozen pydantic models with the ``version`` check of :class:`~..config.Config`:
a spec written by a newer, incompatible version is refused with a clear message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..atomic import atomic_write
from ..classical.params import ParamError, Value
from ..classical.registry import get_method
from ..config import Config, ConfigError, ReaderConfig, format_validation_error, validate_yaml
from ..deep.config import PredictConfig, TrainConfig
from ..io import ImageData, read_image
from ..spots.config import SpotsConfig


class SpecError(ValueError):
    """A spec cannot run on its input (the message is one line for the user).

    ``option`` is set when the message starts with the name of the setting at fault
    (``classify: ...``, ``channel 3: ...``), which the CLI shows as its option (``--classify:
    ...``).
    """

    def __init__(self, message: str, *, option: str | None = None):
        super().__init__(message)
        self.option = option

    def for_cli(self) -> str:
        """The message with the setting written as a command-line option."""
        return f"--{self}" if self.option else str(self)


class InputSpec(Config):
    """The image a job reads: a local path or a ``gs://`` URL, its axes and channel."""

    path: str = Field(min_length=1, description="local path or URL of the image")
    axes: str | None = Field(
        default=None, description="override the axes read from the file (letters from TZCYXS)"
    )
    channel: int | None = Field(
        default=None, ge=0, description="the channel to use of a multichannel image"
    )

    @field_validator("axes")
    @classmethod
    def _valid_axes(cls, value: str | None) -> str | None:
        return ReaderConfig(axes=value).axes

    def reader(self) -> ReaderConfig:
        """The reader settings for this input."""
        return ReaderConfig(axes=self.axes) if self.axes else ReaderConfig()

    def read(self) -> ImageData:
        """Open the image (with ``axes``) and take ``channel`` when one is set.

        Raises
        ------
        ImageReadError
            For a missing or broken file; :class:`SpecError` for a channel it does not have.
        """
        image = read_image(self.path, config=self.reader())
        if self.channel is None or "C" not in image.axes:
            return image
        i = image.axes.index("C")
        n = image.shape[i]
        if self.channel >= n:
            raise SpecError(f"channel {self.channel}: the image has {n} channels", option="channel")
        data = image.data[(slice(None),) * i + (self.channel,)]
        return image.with_data(data, axes=image.axes.replace("C", ""), lazy=image.lazy)


class ClassicalConfig(Config):
    """A classical filter run: method, its parameters, 3D blocks and the VST.

    ``params`` holds only the values chosen (checked against the method's limits); the others
    take their defaults, which for intensity parameters are multiples of the noise sigma of
    the image the spec runs on.
    """

    method: str = Field(description="a method of napari_celldenoise.classical.registry")
    params: dict[str, Value] = Field(default_factory=dict)
    three_d: bool = Field(default=False, description="filter ZYX (or TYX) blocks in 3D")
    vst: bool = Field(default=False, description="filter inside a generalized Anscombe transform")
    noise_a: float | None = Field(default=None, ge=0, description="VST Poisson gain (or estimated)")
    noise_b: float | None = Field(default=None, description="VST Gaussian variance (or estimated)")
    auto_tune: bool = Field(default=False, description="choose the main parameter (Noise2Self)")
    keep_dtype: bool = Field(default=False, description="write integer input as its type")

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        try:
            return get_method(value).name
        except ParamError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("params")
    @classmethod
    def _checked_params(cls, value: dict[str, Value], info: ValidationInfo) -> dict[str, Value]:
        if "method" not in info.data:  # the method was refused: its error says it all
            return value
        try:
            checked = get_method(info.data["method"]).resolve(value)
        except ParamError as exc:
            raise ValueError(str(exc)) from None
        return {k: checked[k] for k in value}  # the method's types (text becomes numbers)

    @model_validator(mode="after")
    def _consistent(self) -> ClassicalConfig:
        method = get_method(self.method)
        if (self.noise_a is None) != (self.noise_b is None):
            raise ValueError("give both noise_a and noise_b, or neither")
        if self.noise_a is not None and not self.vst:
            raise ValueError("noise_a and noise_b are the VST's: set vst")
        if self.auto_tune and method.main is None:
            raise ValueError(f"auto-tune is not available for {method.name}")
        if self.auto_tune and method.main in self.params:
            raise ValueError(f"auto-tune chooses {method.main}: do not also set it")
        return self


class NoiseConfig(Config):
    """Noise to add to an image (the Noise dock's "Add noise", ``celldenoise add-noise``).

    gaussian: ``+ N(0, sigma**2)``; poisson-gaussian: ``a * Poisson(x / a) + N(0, b)``;
    salt-pepper: a fraction ``amount`` of the pixels set to ``high`` or ``low`` (defaults: the
    integer dtype's range, or the data's min and max). With ``seed`` the noise is reproducible.
    """

    noise: Literal["gaussian", "poisson-gaussian", "salt-pepper"]
    sigma: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    a: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    b: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    amount: float = Field(default=0.05, ge=0, le=1)
    salt_fraction: float = Field(default=0.5, ge=0, le=1)
    low: float | None = Field(default=None, allow_inf_nan=False)
    high: float | None = Field(default=None, allow_inf_nan=False)
    seed: int | None = None
    keep_dtype: bool = Field(default=False, description="keep an integer input's dtype")

    @model_validator(mode="after")
    def _needed(self) -> NoiseConfig:
        if self.noise == "gaussian" and self.sigma is None:
            raise ValueError("gaussian noise needs sigma > 0")
        if self.noise == "poisson-gaussian" and self.a is None:
            raise ValueError("poisson-gaussian noise needs a > 0")
        return self

    def label(self) -> str:
        """The settings in a few characters, for a layer name: ``sigma=5``, ``a=2, b=1``."""
        if self.noise == "gaussian":
            return f"sigma={self.sigma:g}"
        if self.noise == "poisson-gaussian":
            return f"a={self.a:g}, b={self.b:g}"
        return f"{100 * self.amount:g}%"

    def apply(self, data: Any) -> Any:
        """``data`` with this noise, as the output dtype (float32 for integers unless kept).

        Raises ``ValueError`` for data the noise cannot take (negative intensities for
        poisson-gaussian).
        """
        import numpy as np

        from ..classical.apply import cast_output, output_dtype
        from ..classical.noise import add_gaussian, add_poisson_gaussian, add_salt_pepper

        data = np.asarray(data)
        rng = np.random.default_rng(self.seed)
        if self.noise == "gaussian":
            noisy = add_gaussian(data, self.sigma, rng=rng)
        elif self.noise == "poisson-gaussian":
            if data.size and float(np.min(data)) < 0:
                raise ValueError("poisson-gaussian noise needs non-negative intensities")
            noisy = add_poisson_gaussian(data, self.a, self.b, rng=rng)
        else:
            noisy = add_salt_pepper(
                data,
                self.amount,
                salt_fraction=self.salt_fraction,
                low=self.low,
                high=self.high,
                rng=rng,
            )
        return cast_output(np.asarray(noisy), output_dtype(data.dtype, self.keep_dtype))


class _Spec(Config):
    """Fields every job spec has."""

    def to_json(self) -> str:
        """The spec as one JSON object (``kind`` first)."""
        return self.model_dump_json()

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-able data."""
        return self.model_dump(mode="json")


class ReadSpec(_Spec):
    """Open an image (axes, channel) and, with ``output``, write it as OME-TIFF."""

    kind: Literal["read"] = "read"
    input: InputSpec
    output: str | None = Field(default=None, description="OME-TIFF to write (None: open only)")
    overwrite: bool = False


class FilterSpec(_Spec):
    """Denoise an image with a classical filter into an OME-TIFF."""

    kind: Literal["filter"] = "filter"
    input: InputSpec
    config: ClassicalConfig
    output: str = Field(min_length=1, description="OME-TIFF to write")
    overwrite: bool = False


class AddNoiseSpec(_Spec):
    """Add noise to an image into an OME-TIFF (same shape, axes and scale)."""

    kind: Literal["add-noise"] = "add-noise"
    input: InputSpec
    config: NoiseConfig
    output: str = Field(min_length=1, description="OME-TIFF to write")
    overwrite: bool = False


class TrainSpec(_Spec):
    """Train a self-supervised network on a noisy image into a model folder.

    With ``resume`` the folder's last weights are trained ``config.epochs`` more epochs; the
    architecture stays the folder's.
    """

    kind: Literal["train"] = "train"
    input: InputSpec
    config: TrainConfig
    output: str = Field(min_length=1, description="model folder (new or empty unless resume)")
    resume: bool = False
    extra: dict[str, InputSpec] = Field(
        default_factory=dict,
        description="images the method trains on besides the input, by name (a CycleGAN's "
        "clean reference)",
    )


class PredictSpec(_Spec):
    """Denoise an image with a trained model folder into an OME-TIFF."""

    kind: Literal["predict"] = "predict"
    model: str = Field(min_length=1, description="model folder (path or URL)")
    input: InputSpec
    config: PredictConfig = Field(default_factory=PredictConfig)
    output: str = Field(min_length=1, description="OME-TIFF to write")
    overwrite: bool = False


class CentroidTraining(Config):
    """Train a centroid model after fitting (``celldenoise spots --train-centroid``)."""

    kind: Literal["ridge", "mlp"]
    source: Literal["fit", "simulated"] = "fit"
    epochs: int = Field(default=20, ge=1, description="network epochs")
    output: str = Field(min_length=1, description="model file (.npz) to write")


class SmlmSteps(Config):
    """After the fit: drift correction and merging of blinks (``celldenoise spots --drift
    RCC --merge 50:1``). The drift is estimated from the good localizations and subtracted
    from all (the raw positions kept); blinks merge within ``merge_radius_nm`` over gaps of
    ``merge_gap`` frames, good with good and bad with bad."""

    drift: Literal["none", "rcc", "fiducials"] = "none"
    merge_radius_nm: float | None = Field(default=None, gt=0, description="merge radius (nm)")
    merge_gap: int = Field(default=1, ge=0, description="frames a molecule may be missing")


class SpotsSpec(_Spec):
    """Detect, fit and classify spots into a spot table (CSV).

    ``pixel_size`` (nm) is taken from the image's scale when None (100 without one); it
    replaces ``config.pixel_size``. ``classify`` is a classifier or rules file applied after
    the fit; ``centroid`` a centroid model that localises instead of fitting; ``smlm`` the
    drift correction and merging of blinks applied to the table before it is written.
    """

    kind: Literal["spots"] = "spots"
    input: InputSpec
    config: SpotsConfig = Field(default_factory=SpotsConfig)
    pixel_size: float | None = Field(default=None, gt=0, description="nm per pixel")
    classify: str | None = Field(default=None, description="classifier (.joblib) or rules (.yaml)")
    centroid: str | None = Field(default=None, description="centroid model (.npz) to localise")
    train_centroid: CentroidTraining | None = None
    smlm: SmlmSteps | None = None
    output: str = Field(min_length=1, description="CSV to write")
    overwrite: bool = False

    @model_validator(mode="after")
    def _centroid_options(self) -> SpotsSpec:
        t = self.train_centroid
        if t is not None and self.centroid and t.source == "fit":
            raise ValueError("training a centroid model from fits needs a fit: drop centroid")
        return self


class ExportSpec(_Spec):
    """Package a model folder as a BioImage Model Zoo zip (checked before it is written)."""

    kind: Literal["export"] = "export"
    model: str = Field(min_length=1, description="model folder")
    test_image: InputSpec | None = Field(
        default=None, description="image for the test input (default: the saved patch)"
    )
    name: str | None = None
    authors: tuple[str, ...] = ()
    check: bool = True
    output: str = Field(min_length=1, description="zip to write")
    overwrite: bool = False


AnySpec = ReadSpec | FilterSpec | AddNoiseSpec | TrainSpec | PredictSpec | SpotsSpec | ExportSpec
"""The type of any spec (for annotations)."""

JobSpec = Annotated[AnySpec, Field(discriminator="kind")]
"""Any job spec, told apart by ``kind`` (a pydantic field type: validates to the right class)."""

KINDS: tuple[str, ...] = ("read", "filter", "add-noise", "train", "predict", "spots", "export")

_ADAPTER: TypeAdapter = TypeAdapter(JobSpec)


def parse_spec(data: Mapping[str, Any] | str) -> AnySpec:
    """Validate a spec from a mapping or a JSON string.

    Raises
    ------
    ConfigError
        One line naming what is wrong (an unknown kind, a bad field, a newer version).
    """
    try:
        raw = json.loads(data) if isinstance(data, str) else dict(data)
    except ValueError as exc:
        raise ConfigError(f"not a JSON spec ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"a spec is a mapping, got {type(raw).__name__}")
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise ConfigError(_spec_error(exc, raw)) from None


def _spec_error(exc: ValidationError, raw: Mapping[str, Any]) -> str:
    kind = raw.get("kind")
    if kind is None:
        return f"kind: missing (one of {', '.join(KINDS)})"
    if kind not in KINDS:
        return f"kind: {kind!r} is not one of {', '.join(KINDS)}"
    # pydantic puts the kind first in every location: drop it, the user wrote the kind
    parts = []
    for err in exc.errors():
        loc = err["loc"][1:] if err["loc"] and err["loc"][0] == kind else err["loc"]
        message = err["msg"].removeprefix("Value error, ")
        where = ".".join(str(p) for p in loc)
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) or format_validation_error(exc)


def save_spec(spec: Config, path: str | os.PathLike) -> Path:
    """Write ``spec`` atomically as YAML (``.yaml``/``.yml``) or JSON (any other suffix)."""
    data = spec.model_dump(mode="json")
    if str(path).lower().endswith((".yaml", ".yml")):
        text = yaml.safe_dump(data, sort_keys=False)
    else:
        text = json.dumps(data, indent=1) + "\n"
    return atomic_write(path, text.encode("utf-8"), overwrite=True)


def load_spec(path: str | os.PathLike) -> AnySpec:
    """Read a spec saved by :func:`save_spec` (YAML or JSON: JSON is YAML).

    Raises
    ------
    ConfigError
        Naming the file and the problem in one line.
    """

    def validate(raw: dict) -> Any:
        try:
            return parse_spec(raw)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    return validate_yaml(path, validate)


# -- specs from the values a dock has -------------------------------------------------------


def classical_spec(
    path: str,
    output: str,
    method: str,
    params: Mapping[str, Any],
    *,
    axes: str | None = None,
    three_d: bool = False,
    vst: bool = False,
    noise: tuple[float, float] | None = None,
    keep_dtype: bool = False,
    overwrite: bool = False,
) -> FilterSpec:
    """The spec of the Classical dock's "Apply to stack" on the layer read from ``path``.

    Parameters
    ----------
    path, axes
        The file the layer came from and the layer's axes.
    method, params
        The dock's method and slider values.
    three_d, vst, noise
        Its 3D and VST check boxes; ``noise`` the Poisson-Gaussian ``(a, b)`` it estimated
        (the spec then uses exactly those, so a replay does not estimate them again).
    """
    a, b = noise if vst and noise is not None else (None, None)
    return FilterSpec(
        input=InputSpec(path=path, axes=axes),
        config=ClassicalConfig(
            method=method,
            params=dict(params),
            three_d=three_d,
            vst=vst,
            noise_a=a,
            noise_b=b,
            keep_dtype=keep_dtype,
        ),
        output=output,
        overwrite=overwrite,
    )


def add_noise_spec(
    path: str,
    output: str,
    config: NoiseConfig,
    *,
    axes: str | None = None,
    channel: int | None = None,
) -> AddNoiseSpec:
    """The spec of the Noise dock's "Add noise" on the layer read from ``path``."""
    return AddNoiseSpec(
        input=InputSpec(path=path, axes=axes, channel=channel), config=config, output=output
    )


def train_spec(
    path: str,
    output: str,
    config: TrainConfig,
    *,
    axes: str | None = None,
    channel: int | None = None,
    resume: bool = False,
    extra: dict[str, str] | None = None,
) -> TrainSpec:
    """The spec of the Deep dock's Train on the layer read from ``path`` into ``output``;
    ``extra``: the paths of the method's other images, by name."""
    return TrainSpec(
        input=InputSpec(path=path, axes=axes, channel=channel),
        config=config,
        output=output,
        resume=resume,
        extra={name: InputSpec(path=p) for name, p in (extra or {}).items()},
    )


def predict_spec(
    model: str,
    path: str,
    output: str,
    config: PredictConfig | None = None,
    *,
    axes: str | None = None,
    channel: int | None = None,
    overwrite: bool = False,
) -> PredictSpec:
    """The spec of the Deep dock's Denoise of the layer read from ``path`` with ``model``."""
    return PredictSpec(
        model=model,
        input=InputSpec(path=path, axes=axes, channel=channel),
        config=config or PredictConfig(),
        output=output,
        overwrite=overwrite,
    )


def spots_spec(
    path: str,
    output: str,
    config: SpotsConfig,
    *,
    axes: str | None = None,
    channel: int | None = None,
    classify: str | None = None,
    overwrite: bool = False,
) -> SpotsSpec:
    """The spec of the Spots dock's run on the layer read from ``path``.

    The dock's pixel size is ``config.pixel_size`` and is kept as it is.
    """
    return SpotsSpec(
        input=InputSpec(path=path, axes=axes, channel=channel),
        config=config,
        pixel_size=config.pixel_size,
        classify=classify,
        output=output,
        overwrite=overwrite,
    )


__all__ = [
    "KINDS",
    "AddNoiseSpec",
    "AnySpec",
    "CentroidTraining",
    "ClassicalConfig",
    "ExportSpec",
    "FilterSpec",
    "InputSpec",
    "JobSpec",
    "NoiseConfig",
    "PredictSpec",
    "ReadSpec",
    "SmlmSteps",
    "SpecError",
    "SpotsSpec",
    "TrainSpec",
    "add_noise_spec",
    "classical_spec",
    "load_spec",
    "parse_spec",
    "predict_spec",
    "save_spec",
    "spots_spec",
    "train_spec",
]
