"""Electron-microscopy benchmark: writes the ``em`` section of docs/benchmarks.md.

Measured side by side in one run on this machine:

1. Simulated MoS2-like honeycomb lattices (``em.simulate``: 256 x 256 px, a = 12 px, 12.7 pm
   pixels, three dents of 5-50 % thickness loss, 1 % vacancies, 0.3 px scan-line jitter, read
   noise 0.5) at doses of 5, 20 and 100 counts per column, 3 seeds each. Rows: the noisy input,
   Gaussian, non-local means, VST + BM3D (their main parameter chosen by the Noise2Self
   J-invariant auto-tune, as the dock's Auto button does), the Bragg filter without and with a
   low-pass (defaults, lowpass 0.5). Every metric of ``em.metrics`` and the time.
2. The real MoS2 ADF image (``example_Se_implanted_MoS2.dm3``) and the gold nanoparticle
   (``example_Au_nanoparticle.emd``), which have no truth: the lattice measured before and after
   each method (spacing, angle, confidence).

Run: ``nice -n 19 .venv/bin/python benchmarks/em.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
DATA = ROOT.parent / "shared" / "data" / "em"

METRICS = [
    ("psnr", "PSNR dB", "{:.2f}"),
    ("ssim", "SSIM", "{:.3f}"),
    ("f1", "F1", "{:.3f}"),
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
    ("rmse_pm", "RMSE pm", "{:.1f}"),
    ("bias_pm", "bias pm", "{:.1f}"),
    ("vacancies_filled", "vacancies filled", "{:.0%}"),
    ("dent_contrast_error", "dent error", "{:.1%}"),
    ("dent_kept", "dent kept", "{:.2f}"),
]


# the simulated lattices: MoS2-like honeycomb, a = 12 px, 12.7 pm pixels (dose and seed vary)
SIM = dict(
    kind="honeycomb",
    spacing=12,
    dents=3,
    jitter=0.3,
    read_noise=0.5,
    vacancy_rate=0.01,
    pixel_size=0.0127,
)


def pooled(ms: list[dict], key: str) -> float:
    """``key`` over the seeds' results ``ms``: the vacancies pooled (each seed weighted by its
    vacancies), the others the mean; NaN when there is nothing."""
    if key == "vacancies_filled":
        n = sum(m["vacancies"] for m in ms)
        return sum(m[key] * m["vacancies"] for m in ms if m["vacancies"]) / n if n else np.nan
    return float(np.nanmean([m[key] for m in ms]))


def metric_cells(ms: list[dict]) -> list[str]:
    """The table cells of :data:`METRICS` over the seeds' results ``ms``: means (± the standard
    deviation for PSNR and RMSE), vacancies pooled over the seeds."""
    cells = []
    for key, _, fmt in METRICS:
        if key == "vacancies_filled":
            n = sum(m["vacancies"] for m in ms)
            cells.append(f"{pooled(ms, key):.0%} of {n}" if n else "-")
            continue
        vals = np.array([m[key] for m in ms], float)
        mean = np.nanmean(vals) if np.isfinite(vals).any() else np.nan
        text = fmt.format(mean) if np.isfinite(mean) else "-"
        if len(ms) > 1 and np.isfinite(vals).all() and key in ("psnr", "rmse_pm"):
            text += " ± " + fmt.format(np.std(vals))
        cells.append(text)
    return cells


def methods(quick: bool):
    """``(label, function(image) -> (output, chosen))`` of the classical rows."""
    from napari_celldenoise.classical.apply import filter_block
    from napari_celldenoise.classical.autotune import autotune
    from napari_celldenoise.classical.noise import estimate_sigma
    from napari_celldenoise.classical.registry import get_method
    from napari_celldenoise.em.lattice import measure_gain, measure_lattice

    def tuned(name: str, vst: bool = False, fixed: dict | None = None):
        method = get_method(name)

        def run(img: np.ndarray):
            x = img.astype(np.float32)
            gat = None
            if vst:  # the noise model from the lattice fold (the image has no flat region)
                from napari_celldenoise.classical.vst import GAT

                try:
                    noise = measure_gain(x, measure_lattice(x))
                    gat = GAT(max(noise["gain"], 1e-6), max(noise["offset_variance"], 1e-6))
                except ValueError:
                    gat = None
            sigma = 1.0 if gat is not None else estimate_sigma(x)
            base = dict(fixed or {})
            if quick and name == "nlm":
                base.setdefault("patch_distance", 3)
            domain = gat.forward(x) if gat is not None else x
            # a 128 x 128 central crop and 5 values: the shared 2-core machine is slow
            tune = autotune(
                domain,
                method,
                base,
                noise_sigma=sigma,
                n_grid=5,
                refine=False,
                max_pixels=128 * 128,
            )
            params = method.resolve({**base, method.main: tune.best}, sigma=sigma)
            out = filter_block(x, method, params, gat=gat, noise_sigma=sigma)
            return out, f"{method.main}={tune.best:.3g}"

        return run

    def bragg(lowpass: float):
        method = get_method("bragg")

        def run(img: np.ndarray):
            params = method.resolve({"lowpass": lowpass})
            return method(img.astype(np.float32), params), f"radius=0.08, lowpass={lowpass:g}"

        return run

    return [
        ("noisy", lambda img: (img, "-")),
        ("Gaussian (auto-tuned)", tuned("gaussian")),
        ("NLM (auto-tuned)", tuned("nlm")),
        ("VST + BM3D (auto-tuned)", tuned("bm3d", vst=True)),
        ("Bragg", bragg(0.0)),
        ("Bragg + low-pass", bragg(0.5)),
    ]


def simulated(quick: bool) -> str:
    from napari_celldenoise.em.metrics import lattice_metrics
    from napari_celldenoise.em.simulate import simulate_lattice

    doses = (5, 20, 100)
    seeds = (0,) if quick else (0, 1, 2)
    rows = methods(quick)
    results: dict[tuple[str, int], list[dict]] = {}
    chosen: dict[tuple[str, int], list[str]] = {}
    for dose in doses:
        for seed in seeds:
            img, truth = simulate_lattice((256, 256), dose=dose, seed=100 + seed, **SIM)
            for label, fn in rows:
                t0 = time.perf_counter()
                out, params = fn(img)
                seconds = time.perf_counter() - t0
                m = lattice_metrics(out, truth)
                m["seconds"] = seconds
                results.setdefault((label, dose), []).append(m)
                chosen.setdefault((label, dose), []).append(params)
                print(
                    f"dose {dose} seed {seed} {label}: psnr {m['psnr']:.2f} f1 {m['f1']:.3f} "
                    f"rmse {m['rmse_pm']:.1f} pm vac {m['vacancies_filled']:.2f} "
                    f"dent {m['dent_contrast_error']:.3f} {seconds:.1f} s",
                    flush=True,
                )
    head = "| dose | method | " + " | ".join(h for _, h, _ in METRICS) + " | s | parameters |"
    lines = [head, "|" + "---|" * (len(METRICS) + 4)]
    for dose in doses:
        for label, _ in rows:
            ms = results[(label, dose)]
            cells = metric_cells(ms)
            secs = np.mean([m["seconds"] for m in ms])
            params = "; ".join(sorted(set(chosen[(label, dose)])))
            lines.append(
                f"| {dose} | {label} | " + " | ".join(cells) + f" | {secs:.2f} | {params} |"
            )
    return "\n".join(lines)


def open_crop(name: str, side: int, centre: tuple[int, int] | None = None):
    """``(crop, image)``: a ``side`` px float32 crop of the real image ``name`` in
    ../shared/data/em around ``centre`` (row, col; None: the middle), or None without it."""
    from napari_celldenoise.io import read_image

    path = DATA / name
    if not path.exists():
        return None
    image = read_image(path)
    data = np.asarray(image.data, dtype=np.float32)
    cy, cx = centre or (data.shape[0] // 2, data.shape[1] // 2)
    return data[cy - side // 2 : cy + side // 2, cx - side // 2 : cx + side // 2], image


def real_images(quick: bool) -> str:
    from napari_celldenoise.em.lattice import LatticeNotFound, measure_lattice

    lines = [
        "| image | method | spacing a1, a2 | angle | confidence | s |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("example_Se_implanted_MoS2.dm3", "example_Au_nanoparticle.emd"):
        # a central crop (BM3D on the whole image is minutes here)
        opened = open_crop(name, 256 if quick else 384)
        if opened is None:
            lines.append(f"| {name} | - | (file not available) | | | |")
            continue
        data, image = opened
        scale = (image.scale["Y"], image.scale["X"])
        for label, fn in methods(quick):
            t0 = time.perf_counter()
            try:
                out, _ = fn(data)
                seconds = time.perf_counter() - t0
            except LatticeNotFound as exc:
                lines.append(f"| {name} | {label} | {exc} | | | |")
                continue
            try:
                lat = measure_lattice(out, scale=scale, unit=image.units["X"])
            except LatticeNotFound as exc:
                lines.append(f"| {name} | {label} | {exc} | | | {seconds:.1f} |")
                continue
            la, lb = lat.lengths
            lines.append(
                f"| {name} | {label} | {la * 1000:.1f}, {lb * 1000:.1f} pm | {lat.angle:.2f}° | "
                f"{lat.confidence:.3f} | {seconds:.1f} |"
            )
            print(lines[-1], flush=True)
    return "\n".join(lines)


def main() -> None:
    from report import write_section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, small crops")
    parser.add_argument("--print", action="store_true", help="print instead of writing the doc")
    args = parser.parse_args()
    start = time.time()
    load0 = os.getloadavg()[0]
    sim = simulated(args.quick)
    if not args.print:  # the simulated table first: the real images take long here
        write_section("em", _text(args, start, load0, sim, "(being measured)"))
    real = real_images(args.quick)
    text = _text(args, start, load0, sim, real)
    if args.print:
        print(text)
    else:
        write_section("em", text)
        print("wrote docs/benchmarks.md (em)")


def _text(args, start: float, load0: float, sim: str, real: str) -> str:
    from report import machine

    load1 = os.getloadavg()[0]
    return f"""## Electron microscopy: lattice images (`benchmarks/em.py`)

