"""Run Picasso and trackpy on the spot benchmark's data (inside benchmarks/.peer-venv).

Called by benchmarks/spots.py, never imported by the project: Picasso (``picassosr``) needs an
h5py that TensorFlow's venv cannot have. Input: an ``.npz`` written by spots.py; output: an
``.npz`` of localizations per data set and threshold, and fit timings.

Usage: python _spots_peers.py IN.npz OUT.npz
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")


def picasso_locate(movie, camera, box, ngs):
    from picasso import gaussmle, localize

    out = {}
    info = {"Baseline": camera[0], "Sensitivity": camera[1], "Gain": 1.0, "Qe": 1.0}
    for ng in ngs:
        ids = localize.identify(movie, float(ng), box, threaded=False, return_info=False)
        if isinstance(ids, tuple):
            ids = ids[0]
        if len(ids) == 0:
            out[ng] = np.empty((0, 3))
            continue
        spots = localize.get_spots(movie, ids, box, info)
        theta, crlb, ll, it = gaussmle.gaussmle(spots, 1e-3, 1000, method="sigma")
        locs = gaussmle.locs_from_fits(ids, theta, crlb, ll, it, box, spherical=True)
        ok = np.isfinite(locs["x"].to_numpy()) & np.isfinite(locs["y"].to_numpy())
        out[ng] = np.column_stack([locs["frame"], locs["y"], locs["x"]])[ok]
    return out


def trackpy_locate(movie, diameter, minmasses):
    import trackpy

    trackpy.quiet()
    out = {}
    for mm in minmasses:
        rows = []
        for t, frame in enumerate(movie):
            f = trackpy.locate(frame, diameter, minmass=float(mm), engine="numba")
            rows.append(np.column_stack([np.full(len(f), t), f["y"], f["x"]]))
        out[mm] = np.vstack(rows) if rows else np.empty((0, 3))
    return out


def fit_timings(boxes, read_var, rounds=3):
    """Fits/s of Picasso's fitters and ours, interleaved in this one process (the machine is
    shared, so alternating is fairer than timing one after the other); best round each."""
    from picasso import gausslq, gaussmle
    from picasso.fitting import gaussfit, seeds

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from napari_celldenoise.spots.fit import fit_boxes

    spots = np.ascontiguousarray(boxes, np.float32)
    spots64 = np.ascontiguousarray(boxes, np.float64)
    init = seeds.initial_parameters_gauss(spots, spots.shape[1], spherical=True)
    runs = {
        "ours lsq": lambda s=spots64: fit_boxes(s, method="lsq", read_var=read_var, threads=1),
        "ours mle": lambda s=spots64: fit_boxes(s, method="mle", read_var=read_var, threads=1),
        "ours lsq, tolerance 1e-2": lambda s=spots64: fit_boxes(
            s, method="lsq", read_var=read_var, threads=1, tol=1e-2
        ),
        "ours mle, tolerance 1e-2": lambda s=spots64: fit_boxes(
            s, method="mle", read_var=read_var, threads=1, tol=1e-2
        ),
        "picasso gaussmle": lambda: gaussmle.gaussmle(spots, 1e-3, 1000, method="sigma"),
        "picasso gaussfit (lsq)": lambda: gaussfit.fit_spots(gaussfit.SPHERICAL, spots, init),
        "picasso gaussfit (mle)": lambda: gaussfit.fit_spots(
            gaussfit.SPHERICAL, spots, init, mle=True
        ),
    }
    for fn in runs.values():  # compile
        fn()
    best = dict.fromkeys(runs, np.inf)
    for _ in range(rounds):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    timings = {name: len(spots) / dt for name, dt in best.items()}
    sub = spots[:2000]
    t0 = time.perf_counter()
    gausslq.fit_spots(sub, spherical=True)
    timings["picasso gausslq"] = len(sub) / (time.perf_counter() - t0)
    return timings


def main(src: str, dst: str) -> None:
    data = np.load(src, allow_pickle=False)
    meta = json.loads(str(data["meta"]))
    result = {}
    for name in meta["datasets"]:
        movie = data[f"{name}_movie"]
        camera = meta["camera"][name]
        for ng, locs in picasso_locate(movie, camera, 7, meta["ngs"][name]).items():
            result[f"picasso|{name}|{ng}"] = locs
        for mm, locs in trackpy_locate(movie, 7, meta["minmass"][name]).items():
            result[f"trackpy|{name}|{mm}"] = locs
    timings = fit_timings(data["boxes"], float(meta["read_var"]))
    import picasso
    import trackpy

    info = {"timings": timings, "picasso": picasso.__version__, "trackpy": trackpy.__version__}
    np.savez(dst, info=json.dumps(info), **result)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
