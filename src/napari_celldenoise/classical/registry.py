"""The methods: name -> function, parameters (types, limits, slider ranges, units), main parameter.

Used by the command line (``celldenoise filter --method M --param NAME=VALUE``), the "Classical
denoise" dock (one slider per parameter) and the benchmarks, so that all three agree.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import bragg, filters, impulse
from .params import ImageTooSmall, Param, ParamError, Value, resolve
from .vst import GAT


@dataclass(frozen=True)
class Method:
    """One denoising or impulse-repair method.

    Attributes
    ----------
    name, title, summary
        Registry key (CLI ``--method``), label in the dock, one line of description.
    func
        ``func(x, spacing=..., **params)`` on one 2D plane or 3D block, float32 result.
    params
        Parameter specifications, in slider order.
    main
        The parameter auto-tuning searches (None: the method cannot be auto-tuned).
    heavy
        Too slow for a synchronous preview: the dock computes it in a worker.
    impulse
        Detects and replaces outlier pixels only (salt-and-pepper repair).
    tune_replacement
        How auto-tuning fills the masked pixels: ``mean`` or ``random`` neighbour (see
        :func:`.autotune.autotune_job`).
    too_small
        ``too_small(shape, params)``: why a block of ``shape`` is below the method's minimum
        size with these parameters (None when it is not). Checked by :meth:`check_size`
        before any work, because some libraries fail on small blocks with a traceback or a
        crash of the whole process.
    """

    name: str
    title: str
    summary: str
    func: Callable[..., np.ndarray]
    params: tuple[Param, ...]
    main: str | None = None
    heavy: bool = False
    impulse: bool = False
    tune_replacement: str = "mean"
    too_small: Callable[[tuple[int, ...], Mapping[str, Any]], str | None] | None = None

    def check_size(self, shape: tuple[int, ...], params: Mapping[str, Any] | None = None) -> None:
        """:class:`ImageTooSmall` when a block of ``shape`` is below this method's minimum."""
        if self.too_small is None:
            return
        why = self.too_small(tuple(int(n) for n in shape), params or {})
        if why:
            size = " x ".join(str(int(n)) for n in shape)
            raise ImageTooSmall(f"{self.name}: a block of {size} px is too small: it {why}")

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ParamError(f"{self.name} has no parameter {name!r}")

    def resolve(self, given: Mapping[str, Any] | None = None, *, sigma: float = 1.0) -> dict:
        """Checked parameter values: the given ones over the (noise-scaled) defaults."""
        return resolve(self.params, given or {}, sigma=sigma, method=self.name)

    def __call__(
        self,
        x: np.ndarray,
        params: Mapping[str, Value],
        *,
        spacing: Any = None,
        noise_sigma: float | None = None,
        gat: GAT | None = None,
    ) -> np.ndarray:
        """Run on one 2D plane or 3D block; float32 (float64 kept for impulse repair)."""
        self.check_size(np.shape(x), params)
        kwargs = dict(params)
        accepted = inspect.signature(self.func).parameters
        if "sigma" in accepted and "sigma" not in kwargs and noise_sigma is not None:
            kwargs["sigma"] = float(noise_sigma)  # the noise level NLM needs
        if "gat" in accepted:
            kwargs["gat"] = gat
        return self.func(x, spacing=spacing, **kwargs)


def _intensity(name: str, default: float, slider: tuple[float, float], help: str) -> Param:
    return Param(
        name,
        default,
        low=0.0,
        low_open=True,
        slider=slider,
        unit="intensity",
        help=help,
        relative=True,
        log=True,
    )


# Smallest side of a block BM3D and BM4D accept. Below it the bm3d/bm4d packages raise "Image
# cannot be smaller than block size!", and at exactly the block size they crash the process
# (a segmentation fault, checked with bm3d 4.0 on 8x8 "np", 11x11 "vn" and BM4D on 5x5x5 and
# 8x8x1): the minimum is one more than the profile's largest block (hard-thresholding 8, Wiener
# 8 for "np"/"high", 11 for "vn"; BM4D 4 and 5 per side).
BM3D_MIN_SIDE = {"np": 9, "high": 9, "vn": 12}
BM4D_MIN_SIDE = 6


def _bm3d_too_small(shape: tuple[int, ...], params: Mapping[str, Any]) -> str | None:
    if len(shape) >= 3:
        need, what = BM4D_MIN_SIDE, "in 3D (BM4D)"
    else:
        profile = str(params.get("profile", "vn"))
        need, what = BM3D_MIN_SIDE.get(profile, max(BM3D_MIN_SIDE.values())), f"(profile {profile})"
    if min(shape) < need:
        hint = "; filter plane by plane (no 3D) or" if len(shape) >= 3 else ";"
        return f"needs at least {need} px on every side {what}{hint} choose another method"
    return None


