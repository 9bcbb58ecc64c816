"""Classical denoising benchmark: writes the ``classical`` section of docs/benchmarks.md.

Measured side by side in one run on this machine:

1. Live preview: one update of the dock's preview path (``filter_block`` on a float32 plane)
   for gaussian, median and bilateral at 4 megapixels (the FMD frame tiled to 2048 x 2048).
2. Each method against the implementations of the same algorithm in scikit-image, OpenCV and
   scipy, same parameters, same input.
3. FMD Confocal_BPAE_B fov1: a raw frame against avg50 (PSNR, data range 255), every method
   auto-tuned by the Noise2Self J-invariant loss, with and without the VST, chosen value and time.
4. Salt-and-pepper repair at 5 % on real images: repaired and detected fractions, clean pixels
   changed, time; and the time at 4 megapixels.

Run: ``nice -n 10 .venv/bin/python benchmarks/classical.py [--quick]`` (about 20 minutes).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
DATA = ROOT.parent / "shared" / "data"
FMD = DATA / "denoise" / "fmd_confocal_bpae_b_fov1"


def timeit(fn: Callable[[], object], repeat: int = 5, budget: float = 20.0) -> float:
    """Median wall time in ms of ``repeat`` runs after one warm-up (fewer if slow)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    n = max(1, min(repeat, int(budget / max(first, 1e-6))))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def interleaved(
    impls: list[tuple[str, Callable[[], object]]], rounds: int = 7, budget: float = 30.0
) -> list[tuple[str, float]]:
    """Best-of-``rounds`` ms of each implementation, timed in turns (one run each per round).

    Turns put every implementation under the same share of the machine's load; the minimum is
    the least disturbed run (the machine is shared).
    """
    first = []
    for _, fn in impls:  # warm-up, and a guess of the cost
        t0 = time.perf_counter()
        fn()
        first.append(time.perf_counter() - t0)
    n = max(1, min(rounds, int(budget / max(sum(first), 1e-6))))
    best = [np.inf] * len(impls)
    for _ in range(n):
        for i, (_, fn) in enumerate(impls):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return [(label, 1000 * b) for (label, _), b in zip(impls, best)]


def load_fmd() -> tuple[np.ndarray, np.ndarray]:
    from napari_celldenoise.io import read_image

    raw = np.asarray(read_image(FMD / "raw" / "HV110_P0500510000.png").data)
    gt = np.asarray(read_image(FMD / "gt" / "avg50.png").data)
    return raw, gt


def live_preview(plane4mp: np.ndarray) -> tuple[str, dict]:
    from napari_celldenoise.classical.apply import filter_block, noise_info
    from napari_celldenoise.classical.registry import get_method

    info = noise_info(plane4mp, "YX")
    rows, worst = [], 0.0
    for name, params in [
        ("gaussian", {"sigma": 1.0}),
        ("gaussian", {"sigma": 3.0}),
        ("median", {"size": 3}),
        ("median", {"size": 5}),
        ("bilateral", {}),
        ("bilateral", {"sigma_spatial": 3.0}),
    ]:
        m = get_method(name)
        p = m.resolve(params, sigma=info.sigma)
        ms = timeit(lambda m=m, p=p: filter_block(plane4mp, m, p, noise_sigma=info.sigma), 15)
        worst = max(worst, ms) if params.get("sigma_spatial", 1.5) <= 1.5 else worst
        shown = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items()
        )
        rows.append(f"| {name} | {shown} | {ms:.1f} |")
    text = "\n".join(
        [
            "| method | parameters | ms per update |",
            "|---|---|---|",
            *rows,
        ]
    )
    return text, {"worst_default_ms": worst}


