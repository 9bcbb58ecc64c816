"""Run Picasso's drift correction (RCC ``undrift``) and linking of blinks (``link``) on the SMLM
benchmark's localizations (inside benchmarks/.peer-venv).

Called by benchmarks/smlm.py, never imported by the project. Input: an ``.npz`` with one table
per case (``NAME|frame``, ``NAME|x``, ... in camera px) and a JSON ``meta`` (frames, width,
height, pixel size, the segmentations and link settings to run); output: an ``.npz`` with the
drift (px, every frame) of each undrift run, the linked counts, and the wall times.

Usage: python _smlm_peers.py IN.npz OUT.npz
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def picasso_locs(data, name):
    import pandas as pd

    frame = data[f"{name}|frame"]
    n = frame.size
    lp = data[f"{name}|lp"].astype(np.float32)
    return pd.DataFrame(
        {
            "frame": frame.astype(np.uint32),
            "x": data[f"{name}|x"].astype(np.float32),
            "y": data[f"{name}|y"].astype(np.float32),
            "photons": data[f"{name}|photons"].astype(np.float32),
            "sx": np.full(n, 1.3, np.float32),
            "sy": np.full(n, 1.3, np.float32),
            "bg": np.full(n, 10.0, np.float32),
            "lpx": lp,
            "lpy": lp,
            "ellipticity": np.zeros(n, np.float32),
            "net_gradient": np.full(n, 1000.0, np.float32),
        }
    )


def warm_up(postprocess, data, case) -> None:
    """Compile Picasso's numba functions on a small table, so that no timing includes it."""
    locs = picasso_locs(data, case["name"]).iloc[:3000]
    info = [
        {
            "Frames": int(locs["frame"].max()) + 1,
            "Width": case["width"],
            "Height": case["height"],
            "Pixelsize": case["pixel_size"],
        }
    ]
    postprocess.link(locs, info, r_max=0.5, max_dark_time=1, remove_ambiguous_lengths=False)
    try:
        postprocess.undrift(
            locs,
            info,
            max(1, info[0]["Frames"] // 5),
            display=False,
            segmentation_callback=lambda i: None,
            rcc_callback=lambda i: None,
        )
    except Exception:  # only for compiling
        pass


def main(src: str, dst: str) -> None:
    from picasso import postprocess

    data = np.load(src, allow_pickle=False)
    meta = json.loads(str(data["meta"]))
    out, info_out = {}, {"seconds": {}, "linked": {}}
    warm_up(postprocess, data, meta["cases"][0])
    for case in meta["cases"]:
        name = case["name"]
        locs = picasso_locs(data, name)
        info = [
            {
                "Frames": case["frames"],
                "Width": case["width"],
                "Height": case["height"],
                "Pixelsize": case["pixel_size"],
            }
        ]
        for seg in case.get("segmentations", []):
            t0 = time.perf_counter()
            try:
                drift, _ = postprocess.undrift(
                    locs,
                    info,
                    int(seg),
                    display=False,
                    segmentation_callback=lambda i: None,
                    rcc_callback=lambda i: None,
                )
            except Exception as exc:  # e.g. too few segments for its cubic spline
                info_out.setdefault("errors", {})[f"undrift|{name}|{seg}"] = str(exc)
                continue
            info_out["seconds"][f"undrift|{name}|{seg}"] = time.perf_counter() - t0
            out[f"drift|{name}|{seg}"] = np.column_stack(
                [drift["x"].to_numpy(), drift["y"].to_numpy()]
            )
        for r_px, gap in case.get("links", []):
            t0 = time.perf_counter()
            linked = postprocess.link(
                locs,
                info,
                r_max=float(r_px),
                max_dark_time=int(gap),
                remove_ambiguous_lengths=False,
            )
            key = f"link|{name}|{r_px:g}|{gap}"
            info_out["seconds"][key] = time.perf_counter() - t0
            info_out["linked"][key] = len(linked)
    import picasso

    info_out["picasso"] = picasso.__version__
    np.savez(dst, info=json.dumps(info_out), **out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
