"""A super-resolution render of a spot table as a job: in chunks, with progress and Cancel.

The Super-resolution dock and scripts render a table (px, ``attrs["pixel_size"]`` nm) at a
magnification; the localizations are splatted in chunks onto one image of a fixed extent
(:mod:`.render`), so that a render of millions of localizations reports progress and stops
between chunks.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from ..jobs.events import Done, Event, Progress, ShouldStop, never_stop
from .render import Rendered, RenderError, default_extent, render_gaussian, render_histogram
from .resolution import table_positions_nm

METHODS = ("gaussian", "histogram")
CHUNK = 250_000
"""Localizations splatted between two checks of ``should_stop``."""


def render_table_job(
    table: pd.DataFrame,
    *,
    method: str = "gaussian",
    magnification: float = 10.0,
    should_stop: ShouldStop = never_stop,
) -> Iterator[Event]:
    """Render ``table`` with a pixel of ``pixel_size / magnification`` nm.

    ``gaussian``: each localization a Gaussian of its own ``uncertainty``; ``histogram``:
    localizations per pixel. Yields Progress per chunk, then ``Done(Rendered)``.

    Raises
    ------
    RenderError
        No localizations, a bad magnification, or no uncertainty for the gaussian render.
    """
    if method not in METHODS:
        raise RenderError(f"the render method must be one of {', '.join(METHODS)}, got {method!r}")
    if not np.isfinite(magnification) or magnification <= 0:
        raise RenderError(f"the magnification must be a positive number, got {magnification:g}")
    ps = float(table.attrs.get("pixel_size") or 100.0)
    pixel_nm = ps / magnification
    x, y = table_positions_nm(table)
    sigma = None
    margin = 0.0
    if method == "gaussian":
        if "uncertainty" not in table:
            raise RenderError("no uncertainty column for the gaussian render: use histogram")
        sigma = pd.to_numeric(table["uncertainty"], errors="coerce").to_numpy(float) * ps
        finite = sigma[np.isfinite(sigma)]
        wide = max(float(np.percentile(finite, 99)) if finite.size else 0.0, pixel_nm / 2)
        margin = 3.0 * wide + 2 * pixel_nm  # the 3-sigma windows of render_gaussian
    extent = default_extent(x, y, pixel_nm, margin)
    image = None
    starts = range(0, x.size, CHUNK)
    for k, start in enumerate(starts):
        if should_stop():
            yield Done(None, stopped=True)
            return
        part = slice(start, start + CHUNK)
        if sigma is None:
            r = render_histogram(x[part], y[part], pixel_nm=pixel_nm, extent=extent)
        else:
            r = render_gaussian(x[part], y[part], sigma[part], pixel_nm=pixel_nm, extent=extent)
        image = r.image if image is None else image + r.image
        yield Progress(k + 1, len(starts), f"rendered {min(start + CHUNK, x.size):,} of {x.size:,}")
    assert image is not None
    yield Done(Rendered(image, pixel_nm, (extent[0], extent[2])))