def peers(plane4mp: np.ndarray, small: np.ndarray) -> str:
    import cv2
    from scipy import ndimage as ndi
    from skimage import filters as skf
    from skimage import restoration as skr

    from napari_celldenoise.classical import filters as ours

    volume = np.ascontiguousarray(np.stack([small[:256, :256]] * 64))  # 64 x 256 x 256
    s = float(skr.estimate_sigma(small))
    cases: list[tuple[str, str, list[tuple[str, Callable[[], object]]]]] = [
        (
            "gaussian sigma=2",
            "4 MP",
            [
                ("ours (OpenCV)", lambda: ours.gaussian(plane4mp, sigma=2.0)),
                ("scipy ndimage", lambda: ndi.gaussian_filter(plane4mp, 2.0)),
                ("scikit-image", lambda: skf.gaussian(plane4mp, sigma=2.0, preserve_range=True)),
            ],
        ),
        (
            "gaussian 3D sigma=1.5",
            "64x256x256",
            [
                (
                    "ours (OpenCV planes + scipy 1D)",
                    lambda: ours.gaussian(volume, sigma=1.5, spacing=(1, 1, 1)),
                ),
                ("scipy ndimage", lambda: ndi.gaussian_filter(volume, 1.5)),
                ("scikit-image", lambda: skf.gaussian(volume, sigma=1.5, preserve_range=True)),
            ],
        ),
        (
            "median 3x3",
            "4 MP",
            [
                ("ours (OpenCV)", lambda: ours.median(plane4mp, size=3)),
                ("scipy ndimage", lambda: ndi.median_filter(plane4mp, 3)),
                ("scikit-image", lambda: skf.median(plane4mp, np.ones((3, 3), bool))),
            ],
        ),
        (
            "median 5x5",
            "4 MP",
            [
                ("ours (OpenCV)", lambda: ours.median(plane4mp, size=5)),
                ("scipy ndimage", lambda: ndi.median_filter(plane4mp, 5)),
            ],
        ),
        (
            "median 7x7 (float)",
            "1 MP",
            [
                ("ours (scipy)", lambda: ours.median(small4(plane4mp), size=7)),
                ("scipy ndimage", lambda: ndi.median_filter(small4(plane4mp), 7, mode="nearest")),
                ("scikit-image", lambda: skf.median(small4(plane4mp), np.ones((7, 7), bool))),
            ],
        ),
        (
            "bilateral sigma_s=1.5",
            "512x512",
            [
                (
                    "ours (OpenCV)",
                    lambda: ours.bilateral(small, sigma_color=2 * s, sigma_spatial=1.5),
                ),
                (
                    "scikit-image",
                    lambda: skr.denoise_bilateral(
                        small, win_size=5, sigma_color=2 * s, sigma_spatial=1.5
                    ),
                ),
            ],
        ),
        (
            "nlm 5x5 patches, 13x13 search",
            "512x512",
            [
                ("ours (scikit-image fast, float)", lambda: ours.nlm(small, h=0.8 * s, sigma=s)),
                (
                    "OpenCV (8-bit input only)",
                    lambda: cv2.fastNlMeansDenoising(
                        np.clip(small, 0, 255).astype(np.uint8), None, 0.8 * s, 5, 13
                    ),
                ),
            ],
        ),
        (
            "total variation",
            "512x512",
            [
                ("ours (scikit-image Chambolle)", lambda: ours.tv(small, weight=2 * s)),
                (
                    "scikit-image split Bregman",
                    lambda: skr.denoise_tv_bregman(small, weight=1 / (2 * s)),
                ),
            ],
        ),
        (
            "wavelet BayesShrink",
            "512x512",
            [
                ("ours (scikit-image)", lambda: ours.wavelet(small, sigma=s)),
            ],
        ),
        (
            "anisotropic 10 iterations",
            "4 MP",
            [
                ("ours (numpy)", lambda: ours.anisotropic(plane4mp, iterations=10, kappa=3 * s)),
            ],
        ),
        (
            "bm3d",
            "256x256",
            [
                ("ours (bm3d package)", lambda: ours.bm3d(small[:256, :256], sigma=s)),
            ],
        ),
    ]
    rows = ["| algorithm | input | implementation | ms | vs fastest |", "|---|---|---|---|---|"]
    for algo, size, impls in cases:
        times = interleaved(impls)
        fastest = min(t for _, t in times)
        for label, t in times:
            rows.append(f"| {algo} | {size} | {label} | {t:.1f} | {t / fastest:.2f}x |")
        print(f"  {algo}: " + ", ".join(f"{lb} {t:.1f} ms" for lb, t in times), flush=True)
    return "\n".join(rows)


def small4(plane4mp: np.ndarray) -> np.ndarray:
    return plane4mp[:1024, :1024]


