"""Single-molecule localization (SMLM) movies with known truth: blinking emitters on known
structures, a known drift, and the localizations they give.

The sample is a set of emitters on a structure (:func:`structure`): a square ``"grid"`` of
known spacing, ``"lines"`` labelled every few nm (microtubule-like filaments) or ``"rings"``
(nuclear-pore-like, eight emitters on a circle). Each emitter blinks as a three-state Markov
chain per frame (:class:`Blinking`): off -> on with probability ``p_on``, on -> off with
``p_off``, on -> bleached for good with ``p_bleach``; an emitter that is on emits a
gamma-distributed number of photons with mean ``photons``. The stage drifts along a smooth
known trajectory (:func:`drift_trajectory`): an emitter at sample position ``s`` is seen at
``s + drift(frame)`` on the camera, so that subtracting the drift corrects the positions, as
:class:`~.drift.Drift` defines it.

From one simulation (:func:`simulate_smlm`) come

- :func:`localizations`: the spot table a perfect detector would give, each true position
  moved by a Gaussian error of the emitter's localization precision (Mortensen et al., Nat.
  Methods 7:377, 2010, for a maximum-likelihood fit), for fast tests of drift and merging
  without fitting;
- :func:`movie_frame`, :func:`iter_movie`, :func:`render_movie`, :class:`LazyMovie`: the
  camera frames (the pixel-integrated Gaussian of :mod:`.simulate`, shot noise and the
  camera model), for end-to-end tests.

Positions are in px (pixel centres at integers) as in every spot table; the drift in nm.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from .drift import Drift
from .simulate import Camera, expose, integrated_gaussian

STRUCTURES = ("grid", "lines", "rings")


@dataclass(frozen=True)
class Blinking:
    """Per-frame switching probabilities and the photons of an emitter that is on.

    ``p_on`` (off -> on), ``p_off`` (on -> off) and ``p_bleach`` (on -> bleached) are
    probabilities per frame: the mean on-time is ``1 / (p_off + p_bleach)`` frames and the
    mean off-time ``1 / p_on`` frames. ``photons`` is the mean photon count in a frame when on,
    drawn from a gamma distribution of shape ``photons_shape`` (coefficient of variation
    ``1 / sqrt(photons_shape)``). ``start_on`` is the probability that an emitter is on in the
    first frame.
    """

    p_on: float = 0.002
    p_off: float = 0.5
    p_bleach: float = 0.0
    photons: float = 1500.0
    photons_shape: float = 4.0
    start_on: float = 0.0


class SmlmSimulation(NamedTuple):
    """A simulated acquisition.

    Attributes
    ----------
    truth
        One row per emitter and frame it is on: ``frame``, ``emitter`` (index into
        ``emitters``), ``burst`` (a global id of the emitter's uninterrupted on-period), ``x``,
        ``y`` (px on the camera, drift included, no localization error), ``x_sample``,
        ``y_sample`` (px, without drift), ``photons``, ``background`` (photons/px), ``sigma``
        (PSF, px), ``fiducial`` (a bright marker's row); ``attrs["pixel_size"]`` in nm and
        ``attrs["background"]``.
    drift
        The true drift at every frame (nm).
    emitters
        ``(n, 2)`` sample positions ``(y, x)`` in px.
    shape
        The camera frame ``(rows, columns)``.
    """

    truth: pd.DataFrame
    drift: Drift
    emitters: np.ndarray
    shape: tuple[int, int]


def structure(
    kind: str,
    shape: tuple[int, int],
    *,
    pixel_size: float = 100.0,
    spacing_nm: float | None = None,
    border_px: float = 4.0,
    seed: int = 0,
) -> np.ndarray:
    """Emitter positions ``(n, 2)`` as ``(y, x)`` px inside ``shape`` (``border_px`` from its
    edges).

    Parameters
    ----------
    kind
        ``"grid"``: one emitter on every node of a square grid of pitch ``spacing_nm``
        (default 400 nm); ``"lines"``: straight filaments across the field at random angles,
        one emitter every ``spacing_nm`` along them (default 10 nm), one filament per 1.5 µm of
        the field's side; ``"rings"``: rings of radius 60 nm with eight emitters each, centred
        on a square grid of pitch ``spacing_nm`` (default 500 nm), each ring turned at random.
    """
    if kind not in STRUCTURES:
        raise ValueError(f"structure must be one of {', '.join(STRUCTURES)}, got {kind!r}")
    rng = np.random.default_rng(seed)
    h, w = (float(s) for s in shape)
    lo_y, hi_y, lo_x, hi_x = border_px, h - 1 - border_px, border_px, w - 1 - border_px
    if hi_y <= lo_y or hi_x <= lo_x:
        raise ValueError(f"a {shape[0]}x{shape[1]} frame has no room inside {border_px} px")
    if kind == "lines":
        step = (spacing_nm or 10.0) / pixel_size
        n_lines = max(2, round(max(h, w) * pixel_size / 1500.0))
        points = []
        for _ in range(n_lines):
            cy, cx = rng.uniform(lo_y, hi_y), rng.uniform(lo_x, hi_x)
            angle = rng.uniform(0, np.pi)
            t = np.arange(-np.hypot(h, w), np.hypot(h, w), step)
            points.append(np.column_stack([cy + t * np.sin(angle), cx + t * np.cos(angle)]))
        yx = np.vstack(points)
    else:
        pitch = (spacing_nm or (400.0 if kind == "grid" else 500.0)) / pixel_size
        radius = 0.0 if kind == "grid" else 60.0 / pixel_size  # whole rings only
        ys = np.arange(lo_y + radius, hi_y - radius + 1e-9, pitch)
        xs = np.arange(lo_x + radius, hi_x - radius + 1e-9, pitch)
        yy, xx = (a.ravel() for a in np.meshgrid(ys, xs, indexing="ij"))
        if kind == "grid":
            yx = np.column_stack([yy, xx])
        else:
            phase = rng.uniform(0, 2 * np.pi, yy.size)[:, None] + np.arange(8) * np.pi / 4
            yx = np.column_stack(
                [
                    (yy[:, None] + radius * np.sin(phase)).ravel(),
                    (xx[:, None] + radius * np.cos(phase)).ravel(),
                ]
            )
    inside = (yx[:, 0] >= lo_y) & (yx[:, 0] <= hi_y) & (yx[:, 1] >= lo_x) & (yx[:, 1] <= hi_x)
    return yx[inside]


def drift_trajectory(n_frames: int, amplitude_nm: float = 200.0, *, seed: int = 0) -> Drift:
    """A smooth drift, 0 at frame 0, whose largest distance from its start is ``amplitude_nm``.

    A steady creep in a random direction (two thirds of the motion) plus a slow random wobble
    (a random walk smoothed over a tenth of the movie), as stage drift looks in long
    acquisitions.
    """
    rng = np.random.default_rng(seed)
    n = max(int(n_frames), 1)
    t = np.arange(n) / max(n - 1, 1)
    angle = rng.uniform(0, 2 * np.pi)
    creep = np.outer(t, [np.cos(angle), np.sin(angle)]) * 2.0
    walk = np.cumsum(rng.normal(size=(n, 2)), axis=0)
    width = max(n // 10, 1)
    kernel = np.ones(width) / width
    wobble = np.column_stack([np.convolve(walk[:, i], kernel, mode="same") for i in range(2)])
    wobble -= wobble[0]
    wobble /= max(np.abs(wobble).max(), 1e-12)
    path = creep + wobble
    path -= path[0]
    reach = np.hypot(path[:, 0], path[:, 1]).max()
    path *= amplitude_nm / reach if reach > 0 else 0.0
    return Drift(np.arange(n), path[:, 0].copy(), path[:, 1].copy(), "truth")


def blink(
    n_emitters: int, n_frames: int, blinking: Blinking, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(frame, emitter)`` of every emitter-frame that is on, in frame order."""
    for name in ("p_on", "p_off", "p_bleach", "start_on"):
        p = getattr(blinking, name)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"blinking {name} must be a probability in [0, 1], got {p}")
    if blinking.p_off + blinking.p_bleach > 1.0:
        raise ValueError("blinking p_off + p_bleach must not exceed 1")
    on = rng.random(n_emitters) < blinking.start_on
    alive = np.ones(n_emitters, bool)
    frames, emitters = [], []
    for t in range(n_frames):
        idx = np.flatnonzero(on)
        frames.append(np.full(idx.size, t, np.int64))
        emitters.append(idx)
        u = rng.random(n_emitters)
        bleach = on & (u < blinking.p_bleach)
        off = on & ~bleach & (u < blinking.p_bleach + blinking.p_off)
        switch_on = ~on & alive & (rng.random(n_emitters) < blinking.p_on)
        alive &= ~bleach
        on = (on & ~bleach & ~off) | switch_on
    return np.concatenate(frames), np.concatenate(emitters)


def simulate_smlm(
    n_frames: int = 1000,
    shape: tuple[int, int] = (64, 64),
    *,
    structure_kind: str = "grid",
    spacing_nm: float | None = None,
    pixel_size: float = 100.0,
    blinking: Blinking | None = None,
    drift_nm: float = 200.0,
    sigma: float = 1.3,
    background: float = 10.0,
    fiducials: int = 0,
    fiducial_photons: float = 20000.0,
    seed: int = 0,
) -> SmlmSimulation:
    """Blinking emitters on a structure under a known drift (no camera frames yet).

    Parameters
    ----------
    n_frames, shape
        Length of the movie and the camera frame (px).
    structure_kind, spacing_nm
        See :func:`structure`.
    pixel_size
        Camera pixel (nm).
    blinking
        Switching and photon statistics (default :class:`Blinking`).
    drift_nm
        Largest distance of the drift from its start (nm); see :func:`drift_trajectory`.
    sigma, background
        PSF sigma (px) and background (photons/px).
    fiducials, fiducial_photons
        Bright markers at random places, each seen in 95 % of the frames with a mean of
        ``fiducial_photons`` (coefficient of variation 0.2); they are the last emitters and
        their rows have ``fiducial`` True.
    seed
        Random seed.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    blinking = blinking or Blinking()
    rng = np.random.default_rng(seed)
    emitters = structure(
        structure_kind, shape, pixel_size=pixel_size, spacing_nm=spacing_nm, seed=seed
    )
    drift = drift_trajectory(n_frames, drift_nm, seed=seed + 1)
    frame, emitter = blink(len(emitters), n_frames, blinking, rng)
    scale = blinking.photons / blinking.photons_shape
    photons = rng.gamma(blinking.photons_shape, scale, frame.size)
    n_structure = len(emitters)
    if fiducials > 0:
        h, w = shape
        beads = np.column_stack(
            [rng.uniform(6, h - 7, fiducials), rng.uniform(6, w - 7, fiducials)]
        )
        emitters = np.vstack([emitters, beads])
        seen = rng.random((n_frames, fiducials)) < 0.95
        bead_frame, bead = np.nonzero(seen)
        frame = np.concatenate([frame, bead_frame])
        emitter = np.concatenate([emitter, n_structure + bead])
        photons = np.concatenate([photons, rng.gamma(25.0, fiducial_photons / 25.0, bead.size)])
        order = np.argsort(frame, kind="stable")
        frame, emitter, photons = frame[order], emitter[order], photons[order]
    truth = pd.DataFrame(
        {
            "frame": frame,
            "emitter": emitter,
            "burst": burst_ids(frame, emitter, max_gap=0),
            "x": emitters[emitter, 1] + drift.x_nm[frame] / pixel_size,
            "y": emitters[emitter, 0] + drift.y_nm[frame] / pixel_size,
            "x_sample": emitters[emitter, 1],
            "y_sample": emitters[emitter, 0],
            "photons": photons,
            "background": np.full(frame.size, float(background)),
            "sigma": np.full(frame.size, float(sigma)),
            "fiducial": emitter >= n_structure,
        }
    )
    truth.attrs["pixel_size"] = float(pixel_size)
    truth.attrs["background"] = float(background)
    return SmlmSimulation(truth, drift, emitters, (int(shape[0]), int(shape[1])))


def burst_ids(frame: np.ndarray, emitter: np.ndarray, *, max_gap: int) -> np.ndarray:
    """An id per row: rows of one emitter whose frames are at most ``max_gap`` frames apart
    (``max_gap`` missing frames between them) share it. The number of distinct ids is the
    true count that merging blinks with that gap should find."""
    frame, emitter = np.asarray(frame), np.asarray(emitter)
    order = np.lexsort((frame, emitter))
    f, e = frame[order], emitter[order]
    new = np.ones(f.size, bool)
    new[1:] = (e[1:] != e[:-1]) | (f[1:] - f[:-1] > max_gap + 1)
    ids = np.empty(f.size, np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids


def true_molecule_count(truth: pd.DataFrame, max_gap: int) -> int:
    """How many molecules merging with ``max_gap`` should report: the emitters' on-periods,
    those separated by at most ``max_gap`` dark frames joined."""
    if len(truth) == 0:
        return 0
    return int(np.unique(burst_ids(truth["frame"], truth["emitter"], max_gap=max_gap)).size)


def mle_precision(photons: np.ndarray, background: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Localization precision (px) of a maximum-likelihood fit of a Gaussian spot: Mortensen et
    al. 2010 (Nat. Methods 7:377, eq. 5) with the pixel-size correction ``sa^2 = sigma^2 +
    1/12`` and ``tau = 2 pi sa^2 b / N`` (``b`` photons per px of background)."""
    n = np.maximum(np.asarray(photons, float), 1e-9)
    sa2 = np.asarray(sigma, float) ** 2 + 1.0 / 12.0
    tau = 2 * np.pi * sa2 * np.asarray(background, float) / n
    return np.sqrt(sa2 / n * (1 + 4 * tau + np.sqrt(2 * tau / (1 + 4 * tau))))


def localizations(sim: SmlmSimulation, *, seed: int = 0) -> pd.DataFrame:
    """The spot table of ``sim``'s truth as a detector and an ideal fitter would give it.

    Every true position is moved by Gaussian noise of its :func:`mle_precision`, reported as
    its ``uncertainty`` (px); ``class`` is good, ``frame`` and the photons and background as
    simulated; the columns ``emitter`` and ``burst`` are kept so that tests can check
    merging. ``attrs["pixel_size"]`` is the simulation's.
    """
    table = truth_table(sim)
    rng = np.random.default_rng(seed)
    for axis in ("y", "x"):
        table[axis] += rng.normal(size=len(table)) * table["uncertainty"].to_numpy()
    return table.drop(columns=["x_sample", "y_sample", "fiducial"])


def truth_table(sim: SmlmSimulation) -> pd.DataFrame:
    """``sim``'s truth as a spot table (for the CSV writer): the true camera positions (drift
    included, no localization error), ``uncertainty`` the precision a fit would have
    (:func:`mle_precision`), ``x_sample``, ``y_sample``, ``emitter``, ``burst``, ``fiducial``."""
    truth = sim.truth
    table = pd.DataFrame(
        {
            "frame": truth["frame"].to_numpy(),
            "z": np.zeros(len(truth), np.int64),
            "y": truth["y"].to_numpy(),
            "x": truth["x"].to_numpy(),
            "photons": truth["photons"].to_numpy(),
            "background": truth["background"].to_numpy(),
            "sigma": truth["sigma"].to_numpy(),
            "uncertainty": mle_precision(truth["photons"], truth["background"], truth["sigma"]),
            "class": np.full(len(truth), "good", object),
            "emitter": truth["emitter"].to_numpy(),
            "burst": truth["burst"].to_numpy(),
            "x_sample": truth["x_sample"].to_numpy(),
            "y_sample": truth["y_sample"].to_numpy(),
            "fiducial": truth["fiducial"].to_numpy(),
        }
    )
    table.attrs["pixel_size"] = truth.attrs["pixel_size"]
    return table


def movie_frame(
    sim: SmlmSimulation, t: int, *, camera: Camera | None = None, seed: int = 0
) -> np.ndarray:
    """Camera frame ``t`` (uint16 ADU) of ``sim``; each frame has its own noise stream, so any
    frame can be drawn alone and always comes out the same."""
    camera = camera or Camera()
    rng = np.random.default_rng([seed, t])
    truth = sim.truth
    a, b = np.searchsorted(truth["frame"].to_numpy(), [t, t + 1])
    rows = truth.iloc[a:b]
    expected = integrated_gaussian(
        sim.shape,
        rows["y"].to_numpy(),
        rows["x"].to_numpy(),
        rows["sigma"].to_numpy(),
        rows["photons"].to_numpy(),
    )
    return expose(expected + float(truth.attrs.get("background", 0.0)), camera, rng)


def iter_movie(
    sim: SmlmSimulation, *, camera: Camera | None = None, seed: int = 0
) -> Iterator[np.ndarray]:
    """The camera frames of ``sim``, one at a time (bounded memory for long movies)."""
    for t in range(len(sim.drift.frames)):
        yield movie_frame(sim, t, camera=camera, seed=seed)


def render_movie(sim: SmlmSimulation, *, camera: Camera | None = None, seed: int = 0) -> np.ndarray:
    """All camera frames of ``sim`` as one ``(T, Y, X)`` uint16 stack."""
    out = np.empty((len(sim.drift.frames), *sim.shape), np.uint16)
    for t, frame in enumerate(iter_movie(sim, camera=camera, seed=seed)):
        out[t] = frame
    return out


class LazyMovie:
    """The frames of a simulation as an array-like ``(T, Y, X)`` uint16 that draws a frame
    (:func:`movie_frame`) when it is indexed: ``movie[t]``; for writing a long movie plane by
    plane in bounded memory (``ImageData(..., lazy=True)``)."""

    def __init__(self, sim: SmlmSimulation, camera: Camera | None = None, seed: int = 0):
        self.sim, self.camera, self.seed = sim, camera, seed
        self.shape = (len(sim.drift.frames), *sim.shape)
        self.dtype = np.dtype(np.uint16)
        self.ndim = 3

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        t = index[0] if isinstance(index, tuple) and len(index) == 1 else index
        if not isinstance(t, int | np.integer):
            raise TypeError("a LazyMovie is indexed by one frame number")
        if not -self.shape[0] <= t < self.shape[0]:
            raise IndexError(f"frame {t} of a {self.shape[0]}-frame movie")
        return movie_frame(self.sim, int(t) % self.shape[0], camera=self.camera, seed=self.seed)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = render_movie(self.sim, camera=self.camera, seed=self.seed)
        return out if dtype is None else out.astype(dtype)


__all__ = [
    "STRUCTURES",
    "Blinking",
    "LazyMovie",
    "SmlmSimulation",
    "blink",
    "burst_ids",
    "drift_trajectory",
    "iter_movie",
    "localizations",
    "mle_precision",
    "movie_frame",
    "render_movie",
    "simulate_smlm",
    "structure",
    "true_molecule_count",
    "truth_table",
]
