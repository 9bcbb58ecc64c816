"""``celldenoise recipe from OUTPUT -o RECIPE.yaml`` and ``celldenoise recipe show RECIPE``."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "recipe",
        help="make a batch recipe from an output's provenance, or list a recipe's steps",
        description="Batch recipes: the steps that made an output, to replay on many files "
        "with `celldenoise batch`.",
    )
    cmds = p.add_subparsers(dest="recipe_command", required=True, metavar="ACTION")
    frm = cmds.add_parser(
        "from",
        help="build the recipe that made OUTPUT (an OME-TIFF or a spot CSV)",
        description="Follow the provenance of OUTPUT (the spec that wrote it and the specs "
        "that made its inputs) and save those steps as a recipe.",
    )
    frm.add_argument("output", metavar="OUTPUT", help="an output file (.ome.tif or .csv)")
    frm.add_argument("-o", "--out", metavar="RECIPE", required=True, help="recipe YAML to write")
    frm.add_argument("--overwrite", action="store_true", help="replace RECIPE if it exists")
    frm.set_defaults(func=run_from)
    show = cmds.add_parser("show", help="list a recipe's steps and its hash")
    show.add_argument("recipe", metavar="RECIPE", help="recipe YAML")
    show.add_argument("--yaml", action="store_true", help="print the whole recipe as YAML")
    show.set_defaults(func=run_show)


def run_from(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..batch.recipe import recipe_from_output
    from .errors import CliError

    if Path(args.out).exists() and not args.overwrite:
        raise CliError(f"{args.out}: already exists (use --overwrite to replace it)")
    recipe = recipe_from_output(args.output)
    recipe.save(args.out)
    print("\n".join(recipe.describe()))
    print(f"recipe {recipe.hash} -> {args.out}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from ..batch.recipe import load_recipe

    recipe = load_recipe(args.recipe)
    if args.yaml:
        import yaml

        print(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False), end="")
        return 0
    print("\n".join(recipe.describe()))
    made = f" (from {recipe.source})" if recipe.source else ""
    print(f"recipe {recipe.hash}{made}")
    return 0