def fmd_table(raw: np.ndarray, gt: np.ndarray, quick: bool = False) -> tuple[str, dict]:
    from napari_celldenoise.classical.apply import filter_block, noise_info
    from napari_celldenoise.classical.autotune import autotune
    from napari_celldenoise.classical.metrics import psnr
    from napari_celldenoise.classical.registry import METHODS

    info = noise_info(raw, "YX", vst=True)
    gat = info.gat
    rows = [
        "| method | VST | tuned parameter | chosen | PSNR (dB) | tune s | filter s "
        "| oracle among tried (uses avg50) |",
        "|---|---|---|---|---|---|---|---|",
        f"| noisy raw frame | - | - | - | {psnr(raw, gt):.2f} | - | - | - |",
    ]
    g1 = filter_block(raw, METHODS["gaussian"], {"sigma": 1.0})
    rows.append(f"| gaussian (fixed) | no | sigma | 1 | {psnr(g1, gt):.2f} | - | - | - |")
    best = ("", -np.inf)
    for name, m in METHODS.items():
        if m.main is None:
            continue
        for use_vst in (False, True):
            if quick and name == "bm3d":
                continue
            g = gat if use_vst else None
            heavy = name == "bm3d"
            t0 = time.perf_counter()
            res = autotune(
                raw,
                m,
                gat=g,
                noise_sigma=info.sigma,
                n_grid=6 if heavy else 8,
                n_phases=2 if heavy else 4,
            )
            tune_s = time.perf_counter() - t0
            params = m.resolve({m.main: res.best}, sigma=1.0 if use_vst else info.sigma)
            t0 = time.perf_counter()
            out = filter_block(raw, m, params, gat=g, noise_sigma=info.sigma)
            filt_s = time.perf_counter() - t0
            value = psnr(out, gt)
            chosen = f"{res.best:.4g}" if isinstance(res.best, float) else str(res.best)
            # for reference only: the best of the tried values judged against avg50
            oracle = max(
                (
                    psnr(
                        filter_block(
                            raw,
                            m,
                            m.resolve({m.main: v}, sigma=1.0 if use_vst else info.sigma),
                            gat=g,
                            noise_sigma=info.sigma,
                        ),
                        gt,
                    ),
                    v,
                )
                for v in res.values
            )
            ov = f"{oracle[1]:.4g}" if isinstance(oracle[1], float) else str(oracle[1])
            vst_text = "yes" if use_vst else "no"
            rows.append(
                f"| {name} | {vst_text} | {res.param} | {chosen} | {value:.2f} | {tune_s:.1f} "
                f"| {filt_s:.2f} | {ov}: {oracle[0]:.2f} |"
            )
            print(
                f"  FMD {name} vst={use_vst}: {res.param}={chosen} {value:.2f} dB "
                f"(tune {tune_s:.1f} s)",
                flush=True,
            )
            if value > best[1]:
                best = (f"{name}{' + VST' if use_vst else ''}", value)
    facts = {"best": best, "a": gat.a, "b": gat.b}
    return "\n".join(rows), facts


