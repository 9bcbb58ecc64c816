"""Time our fitters and Picasso's on the same boxes, interleaved in one process of the peer venv.

Called by benchmarks/smlm_fitspeed.py, never imported by the project (Picasso needs an h5py that
TensorFlow's venv cannot have). Input: an ``.npz`` with ``boxes`` (photoelectrons) and ``meta``;
output: an ``.npz`` with, per fitter, the wall and CPU seconds of every round and its x, y.

Usage: python _fitspeed_peers.py IN.npz OUT.npz
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")


def _picasso_async(gaussfit, spots, init, mle, threads):
    fit = gaussfit.fit_spots_async(gaussfit.SPHERICAL, spots, init, mle=mle, n_threads=threads)
    while not fit.finished():
        time.sleep(0.0005)
    return fit.results()


def runs(boxes: np.ndarray, read_var: float) -> dict:
    """Name -> (function returning (n, 2) x, y in box px, threads)."""
    from picasso import gaussmle
    from picasso.fitting import gaussfit, seeds

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from napari_celldenoise.spots.fit import fit_boxes

    spots = np.ascontiguousarray(boxes, np.float32)
    ours = np.ascontiguousarray(boxes, np.float64)
    # Picasso's start values are made outside its timing, as its localize does before fitting
    init = seeds.initial_parameters_gauss(spots, spots.shape[1], spherical=True)

    def mine(method, threads, tol):
        def run():
            res = fit_boxes(ours, method=method, read_var=read_var, threads=threads, tol=tol)
            return res.params[:, :2]

        return run

    out = {}
    for method in ("lsq", "mle"):
        for tol in (1e-3, 1e-2):
            for threads in (1, 2):
                out[f"ours {method.upper()}, tol {tol:g}, {threads} thread"] = (
                    mine(method, threads, tol),
                    threads,
                )
    for mle in (False, True):
        label = "MLE" if mle else "LSQ"
        out[f"Picasso gaussfit {label}, tol 1e-2, 1 thread"] = (
            lambda m=mle: gaussfit.fit_spots(gaussfit.SPHERICAL, spots, init, mle=m)[0][:, 1:3],
            1,
        )
        out[f"Picasso gaussfit {label}, tol 1e-3, 1 thread"] = (
            lambda m=mle: gaussfit.fit_spots(
                gaussfit.SPHERICAL, spots, init, mle=m, tolerance=1e-3
            )[0][:, 1:3],
            1,
        )
        out[f"Picasso gaussfit {label}, tol 1e-2, 2 thread"] = (
            lambda m=mle: _picasso_async(gaussfit, spots, init, m, 2)[0][:, 1:3],
            2,
        )
    out["Picasso gaussmle, tol 1e-3, 1 thread"] = (
        lambda: gaussmle.gaussmle(spots, 1e-3, 1000, method="sigma")[0][:, :2],
        1,
    )
    return out


def main(src: str, dst: str) -> None:
    data = np.load(src, allow_pickle=False)
    meta = json.loads(str(data["meta"]))
    todo = runs(data["boxes"], float(meta["read_var"]))
    xy = {name: np.asarray(fn(), float) for name, (fn, _) in todo.items()}  # also compiles
    wall = {name: [] for name in todo}
    cpu = {name: [] for name in todo}
    for _ in range(int(meta["rounds"])):  # interleaved: the machine is shared
        for name, (fn, _) in todo.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    import picasso

    info = {
        "wall": wall,
        "cpu": cpu,
        "threads": {name: t for name, (_, t) in todo.items()},
        "picasso": picasso.__version__,
    }
    np.savez(dst, info=json.dumps(info), **{f"xy|{k}": v for k, v in xy.items()})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
