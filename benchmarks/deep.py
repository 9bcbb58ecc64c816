"""Benchmark: self-supervised deep denoisers against the noisy input and classical filters.

FMD Confocal_BPAE_B field of view 1 (Zhang et al., CVPR 2019): the networks train on the raw
noisy frames only; ``gt/avg50.png`` (the mean of the 50 captures) is used only for scoring.
Every trained method gets the same training budget in CPU-minutes of this machine (process CPU
time / cores, so other jobs on the machine do not skew it; the budget is a command-line argument
and is written into the table) in one run, as a user trains (PG's cosine learning rate spans the
run, its epochs planned from a short timing probe); copies of the model folder taken as the run
passes each 1/chunks of the budget give PSNR against training minutes. Scored on the first raw
frame, PSNR/SSIM with data range 255.

    nice -n 10 python benchmarks/deep.py --minutes 3 --frames 50 > /tmp/deepbench.log 2>&1 &

Writes the ``deep`` section of docs/benchmarks.md (``--no-write`` to only print).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
DATA = Path(os.environ.get("CELLDENOISE_DATA", ROOT.parent / "shared" / "data"))
FOV = DATA / "denoise" / "fmd_confocal_bpae_b_fov1"


def load(frames: int) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    raw = sorted((FOV / "raw").glob("*.png"))[:frames]
    stack = np.stack([cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in raw]).astype(np.float32)
    gt = cv2.imread(str(FOV / "gt" / "avg50.png"), cv2.IMREAD_UNCHANGED).astype(np.float32)
    return stack, gt


def scores(x: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    x = np.clip(x, 0, 255)
    return (
        float(peak_signal_noise_ratio(gt, x, data_range=255)),
        float(structural_similarity(gt, x, data_range=255)),
    )


def drift_floor(stack: np.ndarray, block: int = 5) -> float:
    """Mean squared difference between frame 0's clean image and the clean mean of the stack.

    The sample drifts (bleaching, motion) while the frames are taken, so even a perfect
    denoiser of frame 0 differs from avg50. Estimated from the data alone: the mean of frames
    ``1..block`` and the mean of the later frames have their clean centres ``(n - 1) / 2``
    frames apart, as far as frame 0 lies from the stack's centre; their mean squared
    difference minus its noise part (the noise variance from successive frame differences,
    which a slow drift hardly touches) is the drift part, for a drift of steady speed.
    """
    s = np.asarray(stack, np.float64)
    n = len(s)
    noise_var = float(np.mean((s[1:] - s[:-1]) ** 2)) / 2
    early, late = s[1 : 1 + block].mean(0), s[1 + block :].mean(0)
    msd = float(np.mean((early - late) ** 2))
    return max(msd - noise_var * (1 / block + 1 / (n - 1 - block)), 0.0)


def psnr_to_clean(psnr: float, floor: float) -> float:
    """PSNR against frame 0's own clean image, estimated: the drift part taken out of the MSE."""
    mse = 255.0**2 / 10 ** (psnr / 10)
    return float(10 * np.log10(255.0**2 / max(mse - floor, 1e-9)))


def classical_rows(stack: np.ndarray, gt: np.ndarray) -> list[dict]:
    """VST + BM3D (exact unbiased inverse) and the best auto-tuned classical filter."""
    rows = []
    frame = stack[0]
    try:
        import bm3d

        from napari_celldenoise.classical.noise import estimate_noise_stack
        from napari_celldenoise.classical.vst import GAT

        fit = estimate_noise_stack(stack)
        gat = GAT(max(fit.a, 1e-6), fit.b)
        t = time.perf_counter()
        out = gat.inverse(bm3d.bm3d(gat.forward(frame), sigma_psd=1.0), exact=True)
        rows.append(
            dict(
                method="VST + BM3D (noise from the raw stack, exact inverse)",
                seconds=time.perf_counter() - t,
                out=out,
            )
        )
    except Exception as exc:
        print(f"VST + BM3D skipped: {exc}", file=sys.stderr)
    try:
        from napari_celldenoise.classical.apply import denoise
        from napari_celldenoise.classical.autotune import autotune

        best = None
        for method in ("gaussian", "median", "bilateral", "tv", "wavelet", "nlm"):
            t = time.perf_counter()
            tuned = autotune(frame, method)
            out = denoise(frame, "YX", method, {tuned.param: tuned.best})
            row = dict(
                method=f"auto-tuned {method} ({tuned.param}={tuned.best:.3g}, Noise2Self)",
                seconds=time.perf_counter() - t,
                out=out,
            )
            # choose among classical filters by their self-supervised loss, not by the truth
            loss = min(tuned.losses)
            if best is None or loss < best[0]:
                best = (loss, row)
        if best is not None:
            rows.append(best[1])
    except Exception as exc:
        print(
            f"auto-tuned classical filters unavailable ({exc}); gaussian stand-in", file=sys.stderr
        )
        from skimage.filters import gaussian

        t = time.perf_counter()
        out = gaussian(frame, sigma=1.0, preserve_range=True)
        rows.append(
            dict(
                method="gaussian sigma 1 (stand-in: classical/ not available)",
                seconds=time.perf_counter() - t,
                out=out,
            )
        )
    return rows


