"""Fitting speed: writes the ``smlm-fitspeed`` section of docs/benchmarks.md.

Measured in one run, on this machine: fits per second of our LSQ and MLE fitters (one and two
threads, tolerance 1e-3 and 1e-2) and of Picasso's ``gaussfit`` (LSQ, MLE; one and two threads)
and ``gaussmle``, all timed alternately in one process of ``benchmarks/.peer-venv`` on the same
simulated 7x7 boxes (sigma 1.3 px, 300-5000 photons, background 5-40 photons/px, read noise
1.6 e-), median of several rounds; and each fitter's localization error on those boxes against
the Cramer-Rao bound at the true parameters. The machine is shared: the load average is
recorded, and CPU seconds are given beside wall seconds for the one-thread rows.

Run: ``nice -n 10 .venv/bin/python benchmarks/smlm_fitspeed.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from report import machine, write_section  # noqa: E402

from napari_celldenoise.spots.fit import crlb_symmetric, read_variance, to_photoelectrons  # noqa: E402
from napari_celldenoise.spots.simulate import Camera, simulate_boxes  # noqa: E402

PEER_PY = HERE / ".peer-venv" / "bin" / "python"
CAM = Camera()
SIGMA = 1.3


def boxes_with_truth(n: int, seed: int = 5):
    """The spot benchmark's boxes: photons log-uniform 300-5000, background 5-40."""
    rng = np.random.default_rng(seed)
    photons = np.exp(rng.uniform(np.log(300), np.log(5000), n))
    background = rng.uniform(5, 40, n)
    adu, truth = simulate_boxes(
        n, 7, photons=photons, background=background, sigma=SIGMA, camera=CAM, seed=seed
    )
    return to_photoelectrons(adu, CAM), truth


def true_crlb(truth: np.ndarray, read_var: float) -> np.ndarray:
    """(n, 2) x, y bounds of the fitted model (5 parameters, 7x7 box) at the true values."""
    return np.array(
        [crlb_symmetric(nph, bg, SIGMA, read_var=read_var, x=x, y=y)[:2] for x, y, nph, bg in truth]
    )


def precision(xy: np.ndarray, truth: np.ndarray, bound: np.ndarray) -> tuple[float, float]:
    """RMSE (px) over x and y of the finite fits and RMSE / RMS bound on the same spots."""
    ok = np.isfinite(xy).all(1)
    err = xy[ok] - truth[ok, :2]
    rmse = float(np.sqrt(np.mean(err**2)))
    return rmse, rmse / float(np.sqrt(np.mean(bound[ok] ** 2)))


