"""Measure: when does a structN2V mask pay? N2V against structN2V (1x3 mask) on X-correlated noise.

FMD Confocal_BPAE_B fov1's avg50 serves as the clean image; each run adds ``frames`` frames of
Gaussian noise (sigma 8 grey levels) correlated along X at lag 1 only (a moving average of two
white pixels, ``n[x] = (w[x] + t w[x-1]) / sqrt(1 + t^2)``, whose lag-1 correlation is
``t / (1 + t^2)``), trains N2V and structN2V with a 1x3 mask the same way (6 epochs x 40 steps
of batch 16 on 64 x 64 patches) and scores the first noisy frame against the clean image
(PSNR, data range 255). The seed sets the noise and the training. docs/deep.md ("When a
structN2V mask pays") quotes the figures; ``MIN_MASK_CORRELATION`` in deep/masks.py rests on
them.

    taskset -c 0 python benchmarks/mask_threshold.py 0.25 --seed 0 &   # one core per run

Prints one line per run.
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


def correlated_noise(shape: tuple[int, ...], rho: float, sigma: float, rng) -> np.ndarray:
    """Gaussian noise of std ``sigma`` whose only correlation is ``rho`` at lag 1 along X."""
    if not 0 <= rho < 0.5:
        raise ValueError("a lag-1 moving average reaches correlations in [0, 0.5)")
    t = 0.0 if rho == 0 else (1 - np.sqrt(1 - 4 * rho**2)) / (2 * rho)
    w = rng.normal(size=(*shape[:-1], shape[-1] + 1))
    return sigma * (w[..., 1:] + t * w[..., :-1]) / np.sqrt(1 + t**2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rho", type=float, help="lag-1 correlation along X, 0 to 0.5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=16)
    args = parser.parse_args()

    from deep import load, scores
    from napari_celldenoise.deep import api
    from napari_celldenoise.deep.config import PredictConfig, TrainConfig
    from napari_celldenoise.jobs import run

    _, clean = load(1)
    rng = np.random.default_rng(args.seed)
    noise = correlated_noise((args.frames, *clean.shape), args.rho, 8.0, rng)
    noisy = (clean + noise).astype(np.float32)
    measured = float(np.mean(noise[..., 1:] * noise[..., :-1]) / np.var(noise))

    def psnr(x: np.ndarray) -> float:
        return scores(x, clean)[0]  # clipped to 0-255, data range 255

    psnrs = {}
    for method, mask in (("n2v", None), ("structn2v", [[1, 1, 1]])):
        config = TrainConfig(
            method=method, mask=mask, epochs=6, steps=40, batch=16, patch=64, seed=args.seed
        )
        folder = Path(tempfile.mkdtemp()) / "model"
        start = time.process_time()
        run(api.train(noisy, "TYX", config, str(folder)))
        cpu = time.process_time() - start
        out = run(api.predict(str(folder), noisy[:1], "TYX", PredictConfig()))
        psnrs[method] = psnr(out[0])
        shutil.rmtree(folder.parent)
        print(f"  {method}: {psnrs[method]:.2f} dB after {cpu:.0f} CPU s", flush=True)
    print(
        f"lag-1 correlation {args.rho} (measured {measured:.3f}), seed {args.seed}: noisy "
        f"{psnr(noisy[0]):.2f}, N2V {psnrs['n2v']:.2f}, structN2V 1x3 "
        f"{psnrs['structn2v']:.2f} dB, mask gain {psnrs['structn2v'] - psnrs['n2v']:+.2f} dB"
    )


if __name__ == "__main__":
    main()
