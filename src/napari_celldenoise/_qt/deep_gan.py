"""The Deep dock's CycleGAN settings: a folded group of widgets made from the config's fields.

Every widget takes its range, default and tooltip from the pydantic ``Field`` of the method's
config (:class:`~napari_celldenoise.deep.methods.cyclegan.CycleGANConfig`), so the dock, the
CLI and a YAML file cannot disagree on a bound. The group lists the settings the method owns
(not in :class:`~napari_celldenoise.deep.config.TrainConfig`) and those whose default it
changes (the learning rate), less the ones the dock shows elsewhere (patch, batch, target).
It is folded by default: the paper's values (Zhu et al., ICCV 2017) are a sound start.
"""

from __future__ import annotations

import math
from typing import Any

from qtpy.QtWidgets import QCheckBox, QDoubleSpinBox, QFormLayout, QSpinBox, QWidget
from superqt import QCollapsible

from ..deep.config import TrainConfig

NONE_TEXT = {"lowpass_sigma": "auto (lattice spacing)"}
"""What an optional setting's widget says at its lowest value, which stands for None."""


def own_settings(config: type[TrainConfig], shown: set[str]) -> list[str]:
    """The fields of ``config`` that are its own or have its own default, less ``shown``."""
    base = TrainConfig.model_fields
    names = []
    for name, field in config.model_fields.items():
        if name in shown or name in ("method", "version"):
            continue
        if name not in base or field.default != base[name].default:
            names.append(name)
    return names


def field_bounds(field: Any) -> tuple[float | None, float | None, bool]:
    """``(low, high, low_open)`` of a pydantic field's ``ge``/``gt``/``le``/``lt``."""
    lo = hi = None
    low_open = False
    for m in field.metadata:
        if getattr(m, "ge", None) is not None:
            lo = m.ge
        if getattr(m, "gt", None) is not None:
            lo, low_open = m.gt, True
        if getattr(m, "le", None) is not None:
            hi = m.le
        if getattr(m, "lt", None) is not None:
            hi = m.lt
    return lo, hi, low_open


def _decimals(value: float | None, high: float | None) -> int:
    """Decimals that show ``value`` and a tenth of it (2e-4 -> 5; 0.5 -> 2; 10 -> 1), at least
    2 for a setting of at most 10 (steps of 0.1)."""
    least = 2 if high is not None and high <= 10 else 1
    if not value:
        return least
    return max(least, 1 - math.floor(math.log10(abs(value))))


def setting_widget(name: str, field: Any) -> QWidget:
    """A check box, spin box or double spin box for ``field`` with its bounds and default;
    an optional number's lowest value shows :data:`NONE_TEXT` and stands for None."""
    default = field.default
    lo, hi, low_open = field_bounds(field)
    kind = field.annotation
    optional = default is None
    range_text = f"{lo:g} to {hi:g}" if lo is not None and hi is not None else ""
    shown_default = NONE_TEXT.get(name, "auto") if optional else default
    tip = f"{field.description or name} (default {shown_default}; {range_text})"
    tip = tip.replace("; )", ")")
    if kind is bool:
        widget: Any = QCheckBox()
        widget.setChecked(bool(default))
    elif kind is int:
        widget = QSpinBox()
        widget.setRange(int(lo if lo is not None else 0) + low_open, int(hi or 1_000_000))
        widget.setValue(int(default))
    else:
        widget = QDoubleSpinBox()
        decimals = _decimals(default, hi)
        widget.setDecimals(decimals)
        step = 10.0 ** -(decimals - 1)
        low = float(lo if lo is not None else 0.0)
        if low_open and not optional:
            low += 10.0**-decimals  # gt: the smallest value shown above the bound
        widget.setRange(low, float(hi if hi is not None else 1e6))
        widget.setSingleStep(step)
        if optional:  # the lowest value is None, the text says what that means
            widget.setSpecialValueText(NONE_TEXT.get(name, "auto"))
            widget.setValue(low)
        else:
            widget.setValue(float(default))
    widget.setToolTip(tip)
    widget.setObjectName(name)
    return widget


class GanSettings(QCollapsible):
    """The folded group of a GAN method's settings (see the module docstring)."""

    def __init__(self, config: type[TrainConfig], *, shown: set[str], title: str):
        super().__init__(title)
        self.config = config
        self.widgets: dict[str, QWidget] = {}
        body = QWidget()
        form = QFormLayout(body)
        form.setContentsMargins(4, 0, 0, 0)
        for name in own_settings(config, shown):
            field = config.model_fields[name]
            self.widgets[name] = setting_widget(name, field)
            form.addRow(name.replace("_", " ") + ":", self.widgets[name])
        self.addWidget(body)
        self.collapse(animate=False)

    def values(self) -> dict[str, Any]:
        """The settings, named as the config's fields (None where an optional one is off)."""
        out: dict[str, Any] = {}
        for name, w in self.widgets.items():
            if isinstance(w, QCheckBox):
                out[name] = w.isChecked()
            elif (
                isinstance(w, QDoubleSpinBox) and w.specialValueText() and w.value() == w.minimum()
            ):
                out[name] = None
            else:
                out[name] = w.value()
        return out

    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values`` (a config's dump): the group's own names only, None as its text."""
        for name, w in self.widgets.items():
            if name not in values:
                continue
            value = values[name]
            if isinstance(w, QCheckBox):
                w.setChecked(bool(value))
            else:
                w.setValue(w.minimum() if value is None else value)

    def reset(self) -> None:
        """Every setting back to the config's default."""
        self.set_values({n: self.config.model_fields[n].default for n in self.widgets})


__all__ = ["GanSettings", "field_bounds", "own_settings", "setting_widget"]
