"""Sample data for napari's File > Open Sample menu, made in code (nothing downloaded)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..spots.simulate import simulate_spots
from ..synthetic import fluorescence_image, fluorescence_volume

LayerData = list[tuple[Any, dict, str]]


def noisy_cells() -> LayerData:
    """A noisy fluorescence image (0.1 µm pixels) and its clean version."""
    noisy, clean = fluorescence_image((512, 512), seed=1)
    common = {"scale": (0.1, 0.1), "units": ("µm", "µm"), "axis_labels": ("Y", "X")}
    limits = (float(clean.min()), float(np.percentile(clean, 99.9)))
    return [
        (
            clean,
            {**common, "name": "cells (clean)", "visible": False, "contrast_limits": limits},
            "image",
        ),
        (noisy, {**common, "name": "cells (noisy)", "contrast_limits": limits}, "image"),
    ]


def spot_movie() -> LayerData:
    """A time stack of diffraction-limited spots (100 nm pixels) and their true positions."""
    frames, truth = simulate_spots(20, (128, 128), n_spots=25, seed=2)
    scale = (1.0, 0.1, 0.1)
    points = np.column_stack([truth["frame"], truth["y"], truth["x"]])
    return [
        (
            frames,
            {
                "name": "spots",
                "scale": scale,
                "units": ("pixel", "µm", "µm"),
                "axis_labels": ("T", "Y", "X"),
            },
            "image",
        ),
        (
            points,
            {
                "name": "spots (truth)",
                "scale": scale,
                "size": 0.6,
                "face_color": "transparent",
                "border_color": "lime",
                "units": ("pixel", "µm", "µm"),
                "features": {"photons": truth["photons"]},
                "visible": False,
            },
            "points",
        ),
    ]


def volume() -> LayerData:
    """A small noisy 3D volume of nuclei (0.5 µm z-steps, 0.2 µm pixels)."""
    noisy, _ = fluorescence_volume((32, 128, 128), seed=3)
    return [
        (
            noisy,
            {
                "name": "nuclei volume",
                "scale": (0.5, 0.2, 0.2),
                "units": ("µm", "µm", "µm"),
                "axis_labels": ("Z", "Y", "X"),
            },
            "image",
        )
    ]
