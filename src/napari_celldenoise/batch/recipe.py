"""Recipes: the ordered job specs that turned one raw image into its results, to replay on others.

A recipe is what a user ran in the docks, in order: read -> a classical filter or a trained
model -> spots (detect, fit, classify). It is built from the provenance an output carries
(:func:`recipe_from_output` follows the chain of inputs that made an OME-TIFF or a spot CSV) or
from specs directly, saved as versioned YAML and run on every file of a batch
(:mod:`.run`). Model folders and classifiers are referenced by their path or URL, not copied.

Replaying a recipe on a file (:meth:`Recipe.plan`) reads that file with the first step's axes
and channel, feeds each step the previous step's output and writes every step's output under
the batch's output folder. The :attr:`Recipe.hash` covers the processing only (kinds, settings,
models), not the paths of the example the recipe was made from, so that a recipe rebuilt from
another output of the same processing has the same hash.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator

from ..atomic import atomic_write
from ..config import Config, ConfigError, format_validation_error, validate_yaml
from ..jobs.specs import AnySpec, JobSpec

PER_FILE_KINDS = ("read", "filter", "predict", "spots")
"""Kinds a recipe replays on each file. Training and model export make one model, not a result
per file: a recipe refers to the model they made instead."""

IMAGE_KINDS = ("read", "filter", "predict")
"""Kinds whose output is an image that the next step can read."""

_SUFFIX = {"read": ".ome.tif", "filter": ".filtered.ome.tif", "predict": ".denoised.ome.tif"}
_PATH_FIELDS = ("output", "overwrite")
_IMAGE_SUFFIXES = (".ome.tiff", ".ome.tif", ".tiff", ".tif", ".btf", ".png")


class RecipeError(ConfigError):
    """A recipe cannot be made or run (one line for the user)."""


class Recipe(Config):
    """An ordered list of job specs replayed on every file of a batch.

    Attributes
    ----------
    steps
        The specs in the order they run; the first reads the batch's file, each next one the
        previous one's output. Their ``input.path`` and ``output`` are those of the example the
        recipe was made from (a record); a batch replaces them.
    source
        The output file the recipe was built from, if any.
    """

    steps: tuple[JobSpec, ...] = Field(min_length=1)
    source: str | None = Field(default=None, description="the output it was built from")

    @field_validator("steps")
    @classmethod
    def _chain(cls, steps: tuple[AnySpec, ...]) -> tuple[AnySpec, ...]:
        for i, step in enumerate(steps):
            if step.kind not in PER_FILE_KINDS:
                raise ValueError(
                    f"step {i + 1} is a {step.kind} job, which makes one model, not a result per "
                    f"file; a recipe holds {', '.join(PER_FILE_KINDS)} steps"
                )
            if i < len(steps) - 1 and step.kind not in IMAGE_KINDS:
                raise ValueError(
                    f"step {i + 1} ({step.kind}) writes a table, so it can only be the last step"
                )
        return steps

    @property
    def hash(self) -> str:
        """A short SHA-256 of the processing (kinds, settings, models; no example paths)."""
        blob = json.dumps([processing(s) for s in self.steps], sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

    @property
    def uses_tensorflow(self) -> bool:
        """Whether a step runs a trained network (then it needs a ``tf`` worker resource)."""
        return any(s.kind == "predict" for s in self.steps)

    def describe(self) -> list[str]:
        """One line per step: its kind and its settings (what ``recipe show`` prints)."""
        return [f"{i + 1}. {describe_step(s)}" for i, s in enumerate(self.steps)]

    def plan(self, path: str, out_base: str) -> list[AnySpec]:
        """The specs that run this recipe on the image ``path``.

        ``out_base`` is the output path without its suffix (``OUTDIR/sub/name``): step ``k``
        writes ``out_base`` + its kind's suffix (``.filtered.ome.tif``, ``.spots.csv``...).
        A read step without an output (open only) is kept out: the next step reads the file
        with its settings.
        """
        specs: list[AnySpec] = []
        current = path
        reader = None
        for step in self.steps:
            if step.kind == "read" and step.output is None:
                reader = step.input
                continue
            inp = step.input if reader is None or specs else reader
            update: dict[str, Any] = {
                "input": inp.model_copy(update={"path": current}),
                "output": out_base + output_suffix(step, len(specs)),
                "overwrite": True,
            }
            spec = step.model_copy(update=update)
            specs.append(spec)
            current = spec.output
        if not specs:
            raise RecipeError("the recipe only opens the image: add a step that writes a result")
        return specs

    def save(self, path: str | os.PathLike) -> Path:
        """Write the recipe as YAML, atomically."""
        data = self.model_dump(mode="json")
        text = "# napari-celldenoise recipe (celldenoise batch RECIPE INPUTS... -o OUTDIR)\n"
        text += yaml.safe_dump(data, sort_keys=False)
        return atomic_write(path, text.encode("utf-8"), overwrite=True)


def output_suffix(step: AnySpec, index: int) -> str:
    """The suffix of step ``index``'s output: by kind, numbered when a kind repeats."""
    if step.kind == "spots":
        return ".spots.csv"
    suffix = _SUFFIX[step.kind]
    return suffix if index == 0 else f".step{index + 1}{suffix}"


