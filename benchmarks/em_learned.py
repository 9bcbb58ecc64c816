"""Electron-microscopy benchmark, learned rows: writes the ``em-learned`` section of
docs/benchmarks.md.

Measured side by side in one run on this machine, on the simulated MoS2-like lattices of
``benchmarks/em.py`` (256 x 256 px honeycomb, a = 12 px, 12.7 pm pixels, three dents, 1 %
vacancies, scan-line jitter, doses 5, 20 and 100 counts per column, 3 seeds):

* the noisy input and the classical rows that won the classical table (the Bragg filter with
  and without its low-pass, and VST + BM3D at dose 100), rerun here;
* N2V trained on a separate 512 x 512 px noisy image of the same dose (a user's other field),
  then applied to the test images;
* the CycleGAN trained on that image's noisy patches towards synthetic targets made from a clean
  reference (a defect-free simulation of the crystal, as users bring) and from the auto target
  (lattice and motif measured on the noisy image).

Every metric of ``em.metrics`` against the simulator's truth, training and prediction times.
The trainings are short (CPU minutes on a shared 2-core machine); the settings are in the text.

Run: ``nice -n 10 .venv/bin/python benchmarks/em_learned.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from em import METRICS, SIM, methods, metric_cells  # noqa: E402  (benchmarks/em.py)

DOSES = (5, 20, 100)  # counts per column (``--doses``)


def learned_configs(quick: bool) -> dict[str, dict]:
    """The training settings of each learned row (short: this is a shared CPU)."""
    n2v = dict(method="n2v", patch=64, batch=16, epochs=2 if quick else 4, steps=25)
    gan = dict(
        method="cyclegan",
        patch=128,
        batch=1,
        features=8,
        res_blocks=3,
        epochs=2 if quick else 4,
        steps=25 if quick else 40,
        learning_rate=1e-3,
    )
    return {
        "N2V": n2v,
        "CycleGAN (reference target)": {**gan, "target": "reference"},
        "CycleGAN (auto target)": {**gan, "target": "auto"},
    }


def train_models(dose: int, quick: bool, workdir: Path) -> dict[str, tuple]:
    """Train each learned row on a 512 x 512 noisy image of ``dose``: label -> (folder, s)."""
    from napari_celldenoise.deep.api import train
    from napari_celldenoise.deep.config import TrainConfig
    from napari_celldenoise.em.simulate import simulate_lattice
    from napari_celldenoise.jobs import run

    noisy, _ = simulate_lattice((512, 512), dose=dose, seed=900 + dose, **SIM)
    # the clean reference a user brings: a defect-free simulation of the crystal
    _, perfect = simulate_lattice(
        (300, 300), dose=dose, seed=5, **{**SIM, "dents": 0, "vacancy_rate": 0.0, "jitter": 0.0}
    )
    models = {}
    for label, settings in learned_configs(quick).items():
        folder = workdir / f"{label.split()[0]}-{settings.get('target', '')}-{dose}"
        extra = {"reference": perfect.clean} if settings.get("target") == "reference" else None
        t0 = time.perf_counter()
        run(train(noisy, "YX", TrainConfig(**settings), str(folder), extra=extra))
        models[label] = (folder, time.perf_counter() - t0)
        print(f"dose {dose}: trained {label} in {models[label][1]:.0f} s", flush=True)
    return models


def simulated(quick: bool) -> str:
    from napari_celldenoise.deep.api import predict
    from napari_celldenoise.deep.config import PredictConfig
    from napari_celldenoise.em.metrics import lattice_metrics
    from napari_celldenoise.em.simulate import simulate_lattice
    from napari_celldenoise.jobs import run

    doses = DOSES
    seeds = (0,) if quick else (0, 1, 2)
    classical = dict(methods(quick))
    keep = ["noisy", "Bragg", "Bragg + low-pass", "VST + BM3D (auto-tuned)"]
    results: dict[tuple[str, int], list[dict]] = {}
    trained: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory(prefix="em-learned-") as tmp:
        for dose in doses:
            models = train_models(dose, quick, Path(tmp))
            rows = [(k, classical[k]) for k in keep if k != keep[-1] or dose == 100]
            for label, (folder, seconds) in models.items():
                trained[(label, dose)] = seconds
                weights = "last" if label.startswith("CycleGAN") else "best"

                def learned(img, folder=folder, weights=weights):
                    out = run(predict(str(folder), img, "YX", PredictConfig(weights=weights)))
                    return out, ""

                rows.append((label, learned))
            for seed in seeds:
                img, truth = simulate_lattice((256, 256), dose=dose, seed=100 + seed, **SIM)
                for label, fn in rows:
                    t0 = time.perf_counter()
                    out, _ = fn(img)
                    m = lattice_metrics(out, truth)
                    m["seconds"] = time.perf_counter() - t0
                    results.setdefault((label, dose), []).append(m)
                    print(
                        f"dose {dose} seed {seed} {label}: psnr {m['psnr']:.2f} ssim "
                        f"{m['ssim']:.3f} f1 {m['f1']:.3f} rmse {m['rmse_pm']:.1f} pm vac "
                        f"{m['vacancies_filled']:.2f} dent {m['dent_contrast_error']:.3f}",
                        flush=True,
                    )
    head = "| dose | method | " + " | ".join(h for _, h, _ in METRICS)
    lines = [head + " | train s | predict s |", "|" + "---|" * (len(METRICS) + 4)]
    for dose in doses:
        for (label, d), ms in results.items():
            if d != dose:
                continue
            cells = metric_cells(ms)
            train_s = f"{trained[(label, dose)]:.0f}" if (label, dose) in trained else "-"
            secs = np.mean([m["seconds"] for m in ms])
            lines.append(
                f"| {dose} | {label} | " + " | ".join(cells) + f" | {train_s} | {secs:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    from report import machine, write_section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, shorter trainings")
    parser.add_argument("--print", action="store_true", help="print instead of writing the doc")
    parser.add_argument("--doses", default="5,20,100", help="counts per column, comma-separated")
    args = parser.parse_args()
    global DOSES
    DOSES = tuple(int(d) for d in args.doses.split(","))
    start, load0 = time.time(), os.getloadavg()[0]
    table = simulated(args.quick)
    n2v = learned_configs(args.quick)["N2V"]
    gan = learned_configs(args.quick)["CycleGAN (auto target)"]
    text = f"""## Electron microscopy: learned methods (`benchmarks/em_learned.py`)

