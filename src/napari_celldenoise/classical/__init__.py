"""Classical denoising (pure numpy/scipy/scikit-image/OpenCV/bm3d/scikit-learn; no Qt).

* :mod:`.registry` -- the methods, their parameters (limits, slider ranges, units) and main
  parameter, shared by the command line and the dock.
* :mod:`.filters` -- gaussian, median, bilateral, nlm, anisotropic, tv, wavelet, bm3d.
* :mod:`.impulse` -- salt-and-pepper repair: adaptive-median, kde-lof, gridlof.
* :mod:`.vst` -- generalized Anscombe transform and its exact unbiased inverse.
* :mod:`.noise` -- Poisson-Gaussian / Gaussian noise estimation; adding noise.
* :mod:`.metrics` -- PSNR, SSIM, affine-fitted PSNR.
* :mod:`.autotune` -- Noise2Self J-invariant parameter search.
* :mod:`.apply` -- whole images and stacks, per plane or true 3D, as a job generator.
"""

from .apply import denoise, denoise_job, noise_info, plan_blocks
from .autotune import TuneResult, autotune, autotune_job
from .metrics import compare, psnr, psnr_affine, ssim
from .noise import NoiseFit, estimate_noise, estimate_noise_stack, estimate_sigma
from .params import Param, ParamError
from .registry import METHODS, Method, get_method, method_names
from .vst import GAT

__all__ = [
    "GAT",
    "METHODS",
    "Method",
    "NoiseFit",
    "Param",
    "ParamError",
    "TuneResult",
    "autotune",
    "autotune_job",
    "compare",
    "denoise",
    "denoise_job",
    "estimate_noise",
    "estimate_noise_stack",
    "estimate_sigma",
    "get_method",
    "method_names",
    "noise_info",
    "plan_blocks",
    "psnr",
    "psnr_affine",
    "ssim",
]