def machine_seconds() -> float:
    """This process's CPU time divided by the cores: wall seconds of the machine used alone.

    Training budgets count this rather than wall time so that other jobs on the machine do not
    shorten one method's training more than another's.
    """
    return time.process_time() / (os.cpu_count() or 1)


def seconds_per_epoch(stack, method, folder, *, patch, batch, steps) -> float:
    """Machine seconds per epoch of ``method``, from a 2 x 8-batch probe (not counted).

    A network whose learning rate follows a schedule over the run (PG: cosine) needs to know
    how many epochs fit its budget. Batches are timed between the stop checks that follow
    each one (the set-up excluded); the gap across the epoch boundary adds validation,
    checkpoints and the preview.
    """
    from napari_celldenoise.deep.api import train
    from napari_celldenoise.deep.config import TrainConfig
    from napari_celldenoise.jobs import run

    stamps: list[float] = []

    def stamp() -> bool:
        stamps.append(machine_seconds())
        return False

    config = TrainConfig(method=method, epochs=2, steps=8, patch=patch, batch=batch)
    run(train(stack, "TYX", config, str(folder), should_stop=stamp))
    shutil.rmtree(folder, ignore_errors=True)
    gaps = np.diff(stamps)
    per_batch = float(np.median(np.concatenate([gaps[2:7], gaps[8:]])))
    return steps * per_batch + max(float(gaps[7]) - per_batch, 0.0)


def plan_epochs(fit: float, steps: int) -> tuple[int, int]:
    """``(epochs, steps per epoch)`` that fill ``fit`` epochs of ``steps`` for a cosine schedule.

    Whole epochs alone waste up to one epoch (4.8 epochs fitting a slice gave 4: PG trained
    16 of its 20 minutes); the steps per epoch shrink instead so that ``epochs * steps`` stays
    within ``fit * steps``.
    """
    epochs = max(1, math.ceil(fit))
    return epochs, max(1, math.floor(fit * steps / epochs))


def curve_mark_passed(elapsed: float, budget: float, chunks: int, taken: int) -> bool:
    """Whether an epoch ending ``elapsed`` machine-s into the run is past the next curve mark.

    The marks are at ``budget * k / chunks`` for k = 1 .. chunks - 1 (the run's end is the last
    point); ``taken`` marks have their copy already.
    """
    return taken < chunks - 1 and elapsed >= budget * (taken + 1) / chunks


