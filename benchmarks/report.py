"""Write one benchmark's section of docs/benchmarks.md without touching the others.

Each benchmark script owns the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``.
"""

from __future__ import annotations

import platform
import re
from datetime import date
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def machine() -> str:
    """One line describing where the numbers were measured.

    Names the CPU model and its widest vector instructions: the same 2-core machine kind comes
    with or without AVX-512 (and bfloat16), and TensorFlow runs several times slower without.
    """
    import os

    from napari_celldenoise.deep._tf import cpu_model_and_flags

    cpu = platform.processor() or platform.machine()
    model, flags = cpu_model_and_flags()
    if model:
        cpu = f"{cpu} ({model}, {_vector_level(flags)})"
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {date.today()}"


def _vector_level(flags: set[str]) -> str:
    """The widest vector instructions among ``flags`` (TensorFlow's CPU speed follows them)."""
    from napari_celldenoise.deep._tf import BFLOAT16_FLAGS

    if BFLOAT16_FLAGS & flags:
        return "AVX-512 with bfloat16"
    if "avx512f" in flags:
        return "AVX-512"
    if "avx2" in flags:
        return "AVX2, no AVX-512"
    return "no AVX2"


def write_section(name: str, markdown: str, doc: Path = DOC) -> Path:
    """Replace (or append) section ``name`` of ``doc`` with ``markdown``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + block + "\n"
    )
    doc.write_text(text, encoding="utf-8")
    return doc
