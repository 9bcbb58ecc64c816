"""A tiny, safe evaluator for threshold expressions such as ``2*std(Wave.F1)``.

The text is parsed with :mod:`ast` and only a whitelist of nodes is evaluated: numbers, the
operators ``+ - * / ** %`` and unary minus, calls of the functions in :data:`FUNCTIONS` and the
image names a filter provides (``I``, ``F``, ``Wave.F1``, ``DoG.G1``...). Nothing is ever passed
to :func:`eval`; attribute access is only the dotted image names, never Python attributes.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping

import numpy as np

MAX_LENGTH = 200


class ExpressionError(ValueError):
    """A threshold expression that cannot be parsed or evaluated (message says why)."""


def _mad(a: np.ndarray) -> float:
    a = np.asarray(a, float)
    return float(np.median(np.abs(a - np.median(a))))


def _noise(a: np.ndarray) -> float:
    """Robust standard deviation: 1.4826 * MAD (unbiased for Gaussian noise, spots ignored)."""
    return 1.4826 * _mad(a)


def _local_noise(a: np.ndarray, block: float = 16) -> np.ndarray:
    """Per-pixel robust noise map of a 2D image: ``1.4826 * MAD`` in blocks of about
    ``block`` px, smoothed by a 3x3 median over the blocks and interpolated bilinearly back to
    the pixels (the background-noise map of SExtractor, Bertin & Arnouts 1996, A&AS 117:393).

    Spots cover a small part of each block, so the median ignores them; where the background
    is brighter (Poisson noise grows with it), the map is higher."""
    from scipy import ndimage as ndi

    a = np.asarray(a, float)
    if a.ndim != 2:
        return np.full(np.shape(a), _noise(a))
    block = int(max(8, block))
    ny, nx = max(a.shape[0] // block, 1), max(a.shape[1] // block, 1)
    ry = np.linspace(0, a.shape[0], ny + 1).astype(int)
    rx = np.linspace(0, a.shape[1], nx + 1).astype(int)
    by, bx = np.diff(ry), np.diff(rx)
    if (by == by[0]).all() and (bx == bx[0]).all():  # equal blocks: all medians at once
        blocks = a.reshape(ny, by[0], nx, bx[0]).transpose(0, 2, 1, 3).reshape(ny, nx, -1)
        centre = np.median(blocks, axis=-1, keepdims=True)
        grid = 1.4826 * np.median(np.abs(blocks - centre), axis=-1)
    else:
        grid = np.empty((ny, nx))
        for i in range(ny):
            for j in range(nx):
                grid[i, j] = _noise(a[ry[i] : ry[i + 1], rx[j] : rx[j + 1]])
    if min(ny, nx) >= 3:
        grid = ndi.median_filter(grid, size=3, mode="nearest")
    # block centres -> pixels, bilinear, constant beyond the outer centres
    cy = (ry[:-1] + ry[1:] - 1) / 2
    cx = (rx[:-1] + rx[1:] - 1) / 2
    # linear along y, then along x: the bilinear interpolation, separable
    return _lerp(_lerp(grid, a.shape[0], cy).T, a.shape[1], cx).T


def _lerp(values: np.ndarray, n: int, centres: np.ndarray) -> np.ndarray:
    """The rows of ``values`` (one per centre) interpolated linearly to the pixels
    ``0..n-1``, constant beyond the outer centres."""
    m = len(centres)
    if m == 1:
        return np.repeat(values, n, axis=0)
    pos = np.interp(np.arange(n), centres, np.arange(m))
    i0 = np.minimum(pos.astype(int), m - 2)
    f = (pos - i0)[:, None]
    return values[i0] * (1.0 - f) + values[i0 + 1] * f


FUNCTIONS: dict[str, Callable[..., float | np.ndarray]] = {
    "std": lambda a: float(np.std(a)),
    "mean": lambda a: float(np.mean(a)),
    "median": lambda a: float(np.median(a)),
    "max": lambda a, *b: float(np.max(a)) if not b else float(max(np.max(a), *b)),
    "min": lambda a, *b: float(np.min(a)) if not b else float(min(np.min(a), *b)),
    "mad": _mad,
    "noise": _noise,
    "localnoise": _local_noise,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "percentile": lambda a, q: float(np.percentile(a, q)),
}

_BINOPS = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Pow: np.power,
    ast.Mod: np.mod,
}


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def parse_expression(text: str) -> ast.Expression:
    """Parse and check ``text``; raises :class:`ExpressionError` for anything not allowed."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("empty threshold expression")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"threshold expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse threshold {text!r}: {exc.msg}") from None
    for node in ast.walk(tree):
        ok = isinstance(
            node,
            ast.Expression
            | ast.BinOp
            | ast.UnaryOp
            | ast.Constant
            | ast.Call
            | ast.Name
            | ast.Attribute
            | ast.Load
            | ast.USub
            | ast.UAdd
            | ast.operator,
        )
        if isinstance(node, ast.operator) and type(node) not in _BINOPS:
            ok = False
        if isinstance(node, ast.Constant) and not (
            isinstance(node.value, int | float) and not isinstance(node.value, bool)
        ):
            ok = False
        if isinstance(node, ast.Call) and (
            not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords
        ):
            name = getattr(node.func, "id", "?")
            raise ExpressionError(
                f"unknown function {name!r} in threshold {text!r}; "
                f"allowed: {', '.join(sorted(FUNCTIONS))}"
            )
        if isinstance(node, ast.Attribute) and _dotted(node) is None:
            ok = False
        if not ok:
            raise ExpressionError(f"not allowed in a threshold expression: {text!r}")
    return tree


