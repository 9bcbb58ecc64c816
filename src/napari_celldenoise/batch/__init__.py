"""Batch runs: recipes (the chain of job specs behind an output) replayed on many files with
dask.distributed. dask.distributed is imported only when a batch runs (:mod:`.run`)."""

from .recipe import Recipe, RecipeError, load_recipe, recipe_from_output

__all__ = ["Recipe", "RecipeError", "load_recipe", "recipe_from_output"]