def tf_fitter(boxes: np.ndarray, rv: float, m: int) -> dict:
    """The batched TensorFlow fitter (spots.fit_tf) on the first ``m`` boxes, in this process
    (TensorFlow cannot share the peer venv): name -> (fits/s wall, fits/s CPU, x, y, device)."""
    import time

    from napari_celldenoise.spots.fit_tf import fit_boxes_tf, has_gpu

    device = "GPU" if has_gpu() else "CPU"
    out = {}
    for method in ("lsq", "mle"):
        fit_boxes_tf(boxes[:m], method=method, read_var=rv)  # builds the graph
        c0, t0 = time.process_time(), time.perf_counter()
        res = fit_boxes_tf(boxes[:m], method=method, read_var=rv)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        name = f"ours TF batched {method.upper()} on the {device}, tol 0.001 ({m} boxes)"
        out[name] = (m / wall, m / cpu, res.params[:, :2], device)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer boxes and rounds")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the doc")
    args = parser.parse_args(argv)
    n, rounds = (4000, 3) if args.quick else (20000, 5)
    if not PEER_PY.exists():
        print(f"no peer venv at {PEER_PY.parent.parent}: see docs/benchmarks.md", file=sys.stderr)
        return 1
    rv = read_variance(CAM)
    boxes, truth = boxes_with_truth(n)
    bound = true_crlb(truth, rv)
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        meta = {"read_var": rv, "rounds": rounds}
        np.savez(src, meta=json.dumps(meta), boxes=boxes)
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        subprocess.run(
            [str(PEER_PY), str(HERE / "_fitspeed_peers.py"), str(src), str(dst)],
            check=True,
            env=env,
            capture_output=True,
        )
        with np.load(dst) as d:
            info = json.loads(str(d["info"]))
            xy = {k.split("|", 1)[1]: d[k] for k in d.files if k.startswith("xy|")}
    tf_rows = tf_fitter(boxes, rv, min(n, 4000))
    load1 = os.getloadavg()

    wall = {k: n / float(np.median(v)) for k, v in info["wall"].items()}
    cpu = {k: n / float(np.median(v)) for k, v in info["cpu"].items()}
    lines = [
        f"Measured on {machine()}; `nice -n 10 .venv/bin/python benchmarks/smlm_fitspeed.py`"
        + (" --quick" if args.quick else "")
        + f". Load average {load0[0]:.1f} at the start, {load1[0]:.1f} at the end (2 cores, "
        "shared with other work): the two-thread rows compete for the cores with it.",
        "",
        f"{n} simulated 7x7 boxes (sigma {SIGMA} px, 300-5000 photons log-uniform, background "
        "5-40 photons/px, read noise 1.6 e-), in photoelectrons. Every fitter runs alternately "
        f"in one process of the peer venv, {rounds} rounds, median. Fits/s (wall) is what a "
        "user waits; fits/s (CPU) divides by the process's CPU seconds, which other work on "
        "the machine disturbs less (one-thread rows). Localization error: RMSE of x and y "
        "against the truth, and over the RMS Cramer-Rao bound of the 5-parameter model at the "
        "true values. Our tolerance is a step size (px for position and width, relative for "
        "photons and background), Picasso's a relative change of chi-square; its default is "
        "1e-2 (20 iterations), ours 1e-3 (100). Picasso's start values are computed outside "
        "its timing; ours (centroid, edge background) inside.",
        "",
        "| fitter | fits/s (wall) | fits/s (CPU) | RMSE (px) | RMSE / CRLB |",
        "|---|---|---|---|---|",
    ]
    for name in info["wall"]:
        rmse, ratio = precision(xy[name], truth, bound)
        one = info["threads"][name] == 1
        cpu_txt = f"{cpu[name]:,.0f}" + ("" if one else " (both threads' CPU seconds)")
        lines.append(f"| {name} | {wall[name]:,.0f} | {cpu_txt} | {rmse:.4f} | {ratio:.3f} |")
    for name, (w, c, xy_tf, _) in tf_rows.items():
        m = len(xy_tf)
        rmse, ratio = precision(xy_tf, truth[:m], bound[:m])
        lines.append(f"| {name} | {w:,.0f} | {c:,.0f} | {rmse:.4f} | {ratio:.3f} |")

    def ratio(a: str, b: str, table: dict) -> str:
        return f"{table[a] / table[b]:.2f}x"

    def cores(name: str) -> str:
        """Cores the run had on average (CPU s / wall s): 2 when nothing serialised its two
        threads and the machine had both cores free for them."""
        return f"{wall[name] / cpu[name]:.2f}"

    lines += ["", "Ratios, one thread, our default tolerance against Picasso's default:", ""]
    for m in ("LSQ", "MLE"):
        a = f"ours {m}, tol 0.001, 1 thread"
        b = f"Picasso gaussfit {m}, tol 1e-2, 1 thread"
        a2 = f"ours {m}, tol 0.01, 1 thread"
        lines.append(
            f"- {m}: {ratio(a, b, wall)} wall, {ratio(a, b, cpu)} CPU (at 1e-2 both: "
            f"{ratio(a2, b, wall)} wall, {ratio(a2, b, cpu)} CPU); two threads against one: "
            f"ours {ratio(f'ours {m}, tol 0.001, 2 thread', a, wall)} (on "
            f"{cores(f'ours {m}, tol 0.001, 2 thread')} cores on average, CPU s / wall s), "
            f"Picasso {ratio(f'Picasso gaussfit {m}, tol 1e-2, 2 thread', b, wall)} (on "
            f"{cores(f'Picasso gaussfit {m}, tol 1e-2, 2 thread')})."
        )
    device = next(iter(tf_rows.values()))[3]
    lines += [
        "",
        f"The TF batched rows ran TensorFlow on the {device}"
        + (
            " (this machine has no GPU: the row shows the batched code runs and agrees, not "
            "its GPU rate; `benchmarks/gpu_fit_check.py` measures 1e6 boxes on a GPU)."
            if device == "CPU"
            else "."
        ),
        f"Peer: picassosr {info['picasso']}.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("smlm-fitspeed", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
