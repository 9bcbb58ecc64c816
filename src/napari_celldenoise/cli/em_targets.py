"""``celldenoise em-targets IN -o DIR [--reference REF] [--count N]``: synthetic clean targets.

Writes ``target_000.ome.tif`` ... (the input's pixel size and intensity units) and
``targets.json`` (the lattice, the source of the crystal, the dents and vacancies of each
target) for inspection before training on them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .errors import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "em-targets",
        help="write synthetic clean targets (same lattice, dents, vacancies) for an EM image",
        description="Measure the lattice of IN and write COUNT clean targets on it: resampled "
        "from the clean reference REF (any zoom and rotation) or, without one, made of the "
        "measured motif; with procedural dents (5-50 %% thinner), the dent masks of IN itself "
        "(every fourth target) and about 1 %% vacancies.",
    )
    p.add_argument("input", metavar="IN", help="the noisy atomic-resolution image")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write")
    p.add_argument("--reference", metavar="REF", help="clean (simulated) image of the crystal")
    p.add_argument("--count", type=int, default=8, help="number of targets (default 8)")
    p.add_argument("--size", type=int, default=None, help="target side in px (default: IN's)")
    p.add_argument("--vacancies", type=float, default=0.01, help="share of vacant columns")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--no-seed-masks", action="store_true", help="procedural dents only")
    p.add_argument("--overwrite", action="store_true", help="replace targets already in DIR")
    p.add_argument("--plane", type=int, default=0, help="plane of a stack (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..em.lattice import measure_lattice
    from ..em.targets import target_stream
    from ..io import write_ome_tiff
    from ._classical import read
    from .lattice import plane_of

    if not 1 <= args.count <= 10000:
        raise CliError(f"--count must be between 1 and 10000, got {args.count}")
    if not 0 <= args.vacancies < 0.5:
        raise CliError(f"--vacancies must be in [0, 0.5), got {args.vacancies}")
    if args.size is not None and args.size < 32:
        raise CliError(f"--size must be at least 32 px, got {args.size}")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise CliError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.glob("target_*.ome.tif")) and not args.overwrite:
        raise CliError(f"{out}: already holds targets (use --overwrite to replace them)")
    image = read(args.input)
    noisy = plane_of(image, args.plane, args.input)
    reference = None
    if args.reference:
        ref = read(args.reference)
        reference = plane_of(ref, 0, args.reference)
    lattice = measure_lattice(
        noisy,
        scale=(image.scale.get("Y", 1.0), image.scale.get("X", 1.0)),
        unit=image.units.get("X", "pixel"),
    )
    shape = (args.size, args.size) if args.size else None
    model, stream = target_stream(
        noisy,
        reference=reference,
        shape=shape,
        seed=args.seed,
        vacancy_rate=args.vacancies,
        seed_masks=not args.no_seed_masks,
        lattice=lattice,
    )
    out.mkdir(parents=True, exist_ok=True)
    yx = {a: image.scale[a] for a in "YX" if a in image.scale}
    units = {a: image.units[a] for a in "YX" if a in image.units}
    records = []
    for k in range(args.count):
        target = next(stream)
        path = out / f"target_{k:03d}.ome.tif"
        data = image.with_data(
            target.image, axes="YX", scale=yx, units=units, channel_names=None, path=str(path)
        )
        write_ome_tiff(path, data, overwrite=True, inputs=[args.input])
        records.append(
            {
                "file": path.name,
                "dents": target.dents,
                "thickness_min": round(float(np.min(target.thickness)), 4),
                "vacancies": len(target.vacancies),
            }
        )
    manifest = {
        "input": args.input,
        "reference": args.reference,
        "source": model.source,
        "lattice": lattice.to_dict(),
        "model": model.info,
        "targets": records,
    }
    from ..atomic import atomic_write

    atomic_write(out / "targets.json", json.dumps(manifest, indent=2).encode(), overwrite=True)
    print(
        f"{out}: {args.count} targets from the {model.source} "
        f"({lattice.kind} lattice, a = {lattice.spacing_px:.3f} px)"
    )
    return 0
