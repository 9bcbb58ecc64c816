"""GPU fitter check: fits/s of the batched TensorFlow fitter on 1e6 boxes, and its agreement
with the numba CPU fitter. Run on a machine with a GPU:

    .venv/bin/python benchmarks/gpu_fit_check.py [--boxes 1000000]

Prints the device TensorFlow uses, the fit rate (second run: the first compiles) for MLE and
LSQ, and on the first 20,000 boxes the largest position difference from the CPU fitter in
units of the Cramer-Rao bound. Goal: >= 1e6 fits/s. Writes nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from smlm_fitspeed import CAM, boxes_with_truth

from napari_celldenoise.spots.fit import fit_boxes, read_variance
from napari_celldenoise.spots.fit_tf import fit_boxes_tf, has_gpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    print("GPU:", has_gpu() or "none (TensorFlow runs on the CPU: the rate is not the GPU's)")
    rv = read_variance(CAM)
    boxes, _ = boxes_with_truth(args.boxes)
    check = min(20000, args.boxes)
    for method in ("mle", "lsq"):
        fit_boxes_tf(boxes[:check], method=method, read_var=rv)  # compiles
        t0 = time.perf_counter()
        res = fit_boxes_tf(boxes, method=method, read_var=rv)
        wall = time.perf_counter() - t0
        ref = fit_boxes(boxes[:check], method=method, read_var=rv)
        ok = ref.converged & res.converged[:check]
        shift = np.abs(res.params[:check][ok, :2] - ref.params[ok, :2]) / ref.crlb[ok, :2]
        print(
            f"{method.upper()}: {args.boxes / wall:,.0f} fits/s ({args.boxes} boxes, {wall:.2f} s);"
            f" converged {res.converged.mean():.4f}; against the CPU fitter on {check} boxes:"
            f" max |dx|/CRLB {shift.max():.2e}, convergence agrees on"
            f" {np.mean(ref.converged == res.converged[:check]):.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
