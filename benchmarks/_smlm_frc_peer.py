"""Picasso's FRC and NeNA on the FRC benchmark's tables (run inside benchmarks/.peer-venv).

Called by benchmarks/smlm_frc.py, never imported by the project. Input: a JSON list of Picasso
``.hdf5`` files (written by our writer); output: a JSON list of ``{nena_nm, frc_nm, pixel_nm,
nena_s, frc_s}``, one per file.

Usage: python _smlm_frc_peer.py IN.json OUT.json
"""

from __future__ import annotations

import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")


def measure(path: str) -> dict:
    from picasso import io, lib, postprocess

    locs, info = io.load_locs(path)
    ps = float(lib.get_from_metadata(info, "Pixelsize"))
    t0 = time.perf_counter()
    _, s_px = postprocess.nena(locs, info)
    t1 = time.perf_counter()
    viewport = (
        (float(locs["y"].min()), float(locs["x"].min())),
        (float(locs["y"].max()), float(locs["x"].max())),
    )
    result = postprocess.frc(locs, info, viewport)
    t2 = time.perf_counter()
    res = result["resolution"]
    return {
        "n": len(locs),
        "nena_nm": float(s_px) * ps,
        "frc_nm": float(res) if res is not None else None,
        "pixel_nm": float(s_px) * ps / 2,  # Picasso renders the FRC at NeNA / 2
        "nena_s": t1 - t0,
        "frc_s": t2 - t1,
    }


def warm_up(path: str) -> None:
    """One call of each on a few localizations, so that no timing includes numba's compiling."""
    from picasso import io, postprocess

    locs, info = io.load_locs(path)
    locs = locs.iloc[:3000]
    postprocess.nena(locs, info)
    viewport = (
        (float(locs["y"].min()), float(locs["x"].min())),
        (float(locs["y"].max()), float(locs["x"].max())),
    )
    postprocess.frc(locs, info, viewport)


def main() -> int:
    paths = json.loads(open(sys.argv[1]).read())
    warm_up(paths[0])
    out = [measure(p) for p in paths]
    with open(sys.argv[2], "w") as fh:
        json.dump(out, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
