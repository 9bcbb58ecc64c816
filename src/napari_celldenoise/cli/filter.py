"""``celldenoise filter IN -o OUT --method M [--param NAME=VALUE ...] [--auto-tune] [--vst]``.

Writes OUT (OME-TIFF) with the input's shape, axes and scale, in the input's intensity units:
float input stays float, integer input becomes float32 unless ``--keep-dtype``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from ..classical.params import ParamError, parse_assignments
from ..classical.registry import METHODS, describe, get_method
from ..io import write_ome_tiff
from ._classical import add_output_options
from .errors import CliError
from .progress import StderrProgress


def _epilog() -> str:
    lines = ["methods and parameters (NAME=default  range  meaning):"]
    for m in METHODS.values():
        lines.append(f"  {m.name}: {m.summary}")
        lines.extend(f"      {line.split('.', 1)[1]}" for line in describe(m))
    lines.append(
        "Intensity parameters are in the image's units (with --vst: in stabilised units, noise "
        "sigma 1); their defaults are multiples of the estimated noise sigma."
    )
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "filter",
        help="denoise an image or stack with a classical filter or repair salt-and-pepper noise",
        description="Denoise IN with one method and write OUT as OME-TIFF with the same shape, "
        "axes and scale, in the input's intensity units.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="IN", help="TIFF, OME-TIFF, ImageJ TIFF or PNG")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="OME-TIFF to write")
    p.add_argument("--method", required=True, metavar="M", help=f"one of: {', '.join(METHODS)}")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a parameter (repeatable); see the list below",
    )
    p.add_argument(
        "--auto-tune",
        action="store_true",
        help="choose the main parameter by the Noise2Self J-invariant loss "
        "(on the middle plane or block) before filtering",
    )
    p.add_argument(
        "--vst",
        action="store_true",
        help="filter inside a generalized Anscombe transform (Poisson-Gaussian "
        "noise, parameters estimated from the image) with the exact unbiased inverse",
    )
    p.add_argument(
        "--noise-a",
        type=float,
        default=None,
        metavar="A",
        help="Poisson gain a for --vst (default: estimated)",
    )
    p.add_argument(
        "--noise-b",
        type=float,
        default=None,
        metavar="B",
        help="Gaussian variance b for --vst (default: estimated)",
    )
    p.add_argument(
        "--3d",
        dest="three_d",
        action="store_true",
        help="filter ZYX volumes (TYX without Z) as true 3D blocks instead of plane by plane",
    )
    add_output_options(p)
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (parameters, auto-tune curve, timing)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..classical.apply import (
        denoise_job,
        describe_params,
        noise_info,
        output_dtype,
        plan_blocks,
        spacing_for,
    )
    from ..classical.autotune import autotune_job
    from ..classical.vst import GAT
    from ..jobs import run as run_job
    from ._classical import check_output, print_json, read

    try:
        method = get_method(args.method)
        given: dict[str, Any] = parse_assignments(args.param)
        method.resolve(given)  # unknown names and out-of-range values, before reading
    except ParamError as exc:
        raise CliError(str(exc)) from None
    if (args.noise_a is None) != (args.noise_b is None):
        raise CliError("give both --noise-a and --noise-b, or neither")
    if args.noise_a is not None and args.noise_a < 0:
        raise CliError(f"--noise-a must be >= 0, got {args.noise_a}")
    if args.auto_tune and method.main is None:
        raise CliError(f"--auto-tune is not available for {method.name}")
    if args.auto_tune and method.main in given:
        raise CliError(f"--auto-tune chooses {method.main}: do not also set it with --param")
    check_output(args.output, args.overwrite)
    image = read(args.input, args.axes)
    if image.rgb:
        raise CliError(f"{args.input}: RGB images are not supported; split the colours first")
    if not np.issubdtype(image.dtype, np.number) or np.issubdtype(image.dtype, np.complexfloating):
        raise CliError(f"{args.input}: cannot filter {image.dtype} data")
    progress = StderrProgress(quiet=args.quiet)
    start = time.monotonic()
    gat = None
    if args.vst and args.noise_a is not None:
        gat = GAT(float(args.noise_a), float(args.noise_b))
    info = noise_info(image.data, image.axes, vst=args.vst and gat is None)
    if args.vst and gat is None:
        gat = info.gat
        if info.fit is not None and not args.quiet:
            print(
                f"noise: {info.fit.model}, a={info.fit.a:.4g}, b={info.fit.b:.4g}", file=sys.stderr
            )
    plan = plan_blocks(image.shape, image.axes, args.three_d)
    tune = None
    if args.auto_tune:
        where = plan.blocks[len(plan.blocks) // 2]
        block = np.asarray(image.data[plan.index(image.axes, where)], dtype=np.float32)
        max_pixels = 512 * 512 if block.ndim == 2 else 128 * 128
        try:
            tune = run_job(
                autotune_job(
                    block,
                    method,
                    given,
                    gat=gat if not method.impulse else None,
                    noise_sigma=info.sigma,
                    max_pixels=max_pixels,
                    spacing=spacing_for(plan, image.scale),
                ),
                on_event=progress,
            )
        except ParamError as exc:
            raise CliError(str(exc)) from None
        given[tune.param] = tune.best
        if not args.quiet:
            curve = ", ".join(f"{_fmt(v)}:{loss:.4g}" for v, loss in zip(tune.values, tune.losses))
            print(f"loss curve ({tune.param}:loss): {curve}", file=sys.stderr)
    keep = bool(args.keep_dtype)
    out_dtype = output_dtype(image.dtype, keep)
    job = denoise_job(
        image.data,
        image.axes,
        method,
        given,
        three_d=args.three_d,
        vst=gat if gat is not None else False,
        scale=image.scale,
        noise=info,
        out_dtype=out_dtype,
    )
    result = run_job(job, on_event=progress)
    written = write_ome_tiff(
        args.output, image.with_data(result), overwrite=args.overwrite, inputs=[args.input]
    )
    sigma = 1.0 if gat is not None and not method.impulse else info.sigma
    params = method.resolve(given, sigma=sigma)
    seconds = time.monotonic() - start
    if args.json:
        print_json(
            {
                "output": written,
                "method": method.name,
                "params": params,
                "vst": None if gat is None else {"a": gat.a, "b": gat.b},
                "three_d": bool(args.three_d and len(plan.block_axes) == 3),
                "auto_tune": None if tune is None else tune.to_dict(),
                "noise_sigma": info.sigma,
                "shape": list(image.shape),
                "axes": image.axes,
                "dtype": str(out_dtype),
                "seconds": round(seconds, 3),
            }
        )
    else:
        print(
            f"{written}: {method.name} {describe_params(method, params)}"
            f"{' (vst)' if gat is not None else ''}, {image.axes} {list(image.shape)} "
            f"{out_dtype}, {seconds:.2f} s"
        )
    return 0


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