def impulse_table(images: dict[str, np.ndarray]) -> str:
    from napari_celldenoise.classical import impulse
    from napari_celldenoise.classical.noise import add_salt_pepper

    detectors = {
        "adaptive-median": impulse.adaptive_median,
        "kde-lof": impulse.kde_lof,
        "gridlof": impulse.grid_lof,
    }
    rows = [
        "| image | method | repaired | detected | clean changed | s |",
        "|---|---|---|---|---|---|",
    ]
    for label, clean in images.items():
        noisy = add_salt_pepper(clean, 0.05, rng=1)
        corrupted = noisy != clean
        gat, floor = impulse.noise_model(clean.astype(np.float32))
        c = clean.astype(np.float64)
        sigma = (
            np.sqrt(np.maximum(gat.a * c + gat.b, floor))
            if not gat.gaussian
            else (np.sqrt(gat.b) * np.ones_like(c))
        )
        for name, detect in detectors.items():
            t0 = time.perf_counter()
            det = detect(noisy)
            out = impulse.replace_outliers(noisy, det.mask)
            secs = time.perf_counter() - t0
            err = np.abs(out - c)
            repaired = float(np.mean((err <= 3 * sigma)[corrupted]))
            detected = float(np.mean(det.mask[corrupted]))
            changed = float(np.mean((out != c)[~corrupted]))
            rows.append(
                f"| {label} | {name} | {100 * repaired:.1f} % | {100 * detected:.1f} % | "
                f"{100 * changed:.2f} % | {secs:.2f} |"
            )
            print(
                f"  S&P {label} {name}: repaired {repaired:.3f} changed {changed:.4f} {secs:.2f} s",
                flush=True,
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    from report import machine, write_section

    from napari_celldenoise.io import read_image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip BM3D in the FMD table")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the doc")
    args = parser.parse_args(argv)

    load = os.getloadavg()
    raw, gt = load_fmd()
    plane4mp = np.ascontiguousarray(np.tile(raw.astype(np.float32), (4, 4)))
    small = raw.astype(np.float32)
    print("live preview", flush=True)
    live, live_facts = live_preview(plane4mp)
    print(live, flush=True)
    print("peers", flush=True)
    peer = peers(plane4mp, small)
    print("salt and pepper", flush=True)
    hoechst = np.asarray(read_image(DATA / "spots/cellprofiler_speckles/1-162hrhoe2.tif").data)
    smfish = np.asarray(read_image(DATA / "spots/airlocalize_smfish/2DsmFISH_humCells.tif").data)
    big = np.tile(hoechst, (2, 2))[:2048, :2048]
    imp = impulse_table(
        {
            "FMD raw frame (uint8)": raw,
            "FMD avg50 (uint8)": gt,
            "Hoechst nuclei (CellProfiler, 12-bit)": hoechst,
            "smFISH (AIRLOCALIZE, uint16)": smfish,
            "Hoechst tiled to 2048x2048 (4 MP)": big,
        }
    )
    print("FMD", flush=True)
    fmd, facts = fmd_table(raw, gt, quick=args.quick)
    best_name, best_psnr = facts["best"]
    text = f"""## Classical denoising (`benchmarks/classical.py`)

Measured on {machine()}; every row of a table in the same run, with other work sharing the
machine (load average at the start {load[0]:.1f}, at the end {os.getloadavg()[0]:.1f} on 2 cores:
wall times are inflated accordingly).

### Live preview at 4 megapixels

One update of the dock's preview path (`filter_block` on the current float32 plane, the FMD frame
tiled to 2048 x 2048), median of repeated runs. Target: <= 50 ms for gaussian, median and
bilateral at their defaults (worst measured: {live_facts["worst_default_ms"]:.1f} ms).

{live}

### Each method against scikit-image, OpenCV and scipy

Same input and parameters, implementations timed in turns, best of up to 7 rounds; "vs fastest"
is the time over the fastest implementation of that algorithm. OpenCV's non-local means takes
only 8-bit images in this binding (a float image would be quantised to 256 levels), so the float
implementation is scikit-image's; its time is shown for reference. Perona-Malik diffusion,
wavelet shrinkage and BM3D have no implementation in the three libraries (OpenCV's
`ximgproc.anisotropicDiffusion` is in opencv-contrib, not a dependency).

{peer}

### FMD Confocal_BPAE_B fov1: raw frame against avg50

PSNR with data range 255. Each method's main parameter chosen by the Noise2Self J-invariant loss
(stride-4 grid, 4 of the 16 phases; BM3D 2 phases) on the frame itself, without the reference;
"VST" runs the filter inside the generalized Anscombe transform with a, b estimated from the frame
(a = {facts["a"]:.3f}, b = {facts["b"]:.2f}) and the exact unbiased inverse. Best auto-tuned:
**{best_name}, {best_psnr:.2f} dB** (target >= 40.8 dB; the issue's references: noisy ~33.3 dB,
Gaussian sigma=1 ~40.3 dB).

{fmd}

### Salt-and-pepper repair (5 %)

5 % of the pixels set to the dtype's minimum or maximum (half each). Repaired: the corrupted pixel
ends within 3 noise sigmas of its original value (sigma from the noise model of the original at that
intensity; a pepper pixel on a background of 3 that is left alone counts as repaired when 3 is
within that margin). Detected: flagged by the detector. Clean changed: uncorrupted pixels whose
value changed. Targets: repaired >= 95 %, clean changed <= 1 %, seconds at 4 MP.

{imp}
"""
    if args.no_write:
        print(text)
    else:
        print(f"wrote {write_section('classical', text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
