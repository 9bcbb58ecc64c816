"""Noise added from file to file: what ``celldenoise add-noise`` runs and what the spec that
the Noise dock records with its "Add noise" layer replays (the same seed, the same pixels)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..jobs import Done, Event, ShouldStop, never_stop
from ..jobs.specs import AddNoiseSpec, SpecError


@dataclass(frozen=True)
class NoiseResult:
    """What an add-noise run wrote."""

    output: str
    axes: str
    shape: tuple[int, ...]
    dtype: np.dtype


def run_add_noise_spec(
    spec: AddNoiseSpec, *, should_stop: ShouldStop = never_stop
) -> Iterator[Event]:
    """Read the input, add ``spec.config``'s noise, write the OME-TIFF; ``Done(NoiseResult)``
    last.

    Raises
    ------
    SpecError
        For an input the noise cannot take (non-numeric or complex pixels, negative
        intensities for Poisson noise); :class:`~..io.errors.ImageReadError` for a bad file.
    """
    from ..io import write_ome_tiff
    from ..jobs.provenance import provenance_for

    source = spec.input.path
    image = spec.input.read()
    data = np.asarray(image.data)
    if not np.issubdtype(data.dtype, np.number) or np.issubdtype(data.dtype, np.complexfloating):
        raise SpecError(f"{source}: cannot add noise to {data.dtype} data")
    try:
        noisy = spec.config.apply(data)
    except ValueError as exc:
        raise SpecError(f"{source}: {exc}") from None
    if should_stop():
        yield Done(None, stopped=True)
        return
    written = write_ome_tiff(
        spec.output,
        image.with_data(noisy),
        overwrite=spec.overwrite,
        inputs=[source],
        provenance=provenance_for(spec, source),
    )
    yield Done(NoiseResult(written, image.axes, tuple(noisy.shape), noisy.dtype))


__all__ = ["NoiseResult", "run_add_noise_spec"]