def train_timed(
    stack, method, minutes, chunks, folder, *, patch, batch, steps, mask=None, frame=None, gt=None
):
    """Train once for ``minutes``; returns the curve [(minutes, psnr)] and the machine seconds.

    One run, as a user trains it: restarting in chunks (fresh Adam state, and for PG a new
    cosine cycle from the peak rate each time) cost PG 1.2 dB on FMD against one cycle of the
    same steps. The curve's earlier points are copies of the model folder taken at the first
    epoch end past each mark (its best weights so far, without the output calibration that ends
    a run), scored after the run. Methods without a scheduled learning rate train until the
    budget is used up; a scheduled one (PG) plans the epochs that fit it, the same stop as guard.
    """
    from napari_celldenoise.deep.api import predict, train
    from napari_celldenoise.deep.config import PredictConfig, TrainConfig
    from napari_celldenoise.jobs import Epoch, run

    budget = minutes * 60
    epochs = 10_000
    if getattr(TrainConfig(method=method, mask=mask), "lr_schedule", "constant") != "constant":
        per_epoch = seconds_per_epoch(stack, method, folder, patch=patch, batch=batch, steps=steps)
        # 3 % of the budget for TensorFlow set-up and the calibration at the end
        print(f"{method}: {per_epoch:.1f} machine-s per {steps}-step epoch", flush=True)
        epochs, steps = plan_epochs(0.97 * budget / per_epoch, steps)
        print(f"{method}: {epochs} epochs x {steps} steps", flush=True)
    config = TrainConfig(
        method=method, epochs=epochs, steps=steps, patch=patch, batch=batch, mask=mask
    )
    start = machine_seconds()
    copies: list[tuple[Path, float]] = []

    def elapsed() -> float:
        return machine_seconds() - start

    def copy_at_mark(event) -> None:
        if isinstance(event, Epoch) and curve_mark_passed(elapsed(), budget, chunks, len(copies)):
            copy = folder.with_name(f"{folder.name}-point{len(copies) + 1}")
            shutil.copytree(folder, copy)
            copies.append((copy, elapsed()))

    run(
        train(stack, "TYX", config, str(folder), should_stop=lambda: elapsed() > budget),
        on_event=copy_at_mark,
    )
    spent = elapsed()
    curve = []
    for point, seconds in [*copies, (folder, spent)]:
        out = run(predict(str(point), frame, "YX", PredictConfig(tta=False)))
        curve.append((seconds / 60, scores(out, gt)[0]))
    return curve, spent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=20.0, help="training minutes per method")
    p.add_argument("--frames", type=int, default=50, help="raw frames to train on")
    p.add_argument("--chunks", type=int, default=3, help="points of the PSNR-vs-minutes curve")
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=40, help="batches per epoch")
    p.add_argument("--tta-steps", type=int, default=100)
    p.add_argument("--quick-only", action="store_true", help="only the quick N2V goal")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    if not FOV.exists():
        print(f"data not found: {FOV}", file=sys.stderr)
        return 1
    from napari_celldenoise.deep.api import predict, train
    from napari_celldenoise.deep.config import PredictConfig, TrainConfig
    from napari_celldenoise.deep.masks import mask_from_data
    from napari_celldenoise.jobs import run

    work = Path(tempfile.mkdtemp(prefix="celldenoise-deepbench-"))
    stack, gt = load(args.frames)
    frame = stack[0]
    noisy_psnr, noisy_ssim = scores(frame, gt)
    floor = drift_floor(stack) if len(stack) > 10 else 0.0
    ceiling = 10 * np.log10(255.0**2 / floor) if floor else float("inf")
    print(f"noisy {noisy_psnr:.2f} dB; drift floor MSE {floor:.2f} ({ceiling:.2f} dB)", flush=True)

    # the quick goal: 8 frames, 2 epochs x 40 steps, patch 64, batch 16
    t = time.monotonic()
    quick = TrainConfig(method="n2v", epochs=2, steps=40, patch=64, batch=16)
    run(train(stack[:8], "TYX", quick, str(work / "quick")))
    quick_s = time.monotonic() - t
    quick_psnr, _ = scores(run(predict(str(work / "quick"), frame, "YX")), gt)
    print(f"quick N2V {quick_psnr:.2f} dB in {quick_s:.0f} s", flush=True)
    lines = [
        f"Measured on {_machine()}; FMD Confocal_BPAE_B fov1, scored on raw frame 0 against "
        "avg50 (data range 255). Networks train on raw frames only.",
        "",
        f"Quick goal (N2V, 8 frames, 2 epochs x 40 steps, patch 64, batch 16): "
        f"{quick_psnr:.2f} dB vs noisy {noisy_psnr:.2f} dB "
        f"(**{quick_psnr - noisy_psnr:+.2f} dB**, goal > +2 dB; {quick_s:.0f} s).",
    ]
    if args.quick_only:
        return _finish(lines, args, work)

    rows = [dict(method="noisy (raw frame 0)", psnr=noisy_psnr, ssim=noisy_ssim, seconds=0.0)]
    for row in classical_rows(stack, gt):
        row["psnr"], row["ssim"] = scores(row.pop("out"), gt)
        rows.append(row)
        print(row["method"], f"{row['psnr']:.2f}", flush=True)

    proposal = mask_from_data(stack[: min(8, len(stack))], "TYX")
    print(proposal.describe(), flush=True)
    # when the proposal hides nothing (FMD: the correlation is too weak to pay), structN2V
    # is measured with the two X neighbours hidden, to show what that mask costs
    forced = proposal.hides_nothing
    mask = [[1, 1, 1]] if forced else proposal.mask.tolist()
    curves = {}
    for name, method, m in (
        ("N2V", "n2v", None),
        ("structN2V", "structn2v", mask),
        ("PG blind-spot", "pg-blindspot", None),
    ):
        folder = work / method
        curve, spent = train_timed(
            stack,
            method,
            args.minutes,
            args.chunks,
            folder,
            patch=args.patch,
            batch=args.batch,
            steps=args.steps,
            mask=m,
            frame=frame,
            gt=gt,
        )
        curves[name] = curve
        origin = "forced: the proposal from the noise hides nothing" if forced else "from the noise"
        label = name + (f" (mask {len(m)}x{len(m[0])}, {origin})" if m else "")
        variants = {
            "pg-blindspot": [(False, False), (True, False), (True, True)],
            "n2v": [(None, False), (None, True)],
        }.get(method, [(None, False)])
        for tta, ensemble in variants:
            t = time.monotonic()
            config = PredictConfig(tta=bool(tta), tta_steps=args.tta_steps, ensemble=ensemble)
            out = run(predict(str(folder), frame, "YX", config))
            pred_s = time.monotonic() - t
            suffix = "" if tta is None else (" + TTA" if tta else ", no TTA")
            suffix += " + 8-fold ensemble" if ensemble else ""
            psnr, ssim = scores(out, gt)
            rows.append(dict(method=label + suffix, psnr=psnr, ssim=ssim, seconds=spent + pred_s))
            print(rows[-1]["method"], f"{psnr:.2f}", flush=True)

    lines += [
        "",
        f"Trained methods: {args.minutes:g} CPU-minutes of training each (CPU time of the "
        f"benchmark process / {os.cpu_count()} cores, i.e. minutes of this machine used alone) on "
        f"{len(stack)} raw frames (patch {args.patch}, batch {args.batch}, {args.steps} "
        "steps/epoch, best-validation weights). "
        "Time = the training run (TensorFlow set-up included) plus "
        "prediction (with TTA where marked). "
        f"PG blind-spot computes in {_pg_precision()} here (precision 'auto'; predictions in "
        "float32).",
        "",
        "The sample drifts while the 50 frames are taken, so avg50 is not frame 0's clean "
        f"image: from the frames alone (`drift_floor`), their mean squared difference is about "
        f"{floor:.2f} (grey levels squared), and a perfect denoiser of frame 0 would score about "
        f"{ceiling:.2f} dB against avg50. Differences between methods shrink near that ceiling; "
        "the last column estimates each method's PSNR against frame 0's own clean image (the "
        "drift part taken out of the squared error).",
        "",
        "| method | PSNR (dB) | SSIM | time (s) | PSNR vs frame 0's clean, est. (dB) |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['method']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['seconds']:.0f} | "
        f"{psnr_to_clean(r['psnr'], floor):.2f} |"
        for r in rows
    ]
    lines += goal_lines(rows, floor)
    lines += [
        "",
        "PSNR (dB) against training minutes, all points from the same run (the earlier ones "
        "from copies of its folder, best weights so far, before the output calibration that ends "
        "a run):",
        "",
        "| method | " + " | ".join(f"point {i + 1}" for i in range(args.chunks)) + " |",
        "|---|" + "---:|" * args.chunks,
    ]
    for name, curve in curves.items():
        lines.append(f"| {name} | " + " | ".join(f"{p:.2f} @ {m:.1f} min" for m, p in curve) + " |")
    return _finish(lines, args, work)