Measured on {machine()}; every row in the same run ({(time.time() - start) / 60:.0f} min, load
average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end on a shared machine: times
are inflated accordingly).

The simulated lattices of the table above ({"1 seed" if args.quick else "3 seeds"} per dose),
the same metrics. The classical rows rerun here are the winners of that table (Bragg with and
without low-pass; VST + BM3D only at dose 100, where it led). The learned methods train once per
dose on a separate 512 x 512 px noisy simulation of the same dose (another field of the same
crystal) and are applied to the test images:

- N2V: {n2v["epochs"]} epochs x {n2v["steps"]} batches of {n2v["batch"]} x {n2v["patch"]} px
  patches (depth 2, 32 features), best weights;
- CycleGAN: {gan["epochs"]} epochs x {gan["steps"]} batches of one {gan["patch"]} px crop,
  {gan["features"]} features, {gan["res_blocks"]} residual blocks, last weights; the clean domain
  is synthetic targets (`em.targets`) made from a defect-free simulation of the crystal
  (reference target) or from the lattice and motif measured on the noisy image (auto target),
  with procedural and the image's own dents and 1 % vacancies; learning rate
  {gan["learning_rate"]:g}, the default synthetic supervision (each target also recorded with the
  noise measured on the noisy image, `G(recorded) ~= target`, weight 10) and the generator's
  full-resolution skip.

These CycleGAN trainings are far shorter and smaller than the method's defaults (256 px crops,
32 features, 6 residual blocks, thousands of steps), which this shared 2-core machine cannot
give to six models in one run: the rows say what a few CPU minutes reach, not what the method
reaches.

{table}
"""
    if args.print:
        print(text)
    else:
        write_section("em-learned", text)
        print("wrote docs/benchmarks.md (em-learned)")


if __name__ == "__main__":
    main()
