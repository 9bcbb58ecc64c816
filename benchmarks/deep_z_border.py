"""Measure: how much mirrored context a 3D prediction needs beyond a thin stack's ends.

A 3D network's tiles get ``overlap`` pixels of mirrored context at the image's edges; on a
20-slice stack a 32-slice overlap makes every window 84 slices deep (4x the work). This script
trains a 3D N2V once and predicts the same stack with less Z context at the stack's ends,
printing the time and each slice's PSNR against a reference:

- ``fmd``: 30 FMD raw frames (frames 20-49, Confocal_BPAE_B fov1) as a ZYX stack train the
  network; frames 0-19, cropped to 256 x 256, are predicted and scored against avg50 (data
  range 255). Real noise; the "Z" axis is time, so neighbouring slices nearly repeat.
- ``synthetic``: blob-like nuclei with Poisson-Gaussian noise (``synthetic.fluorescence_volume``),
  64 slices to train, another 20 to predict and score against the clean volume.

    nice -n 5 python benchmarks/deep_z_border.py fmd > /tmp/zborder.log 2>&1 &

About 15 minutes of training on 2 cores per dataset. Prints only (docs/deep.md quotes it).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def stacks(which: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(training stack, stack to predict, its reference, PSNR data range)."""
    if which == "fmd":
        from deep import load

        frames, gt = load(50)
        test = frames[:20, :256, :256]
        return frames[20:], test, np.repeat(gt[None, :256, :256], 20, 0), 255.0
    from napari_celldenoise.synthetic import fluorescence_volume

    noisy, _ = fluorescence_volume((64, 128, 128), seed=1)
    test, clean = fluorescence_volume((20, 128, 128), seed=2)
    return noisy, test, clean, float(clean.max() - clean.min())


def psnr(x: np.ndarray, ref: np.ndarray, data_range: float) -> float:
    return float(10 * np.log10(data_range**2 / np.mean((x - ref) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", choices=["fmd", "synthetic"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()

    from napari_celldenoise.deep import api
    from napari_celldenoise.deep.config import PredictConfig, TrainConfig
    from napari_celldenoise.jobs import run

    train_stack, test, ref, data_range = stacks(args.data)
    folder = Path(tempfile.mkdtemp()) / "model"
    config = TrainConfig(dims=3, patch=32, batch=8, epochs=args.epochs, steps=args.steps)
    start = time.process_time()
    run(api.train(train_stack, "ZYX", config, str(folder)))
    print(f"trained {args.epochs} x {args.steps} steps: {time.process_time() - start:.0f} CPU s")
    for z_context in (32, 16, 8, 4, 0):  # 32 = the overlap: the full mirrored context
        api.Z_EDGE_CONTEXT = z_context  # read by api.predict at each call
        t0 = time.perf_counter()
        out = run(api.predict(str(folder), test, "ZYX", PredictConfig()))
        seconds = time.perf_counter() - t0
        per_slice = " ".join(f"{psnr(o, r, data_range):.2f}" for o, r in zip(out, ref))
        print(
            f"Z context {z_context:2d}: {seconds:5.1f} s, "
            f"stack {psnr(out, ref, data_range):.3f} dB; per slice: {per_slice}",
            flush=True,
        )
    shutil.rmtree(folder.parent)


if __name__ == "__main__":
    main()
