"""The steps after the fit for single-molecule localization movies: drift correction, then
merging of blinks, as a :class:`~..jobs.specs.SmlmSteps` describes them.

:func:`drift_and_merge` is what a spots job runs before it writes its table; it reports the
drift it found and the counts before and after merging as lines for the user.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from ..jobs import Event, Log, ShouldStop, never_stop
from ..jobs.errors import Cancelled
from .drift import Drift, apply_drift, estimate_drift
from .merge import merge_blinks

if TYPE_CHECKING:
    from ..jobs.specs import SmlmSteps


class SmlmOutcome(NamedTuple):
    """The table after the steps, the drift (None without drift correction), the report lines,
    and whether a stop request ended the steps early (the table is then unusable)."""

    table: pd.DataFrame
    drift: Drift | None
    lines: tuple[str, ...]
    stopped: bool = False


def drift_and_merge(
    table: pd.DataFrame,
    steps: SmlmSteps,
    *,
    n_frames: int,
    should_stop: ShouldStop = never_stop,
) -> Iterator[Event]:
    """Correct the drift and merge the blinks of ``table``; yields progress and log events and
    returns an :class:`SmlmOutcome` (use ``yield from``).

    The drift is estimated from the localizations of class good (all of them when the table
    has no class) over ``n_frames`` frames and subtracted from every localization; blinks merge
    within their class.

    Raises
    ------
    DriftError
        The localizations cannot give a drift (too few, no fiducials).
    """
    lines: list[str] = []
    drift = None
    if steps.drift != "none" and len(table):
        good = _good(table)
        source = table[good].copy()
        source.attrs = dict(table.attrs)
        source.attrs["n_frames"] = max(int(n_frames), int(table["frame"].max()) + 1)
        yield Log(f"estimating the drift ({steps.drift}) from {int(good.sum())} localizations")
        try:
            drift = estimate_drift(source, method=steps.drift, should_stop=should_stop)
        except Cancelled:
            return SmlmOutcome(table, None, (), stopped=True)
        table = apply_drift(table, drift)
        reach = float(np.hypot(drift.x_nm, drift.y_nm).max())
        lines.append(
            f"drift ({steps.drift}): up to "
            f"{reach:.0f} nm over {len(drift.frames)} frames, subtracted (raw positions in "
            "x_raw, y_raw)"
        )
        yield Log(lines[-1])
    if steps.merge_radius_nm is not None and len(table):
        if should_stop():
            return SmlmOutcome(table, drift, tuple(lines), stopped=True)
        before = len(table)
        table = _merge_by_class(table, steps.merge_radius_nm, steps.merge_gap)
        lines.append(
            f"merged blinks within {steps.merge_radius_nm:g} nm, up to {steps.merge_gap} "
            f"missing frames: {before} localizations -> {len(table)} molecules"
        )
        yield Log(lines[-1])
    return SmlmOutcome(table, drift, tuple(lines))


def _good(table: pd.DataFrame) -> np.ndarray:
    if "class" not in table:
        return np.ones(len(table), bool)
    good = table["class"].astype(str).to_numpy() == "good"
    return good if good.any() else np.ones(len(table), bool)


def _merge_by_class(table: pd.DataFrame, radius_nm: float, gap: int) -> pd.DataFrame:
    if "class" not in table:
        return merge_blinks(table, radius_nm=radius_nm, max_gap=gap)
    parts = []
    for _, part in table.groupby(table["class"].astype(str), sort=False):
        part.attrs = dict(table.attrs)
        parts.append(merge_blinks(part, radius_nm=radius_nm, max_gap=gap))
    merged = pd.concat(parts, ignore_index=True)
    merged = merged.sort_values("frame", kind="stable").reset_index(drop=True)
    merged.attrs = dict(table.attrs)
    merged.attrs["merged_from"] = len(table)
    return merged


__all__ = ["SmlmOutcome", "drift_and_merge"]