def referenced_names(text: str) -> set[str]:
    """The image names (``Wave.F1``, ``I``...) an expression uses."""
    tree = parse_expression(text)
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Attribute | ast.Name):
            names.add(_dotted(node) or "")
            return
        if isinstance(node, ast.Call):
            for arg in node.args:
                visit(arg)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree.body)
    return names - {""}


def evaluate(text: str, variables: Mapping[str, np.ndarray | float]) -> float | np.ndarray:
    """Evaluate a threshold expression with image ``variables``.

    Returns a number, or an array (a per-pixel threshold) when the expression keeps an image.

    Raises
    ------
    ExpressionError
        When the text is not allowed, names an unknown image or the value is not finite.
    """
    tree = parse_expression(text)

    def ev(node: ast.AST) -> float | np.ndarray:
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name | ast.Attribute):
            name = _dotted(node)
            if name not in variables:
                known = ", ".join(sorted(variables)) or "none"
                raise ExpressionError(
                    f"unknown image {name!r} in threshold {text!r}; known: {known}"
                )
            return variables[name]
        if isinstance(node, ast.UnaryOp):
            value = ev(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and np.any(np.abs(right) > 100):
                raise ExpressionError(f"exponent too large in threshold {text!r}")
            with np.errstate(all="ignore"):
                return _BINOPS[type(node.op)](left, right)
        if isinstance(node, ast.Call):
            args = [ev(a) for a in node.args]
            try:
                return FUNCTIONS[node.func.id](*args)  # type: ignore[attr-defined]
            except TypeError as exc:
                raise ExpressionError(f"bad arguments in threshold {text!r}: {exc}") from None
        raise ExpressionError(
            f"not allowed in a threshold expression: {text!r}"
        )  # pragma: no cover

    value = ev(tree.body)
    if np.ndim(value) == 0:
        value = float(value)
        if not np.isfinite(value):
            raise ExpressionError(f"threshold {text!r} is not a finite number ({value})")
    return value


def threshold_value(text: str | float, variables: Mapping[str, np.ndarray]) -> float | np.ndarray:
    """A number as it is, or a string expression evaluated (numbers in strings work too)."""
    if isinstance(text, int | float):
        return float(text)
    return evaluate(str(text), variables)