def _bragg_too_small(shape: tuple[int, ...], params: Mapping[str, Any]) -> str | None:
    """The lattice is measured from each plane's FFT: planes under 16 x 16 px hold no lattice."""
    if min(shape[-2:]) < bragg.MIN_SIDE:
        return (
            f"needs planes of at least {bragg.MIN_SIDE} x {bragg.MIN_SIDE} px to measure a lattice"
        )
    return None


def _lof_too_small(shape: tuple[int, ...], params: Mapping[str, Any]) -> str | None:
    k = int(params.get("k", 20))
    if math.prod(shape) <= k:
        return f"needs more than k={k} pixels for k={k} neighbours; lower k"
    return None


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    METHODS[method.name] = method
    return method


register(
    Method(
        "gaussian",
        "Gaussian",
        "Gaussian smoothing (OpenCV)",
        filters.gaussian,
        (
            Param(
                "sigma",
                1.0,
                low=0.0,
                low_open=True,
                high=50.0,
                slider=(0.3, 5.0),
                unit="px",
                help="standard deviation of the kernel",
                log=True,
            ),
        ),
        main="sigma",
    )
)
register(
    Method(
        "median",
        "Median",
        "median of a square window (OpenCV / scipy)",
        filters.median,
        (
            Param(
                "size",
                3,
                kind="odd",
                low=3,
                high=51,
                slider=(3, 15),
                unit="px",
                help="window width (odd)",
            ),
        ),
        main="size",
    )
)
register(
    Method(
        "bilateral",
        "Bilateral",
        "edge-preserving bilateral filter (OpenCV)",
        filters.bilateral,
        (
            _intensity(
                "sigma_color", 2.0, (0.2, 10.0), "intensity difference that halves the weight"
            ),
            Param(
                "sigma_spatial",
                1.5,
                low=0.0,
                low_open=True,
                high=20.0,
                slider=(0.5, 6.0),
                unit="px",
                help="spatial standard deviation (window radius 1.5 x)",
            ),
        ),
        main="sigma_color",
    )
)
register(
    Method(
        "nlm",
        "Non-local means",
        "non-local means, fast mode (scikit-image)",
        filters.nlm,
        (
            _intensity("h", 0.8, (0.1, 3.0), "patch distance cut-off: larger smooths more"),
            Param(
                "patch_size",
                5,
                kind="int",
                low=1,
                high=15,
                slider=(3, 9),
                unit="px",
                help="patch width",
            ),
            Param(
                "patch_distance",
                6,
                kind="int",
                low=1,
                high=30,
                slider=(2, 15),
                unit="px",
                help="search radius",
            ),
        ),
        main="h",
        heavy=True,
    )
)
register(
    Method(
        "anisotropic",
        "Anisotropic diffusion",
        "Perona-Malik diffusion",
        filters.anisotropic,
        (
            Param(
                "iterations",
                10,
                kind="int",
                low=1,
                high=1000,
                slider=(1, 100),
                unit="iterations",
                help="number of diffusion steps",
                log=True,
            ),
            _intensity("kappa", 3.0, (0.3, 20.0), "gradient above which diffusion stops"),
            Param(
                "step",
                0.2,
                low=0.0,
                low_open=True,
                high=0.25,
                slider=(0.02, 0.25),
                help="time step (at most 0.25 in 2D, 1/6 in 3D)",
            ),
            Param(
                "conduction",
                "exponential",
                kind="choice",
                choices=("exponential", "quadratic"),
                help="exp(-(g/k)^2) favours high-contrast edges, 1/(1+(g/k)^2) wide regions",
            ),
        ),
        main="iterations",
        heavy=True,
    )
)
register(
    Method(
        "tv",
        "Total variation",
        "total-variation denoising, Chambolle (scikit-image)",
        filters.tv,
        (
            _intensity("weight", 2.0, (0.1, 10.0), "regularisation weight: larger is flatter"),
            Param(
                "max_iter",
                200,
                kind="int",
                low=1,
                high=5000,
                slider=(10, 500),
                unit="iterations",
                help="iteration limit",
                log=True,
            ),
        ),
        main="weight",
        heavy=True,
    )
)
register(
    Method(
        "wavelet",
        "Wavelet",
        "wavelet shrinkage (scikit-image)",
        filters.wavelet,
        (
            _intensity("sigma", 1.0, (0.1, 5.0), "noise level the thresholds assume"),
            Param(
                "method",
                "BayesShrink",
                kind="choice",
                choices=("BayesShrink", "VisuShrink"),
                help="adaptive per sub-band or universal threshold",
            ),
            Param("mode", "soft", kind="choice", choices=("soft", "hard"), help="thresholding"),
            Param(
                "wavelet",
                "db2",
                kind="choice",
                choices=("db1", "db2", "db4", "sym4", "coif1"),
                help="wavelet family",
            ),
        ),
        main="sigma",
    )
)
register(
    Method(
        "bm3d",
        "BM3D",
        "block matching and 3D filtering (bm3d package; slow, strong)",
        filters.bm3d,
        (
            _intensity("sigma", 1.0, (0.1, 5.0), "noise standard deviation"),
            Param(
                "profile",
                "vn",
                kind="choice",
                choices=("vn", "np", "high"),
                help="bm3d profile: very noisy (default: low-light microscopy), normal, "
                "high quality",
            ),
        ),
        main="sigma",
        heavy=True,
        # BM3D is told the noise level: masked pixels must keep it (see autotune_job)
        tune_replacement="random",
        too_small=_bm3d_too_small,
    )
)
register(
    Method(
        "adaptive-median",
        "Adaptive median (impulses)",
        "salt-and-pepper repair: adaptive median test with a noise margin",
        impulse.adaptive_median_filter,
        (
            Param(
                "max_size",
                7,
                kind="odd",
                low=3,
                high=21,
                slider=(3, 15),
                unit="px",
                help="largest window",
            ),
            Param(
                "threshold",
                4.0,
                low=0.0,
                low_open=True,
                high=100.0,
                slider=(1.0, 10.0),
                unit="noise σ",
                help="minimum distance from the window median",
            ),
        ),
        impulse=True,
    )
)
register(
    Method(
        "kde-lof",
        "KDE-LOF (impulses)",
        "salt-and-pepper repair: kernel-density local outlier factor (Latecki et al. 2007)",
        impulse.kde_lof_filter,
        (
            Param("k", 20, kind="int", low=3, high=200, slider=(5, 60), help="neighbours"),
            Param(
                "h",
                1.0,
                low=0.0,
                low_open=True,
                high=10.0,
                slider=(0.3, 3.0),
                help="kernel width in k-distances",
            ),
            Param(
                "threshold",
                5.0,
                low=1.0,
                high=10.0,
                slider=(1.5, 9.5),
                help="local density factor above which a pixel is an outlier (max 10)",
            ),
        ),
        heavy=True,
        impulse=True,
        too_small=_lof_too_small,
    )
)
register(
    Method(
        "gridlof",
        "GridLOF (impulses)",
        "salt-and-pepper repair: grid-pruned local outlier factor (Chiu and Fu 2003)",
        impulse.grid_lof_filter,
        (
            Param("k", 20, kind="int", low=3, high=200, slider=(5, 60), help="neighbours"),
            Param(
                "threshold",
                4.0,
                low=1.0,
                high=1000.0,
                slider=(1.5, 20.0),
                help="local outlier factor above which a pixel is an outlier",
                log=True,
            ),
            Param(
                "cell",
                8,
                kind="int",
                low=2,
                high=64,
                slider=(4, 32),
                unit="px",
                help="grid cell width",
            ),
            Param(
                "min_count",
                8,
                kind="int",
                low=1,
                high=4096,
                slider=(2, 32),
                help="pixels that make a cell dense (pruned)",
            ),
        ),
        heavy=True,
        impulse=True,
        too_small=_lof_too_small,
    )
)