def processing(step: AnySpec) -> dict[str, Any]:
    """The spec as data without the example's paths (what the recipe hash covers)."""
    data = step.to_dict()
    for name in _PATH_FIELDS:
        data.pop(name, None)
    if isinstance(data.get("input"), dict):
        data["input"] = {k: v for k, v in data["input"].items() if k != "path"}
    if data.get("kind") == "read":
        data["writes"] = step.output is not None
    return data


def describe_step(step: AnySpec) -> str:
    """``filter: median (size=3, vst)``-style summary of a step's settings."""
    if step.kind == "filter":
        c = step.config
        parts = [f"{k}={v}" for k, v in c.params.items()]
        parts += [
            name for name in ("three_d", "vst", "auto_tune", "keep_dtype") if getattr(c, name)
        ]
        if c.noise_a is not None:
            parts.append(f"a={c.noise_a:.4g}, b={c.noise_b:.4g}")
        return f"filter: {c.method}" + (f" ({', '.join(parts)})" if parts else "")
    if step.kind == "predict":
        return f"predict: model {step.model} (weights {step.config.weights})"
    if step.kind == "spots":
        c = step.config
        bits = [f"threshold {c.threshold}", f"box {c.box}", f"fit {c.fit}"]
        if step.pixel_size:
            bits.append(f"pixel {step.pixel_size:g} nm")
        if step.classify:
            bits.append(f"classifier {step.classify}")
        if step.centroid:
            bits.append(f"centroid model {step.centroid}")
        return "spots: " + ", ".join(bits)
    inp = step.input
    opts = [f"axes {inp.axes}" if inp.axes else "", f"channel {inp.channel}" if inp.channel else ""]
    extra = ", ".join(o for o in opts if o)
    return "read" + (f": {extra}" if extra else "") + (" -> OME-TIFF" if step.output else "")


def load_recipe(path: str | os.PathLike) -> Recipe:
    """Read a recipe saved by :meth:`Recipe.save`.

    Raises
    ------
    ConfigError
        Naming the file and what is wrong, in one line.
    """
    return validate_yaml(path, Recipe.model_validate)


def recipe_from_specs(specs: list[AnySpec], source: str | None = None) -> Recipe:
    """The recipe of ``specs`` (in the order they ran), keeping the per-file steps.

    Training and export steps are left out (the recipe refers to the model folder the predict
    step names); a chain with nothing per file is refused.
    """
    steps = [s for s in specs if s.kind in PER_FILE_KINDS]
    if not steps:
        kinds = ", ".join(s.kind for s in specs) or "none"
        raise RecipeError(f"{source or 'specs'}: no per-file step to replay (steps: {kinds})")
    try:
        return Recipe(steps=tuple(steps), source=source)
    except ValidationError as exc:
        raise RecipeError(f"{source or 'specs'}: {format_validation_error(exc)}") from None


def recipe_from_spec(spec: AnySpec, source: str | None = None) -> Recipe:
    """The recipe that ends with ``spec``: the specs that made its input file (its
    provenance, when the input is an output of an earlier job), then ``spec`` itself.

    This is what a dock's output layer holds (``layer.metadata["celldenoise"]["spec"]``): the
    job that made it from a file, which may itself be a filtered or denoised output.
    """
    from ..jobs.provenance import history_of

    try:
        earlier = history_of(spec.input.path)
    except (OSError, ConfigError):  # an input gone, or without readable provenance
        earlier = []
    return recipe_from_specs([*earlier, spec], source=source)


def recipe_from_output(path: str | os.PathLike) -> Recipe:
    """The recipe that made the output ``path`` (an OME-TIFF or a spot CSV).

    Follows the provenance chain: the file's own spec and the specs that made its inputs,
    oldest first (:func:`~..jobs.provenance.history_of`).

    Raises
    ------
    RecipeError
        For a file without provenance (a raw acquisition, a file from another program).
    """
    from ..jobs.provenance import history_of

    path = os.fspath(path)
    try:
        chain = history_of(path)
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such file") from None
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read its provenance ({exc})") from None
    if not chain:
        raise RecipeError(
            f"{path}: carries no provenance (only outputs of napari-celldenoise jobs do)"
        )
    return recipe_from_specs(chain, source=path)


def image_stem(name: str) -> str:
    """``cell_01`` for ``cell_01.ome.tif``: the file name without its image suffix."""
    base = PurePosixPath(name).name
    for suffix in _IMAGE_SUFFIXES:
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base


__all__ = [
    "IMAGE_KINDS",
    "PER_FILE_KINDS",
    "Recipe",
    "RecipeError",
    "describe_step",
    "image_stem",
    "load_recipe",
    "output_suffix",
    "processing",
    "recipe_from_output",
    "recipe_from_spec",
    "recipe_from_specs",
]