def goal_lines(rows: list[dict], floor: float = 0.0) -> list[str]:
    """The issue's goals for the PG network (+ TTA) against N2V and VST + BM3D, as measured."""

    def best(prefix: str) -> tuple[str, float] | None:
        found = [(r["method"], r["psnr"]) for r in rows if r["method"].startswith(prefix)]
        return max(found, key=lambda f: f[1]) if found else None

    pg, n2v, bm3d = best("PG"), best("N2V"), best("VST + BM3D")
    if pg is None or n2v is None or bm3d is None:
        return []
    to_n2v, to_bm3d = pg[1] - n2v[1], pg[1] - bm3d[1]
    verdict = "met" if to_n2v >= 0.5 and to_bm3d >= 1.0 else "**not met**"
    lines = [
        "",
        f"Goals (PG blind-spot >= N2V + 0.5 dB and >= VST + BM3D + 1.0 dB), best rows "
        f"({pg[0]}; {n2v[0]}): measured {to_n2v:+.2f} dB and {to_bm3d:+.2f} dB: {verdict}.",
    ]
    if floor:
        goal = bm3d[1] + 1.0
        lines.append(
            f"Against frame 0's own clean image (estimated), VST + BM3D + 1.0 dB = {goal:.2f} dB "
            f"means {psnr_to_clean(goal, floor) - psnr_to_clean(bm3d[1], floor):+.2f} dB over "
            "VST + BM3D."
        )
    return lines


def _pg_precision() -> str:
    from napari_celldenoise.deep._tf import compute_precision

    return compute_precision("auto").replace("mixed_", "")


def _machine() -> str:
    from report import machine

    return machine()


def _finish(lines: list[str], args: argparse.Namespace, work: Path) -> int:
    text = "## Deep denoising (benchmarks/deep.py)\n\n" + "\n".join(lines)
    print(text)
    if not args.no_write:
        from report import write_section

        write_section("deep", text)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