register(
    Method(
        "bragg",
        "Bragg (Fourier) filter",
        "keep the Bragg peaks of the measured lattice (atomic-resolution images; fills vacancies)",
        bragg.bragg,
        (
            Param(
                "radius",
                0.08,
                low=0.0,
                low_open=True,
                high=0.5,
                slider=(0.02, 0.3),
                unit="x |g|",
                help="Gaussian radius kept around each Bragg peak, a fraction of the first "
                "peak's frequency (larger keeps more defects and noise)",
                log=True,
            ),
            Param(
                "lowpass",
                0.0,
                low=0.0,
                high=1.0,
                slider=(0.0, 0.8),
                unit="x |g|",
                help="low frequencies kept (thickness, dents), a fraction of the first peak's "
                "frequency; 0 keeps only the mean",
            ),
        ),
        main="radius",
        heavy=True,
        too_small=_bragg_too_small,
    )
)


def get_method(name: str) -> Method:
    """The method called ``name``; :class:`ParamError` listing the known ones otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ParamError(f"unknown method {name!r} (methods: {', '.join(METHODS)})") from None


def method_names() -> list[str]:
    return list(METHODS)


def describe(method: Method) -> list[str]:
    """Lines for ``--help``: one per parameter with its default and range."""
    lines = []
    for p in method.params:
        if p.kind == "choice":
            rng = "|".join(p.choices)
            default = p.default
        else:
            rng = p.range_text()
            default = f"{p.default} x noise sigma" if p.relative else p.default
        lines.append(f"{method.name}.{p.name}={default}  {rng}  {p.help}")
    return lines
