"""FRC and NeNA benchmark: writes the ``smlm_frc`` section of docs/benchmarks.md.

Measured in one run, on this machine: simulated localization tables
(:func:`napari_celldenoise.spots.simulate_locs.simulate_localizations`: emitters one per grid
cell at a random place in it, blinking in bursts of consecutive frames, each localization the
emitter plus a Gaussian error of known sigma) at several precisions and densities, and on each

* our FRC resolution (random halves, 1/7 threshold) against the value expected for that
  precision and those emitters' repeated localizations (``expected_frc_resolution``), and
  Picasso's ``postprocess.frc`` on the same table;
* our NeNA against the true sigma, and Picasso's ``postprocess.nena``.

Picasso reads the tables from the Picasso HDF5 files our writer makes, in
``benchmarks/.peer-venv`` (skipped, and said so, when that venv is absent).

Run: ``nice -n 10 .venv/bin/python benchmarks/smlm_frc.py [--quick]``; ``main()`` is also
called by ``benchmarks/smlm.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))
from report import machine, write_section  # noqa: E402

from napari_celldenoise.io.picasso_hdf5 import write_picasso_hdf5  # noqa: E402
from napari_celldenoise.spots.resolution import frc_table, nena_table  # noqa: E402
from napari_celldenoise.spots.simulate_locs import (  # noqa: E402
    expected_frc_resolution,
    simulate_localizations,
)

PEER_PYTHON = HERE / ".peer-venv" / "bin" / "python"
CASES = [  # (sigma nm, grid spacing nm, field µm): fields of at most ~2000 Picasso pixels (NeNA/2)
    (5.0, 200.0, 5.0),
    (10.0, 200.0, 8.0),
    (20.0, 200.0, 10.0),
    (10.0, 100.0, 6.0),
    (30.0, 100.0, 10.0),
]


def _err(value: float | None, truth: float) -> str:
    if value is None or not np.isfinite(value):
        return "none"
    return f"{value:.1f} ({100 * (value - truth) / truth:+.1f} %)"


def run_peer(paths: list[Path], work: Path) -> list[dict] | None:
    if not PEER_PYTHON.exists():
        return None
    src, dst = work / "peer_in.json", work / "peer_out.json"
    src.write_text(json.dumps([str(p) for p in paths]))
    env = {**os.environ, "HOME": str(work), "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    subprocess.run(
        [str(PEER_PYTHON), str(HERE / "_smlm_frc_peer.py"), str(src), str(dst)],
        check=True,
        env=env,
        capture_output=True,
    )
    return json.loads(dst.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller tables, fewer cases")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the doc")
    # known options only: benchmarks/smlm.py calls main() under its own command line
    args, _ = parser.parse_known_args(argv)
    frames, shrink = (2000, 0.5) if args.quick else (4000, 1.0)
    cases = CASES[:2] if args.quick else CASES
    rows, paths = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for k, (sigma, spacing, field_um) in enumerate(cases):
            field = 1000.0 * field_um * shrink
            table = simulate_localizations(
                sigma_nm=sigma, spacing_nm=spacing, field_nm=field, n_frames=frames, seed=k
            )
            t0 = time.perf_counter()
            frc = frc_table(table, repeats=3)
            t1 = time.perf_counter()
            nena = nena_table(table)
            t2 = time.perf_counter()
            expected = expected_frc_resolution(table["emitter"], sigma, frc.pixel_nm)
            rows.append(
                {
                    "sigma": sigma,
                    "spacing": spacing,
                    "field": field,
                    "n": len(table),
                    "emitters": int(table["emitter"].nunique()),
                    "expected": expected,
                    "frc": frc.resolution_nm,
                    "pixel": frc.pixel_nm,
                    "nena": nena.sigma_nm,
                    "frc_s": t1 - t0,
                    "nena_s": t2 - t1,
                    "emitter": table["emitter"].to_numpy(),
                }
            )
            paths.append(write_picasso_hdf5(work / f"case{k}.hdf5", table))
            print(f"sigma {sigma:g} nm, spacing {spacing:g} nm: ours done", file=sys.stderr)
        peer = run_peer(paths, work)
    lines = [
        "## Resolution of localization tables: FRC and NeNA",
        "",
        f"Measured on {machine()} by `benchmarks/smlm_frc.py`"
        + (" (--quick)" if args.quick else "")
        + f". Simulated square fields (side in the table) over {frames} frames: emitters "
        "one per grid cell at a random place in it, blinking in bursts of "
        "consecutive frames, each localization the emitter plus a Gaussian error of the given "
        "sigma per axis. The expected FRC resolution is that of random halves of emitters at "
        "unrelated places, whose only high-frequency correlation is a molecule's repeated "
        "localizations (Nieuwenhuizen et al. 2013): `FRC(q) = A e(q) / (N/2 + A e(q))`, "
        "`A = sum K(K-1)/4`, `e(q) = exp(-4 pi^2 (sigma^2 + pixel^2/12) q^2)`, at the render "
        "pixel each tool used. Picasso (`postprocess.frc`, `postprocess.nena`) reads the same "
        "tables from the Picasso HDF5 files our writer made.",
        "",
        "| sigma (nm) | grid (nm) | field (µm) | localizations | expected FRC (nm) | "
        "ours FRC (nm) | "
        "Picasso FRC (nm) | ours NeNA (nm) | Picasso NeNA (nm) | ours FRC / NeNA time (s) | "
        "Picasso FRC / NeNA time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    worst = {"frc": 0.0, "nena": 0.0}
    for i, r in enumerate(rows):
        p = peer[i] if peer else None
        worst["frc"] = max(worst["frc"], abs(r["frc"] - r["expected"]) / r["expected"])
        worst["nena"] = max(worst["nena"], abs(r["nena"] - r["sigma"]) / r["sigma"])
        if p is not None:
            p_expected = expected_frc_resolution(r["emitter"], r["sigma"], p["pixel_nm"])
            p_frc = f"{_err(p['frc_nm'], p_expected)}, expected {p_expected:.1f}"
            p_nena = _err(p["nena_nm"], r["sigma"])
            p_time = f"{p['frc_s']:.2f} / {p['nena_s']:.2f}"
        else:
            p_frc = p_nena = p_time = "no peer venv"
        lines.append(
            f"| {r['sigma']:g} | {r['spacing']:g} | {r['field'] / 1000:g} | {r['n']:,} | "
            f"{r['expected']:.1f} | "
            f"{_err(r['frc'], r['expected'])} | {p_frc} | {_err(r['nena'], r['sigma'])} | "
            f"{p_nena} | {r['frc_s']:.2f} / {r['nena_s']:.2f} | {p_time} |"
        )
    lines += [
        "",
        f"Ours: the FRC within {100 * worst['frc']:.1f} % of the expected value (goal 10 %), "
        f"NeNA within {100 * worst['nena']:.1f} % of the true sigma. Our FRC renders at half "
        "the median uncertainty and averages 3 random splits; Picasso renders at half its "
        "NeNA and uses one split, and its times are after one warm-up call of each (numba "
        "compiles on the first).",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("smlm_frc", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
