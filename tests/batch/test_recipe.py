"""Recipes: built from an output's provenance, saved and loaded as versioned YAML, listed by
the CLI; the hash covers the processing, not the example's paths."""

from __future__ import annotations

import json

import pytest

from napari_celldenoise.batch.recipe import (
    Recipe,
    RecipeError,
    load_recipe,
    recipe_from_output,
    recipe_from_specs,
)
from napari_celldenoise.cli import main
from napari_celldenoise.config import ConfigError
from napari_celldenoise.deep.config import TrainConfig
from napari_celldenoise.jobs.specs import classical_spec, train_spec

from .conftest import example_chain, write_frames


def test_recipe_from_a_spot_csv_follows_the_chain_and_round_trips(example, tmp_path):
    f, s, table = example
    recipe = recipe_from_output(table)
    assert [step.kind for step in recipe.steps] == ["filter", "spots"]
    assert recipe.steps == (f, s) and recipe.source == str(table)
    # the filtered image's own provenance gives the first step alone
    assert recipe_from_output(f.output).steps == (f,)
    path = recipe.save(tmp_path / "r.yaml")
    assert path.read_text().startswith("# napari-celldenoise recipe")
    assert load_recipe(path) == recipe and load_recipe(path).hash == recipe.hash


def test_the_hash_is_the_processing_not_the_paths(example, tmp_path):
    _, _, table = example
    other = recipe_from_output(example_chain(tmp_path)[2])  # same steps on other files
    assert other.hash == recipe_from_output(table).hash
    changed = recipe_from_specs(
        [
            classical_spec("x.tif", "y.ome.tif", "gaussian", {"sigma": 2.0}),
            *recipe_from_output(table).steps[1:],
        ]
    )
    assert changed.hash != other.hash


def test_plan_chains_each_step_on_the_previous_output(recipe):
    specs = recipe.plan("/data/day1/cell.tif", "/out/day1/cell")
    assert [(s.input.path, s.output) for s in specs] == [
        ("/data/day1/cell.tif", "/out/day1/cell.filtered.ome.tif"),
        ("/out/day1/cell.filtered.ome.tif", "/out/day1/cell.spots.csv"),
    ]
    assert specs[0].config == recipe.steps[0].config and all(s.overwrite for s in specs)


def test_steps_that_make_one_model_or_a_table_before_the_end_are_refused(recipe, tmp_path):
    train = train_spec("a.tif", "model", TrainConfig(method="n2v"))
    with pytest.raises(ValueError, match="step 1 is a train job, which makes one model"):
        Recipe(steps=(train, *recipe.steps))
    # from provenance a training step is left out (the predict step names its model folder)
    assert recipe_from_specs([train, *recipe.steps]).steps == recipe.steps
    with pytest.raises(ValueError, match=r"step 1 \(spots\) writes a table"):
        Recipe(steps=(recipe.steps[1], recipe.steps[0]))
    raw = write_frames(tmp_path / "raw.ome.tif", seed=2)
    with pytest.raises(RecipeError, match="raw.ome.tif: carries no provenance"):
        recipe_from_output(raw)


def test_a_recipe_from_a_newer_version_is_refused_naming_the_file(recipe, tmp_path):
    data = recipe.model_dump(mode="json")
    path = tmp_path / "newer.yaml"
    path.write_text(json.dumps({**data, "version": 9}))
    with pytest.raises(ConfigError, match="newer.yaml: version: config version 9 is newer"):
        load_recipe(path)


def test_cli_recipe_from_and_show(example, tmp_path, capsys):
    _, _, table = example
    out = tmp_path / "recipe.yaml"
    assert main(["recipe", "from", str(table), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1. filter: gaussian (sigma=1.0)" in printed and "2. spots:" in printed
    assert load_recipe(out) == recipe_from_output(table)
    assert main(["recipe", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert f"recipe {load_recipe(out).hash} (from {table})" in shown
    assert main(["recipe", "from", str(table), "-o", str(out)]) == 2  # exists
    raw = write_frames(tmp_path / "raw.ome.tif", seed=3)
    assert main(["recipe", "from", str(raw), "-o", str(tmp_path / "r2.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.strip().endswith(
        "carries no provenance (only outputs of napari-celldenoise jobs do)"
    )
    assert not (tmp_path / "r2.yaml").exists()


def test_recipe_from_a_layers_spec_takes_the_provenance_of_its_input(example, tmp_path):
    """What the Batch dock does with an output layer's spec: the specs that made the file the
    job read, then the job itself."""
    from napari_celldenoise.batch.recipe import recipe_from_spec

    f, s, _ = example
    assert recipe_from_spec(s, source="layer spots").steps == (f, s)  # s read the filtered one
    assert recipe_from_spec(f).steps == (f,)  # f read a raw acquisition
    gone = s.model_copy(update={"input": s.input.model_copy(update={"path": str(tmp_path / "x")})})
    assert recipe_from_spec(gone).steps == (gone,)
