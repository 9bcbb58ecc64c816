"""The machine line every benchmark section starts with names the CPU's vector instructions."""

import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from report import _vector_level, machine, write_section


def test_vector_level_names_the_widest_instructions():
    assert _vector_level({"avx2", "avx512f", "avx512_bf16"}) == "AVX-512 with bfloat16"
    assert _vector_level({"avx2", "avx512f"}) == "AVX-512"
    assert _vector_level({"avx", "avx2", "fma"}) == "AVX2, no AVX-512"
    assert _vector_level({"sse4_2"}) == "no AVX2"


def test_machine_line_has_cores_and_python():
    line = machine()
    assert " cores, Python 3." in line
    if platform.machine() == "x86_64" and Path("/proc/cpuinfo").exists():
        assert "AVX" in line


def test_write_section_replaces_only_its_own_block(tmp_path):
    doc = tmp_path / "b.md"
    write_section("a", "first", doc)
    write_section("b", "other", doc)
    write_section("a", "second", doc)
    text = doc.read_text()
    assert "second" in text and "first" not in text and "other" in text


def test_cpu_model_and_flags_reads_the_first_cpu(tmp_path):
    from napari_celldenoise.deep._tf import cpu_model_and_flags

    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\n"
        "processor\t: 1\nmodel name\t: other\nflags\t\t: fpu\n"
    )
    model, flags = cpu_model_and_flags(str(info))
    assert model == "AMD EPYC 9R14"
    assert _vector_level(flags) == "AVX-512 with bfloat16"
    assert cpu_model_and_flags(str(tmp_path / "missing")) == ("", set())