Measured on {machine()}; every row in the same run ({(time.time() - start) / 60:.0f} min, load
average {load0:.1f} at the start, {load1:.1f} at the end on a shared machine: times are inflated
accordingly). The learned rows (N2V, CycleGAN with the reference and the auto target)
are in the next section (`benchmarks/em_learned.py`), with the classical winners rerun beside
them.

### Simulated MoS2-like lattices, {"1 seed" if args.quick else "3 seeds"} per dose

256 x 256 px honeycomb (Mo columns and S2 columns at 0.4 of their intensity), a = 12 px,
12.7 pm pixels, three dents (5-50 % thinner), 1 % vacancies, scan-line jitter 0.3 px, read noise
0.5 counts; dose = counts per Mo column. Metrics from `em.metrics` against the simulator's truth
(mean over the seeds, ± the standard deviation for PSNR and RMSE): PSNR and SSIM after an affine
fit onto the clean image; columns found within a quarter of the column spacing (precision,
recall, F1), their position RMSE and mean bias; the share of the true vacancies the output fills
(pooled over the seeds); the dent contrast (mean inside the dents over outside) error and the
share of the true dent depth kept. The auto-tuned methods choose their main parameter by the
Noise2Self J-invariant loss (5 values on the central 128 x 128 px, no refinement, to fit the
shared machine), as the dock's Auto button does; BM3D runs in the
generalized Anscombe domain with the gain measured on the folded unit cell.

{sim}

### Real images (no truth): the lattice before and after

The lattice measured (`em.lattice.measure_lattice`) on the central 384 x 384 px of each image
and on each output: a method that keeps the crystal keeps its spacing and angle.

{real}
"""


if __name__ == "__main__":
    main()
