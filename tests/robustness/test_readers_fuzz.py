"""Reader fuzz: every kind of file the plugin reads, broken in every way a transfer, a disk or
a careless writer breaks files, generated here with a fixed seed (no stored corpus).

Kinds: OME-TIFF, ImageJ hyperstack, plain multi-page TIFF, BigTIFF, tiled, zlib-compressed,
PNG, and the spot CSV reader. Faults: truncation at ~50 offsets (eager and lazy), flipped
bytes in the header and image directories, wrong magic, directory loops, sizes far beyond
the file (100000 x 100000, 1000 planes), zero-sized axes, OME-XML that is not UTF-8 or
contradicts the pixels, ImageJ metadata that lies about the axes.

Each case must end in the reader's one-line error naming the file (ImageReadError,
SpotTableError) or in a read, correct wherever the pixels are known; no other exception, no
case over 10 s, the worker's peak RSS under 600 MB, no file written. The cases run in one child
process (``_fuzz_cases.py``) under an overall timeout; the summary is printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ._fuzz_cases import KINDS
from ._procs import cli_env

pytestmark = pytest.mark.slow

SEED = 25
WORKER = Path(__file__).with_name("_fuzz_cases.py")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("fuzz-cwd")  # the worker must write nothing here
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(SEED), *KINDS],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["kind"]: r for r in map(json.loads, proc.stdout.splitlines())}
    print(f"\nreader fuzz (seed {SEED}): kind, cases, clear errors, correct reads, other reads")
    for r in rows.values():
        print(
            f"  {r['kind']:<11} {r['cases']:4d} {r['errors']:4d} {r['correct']:4d} {r['reads']:4d}"
            f"   slowest {r['slowest_s']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB"
        )
    assert sorted(p.name for p in cwd.iterdir()) == []
    return rows


@pytest.mark.parametrize("kind", KINDS)
def test_every_case_is_a_clear_error_or_a_read(results, kind):
    r = results[kind]
    assert r["failures"] == [], "\n".join(r["failures"][:20])
    assert r["cases"] >= 100
    assert r["errors"] + r["correct"] + r["reads"] == r["cases"]
    assert r["errors"] > 0  # the faults are real: most of them must be refused
    assert r["slowest_s"] < 10
    assert r["peak_rss_mb"] < 600  # the whole worker, imports included (about 150 MB)
