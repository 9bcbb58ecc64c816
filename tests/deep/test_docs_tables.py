"""The settings tables of the docs say what the configs say (a hand-written table drifts)."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from napari_celldenoise.deep.config import TrainConfig
from napari_celldenoise.deep.methods.cyclegan import CycleGANConfig

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _table(doc: Path, heading: str) -> dict[str, tuple[str, str]]:
    """``{setting: (default, range)}`` of the first table under ``## heading``."""
    text = doc.read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \|", section, flags=re.M)
    return {name: (default.strip(), bounds.strip()) for name, default, bounds in rows}


def _default(value: typing.Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _bounds(field: typing.Any) -> str:
    # annotated_types' Ge(ge=...), Le(le=...), Gt(gt=...)
    limits = {type(m).__name__: getattr(m, type(m).__name__.lower(), None) for m in field.metadata}
    if "Ge" in limits and "Le" in limits:
        return f"{_default(limits['Ge'])}-{_default(limits['Le'])}"
    if "Gt" in limits and "Le" in limits:
        return f"> {_default(limits['Gt'])}, <= {_default(limits['Le'])}"
    if typing.get_origin(field.annotation) is typing.Literal:
        return ", ".join(str(v) for v in typing.get_args(field.annotation))
    return "-"


def _check_cyclegan_table(doc: Path) -> None:
    table = _table(doc, "CycleGAN settings")
    fields = CycleGANConfig.model_fields
    common = TrainConfig.model_fields
    # every setting CycleGAN adds or changes has a row, and the networks' common sizes too
    own = {
        name
        for name, f in fields.items()
        if name != "method" and (name not in common or common[name].default != f.default)
    }
    assert own | {"features", "depth"} <= set(table), sorted(own - set(table))
    for name, (default, bounds) in table.items():
        assert name in fields, f"{name} is not a CycleGAN setting"
        assert default == _default(fields[name].default), name
        assert bounds == _bounds(fields[name]), name


def test_the_cyclegan_table_of_deep_md_follows_the_config():
    _check_cyclegan_table(DOCS / "deep.md")


def test_a_drifted_default_in_the_table_is_caught(tmp_path):
    doc = tmp_path / "deep.md"
    text = (DOCS / "deep.md").read_text(encoding="utf-8")
    assert "| `pool_size` | 50 |" in text
    doc.write_text(text.replace("| `pool_size` | 50 |", "| `pool_size` | 40 |"), encoding="utf-8")
    with pytest.raises(AssertionError, match="pool_size"):
        _check_cyclegan_table(doc)
