"""Refuse to start a child process when the running script has no ``__main__`` guard.

A spawned child runs the parent's main script again (as ``__mp_main__``) before it runs the
job. A script that drives napari or this plugin at its top level then opens a second viewer
or starts a second job inside the child, and the job hangs without a word. The parent reads
the script before it spawns and fails the job at once, saying what to change.
"""

from __future__ import annotations

import ast
import sys
from functools import lru_cache
from pathlib import Path

from .errors import MainModuleNotGuarded

WATCHED = ("napari", "napari_celldenoise")
"""Top-level packages whose use at a script's top level would run again in the child."""

ADVICE = 'put the script\'s code under `if __name__ == "__main__":`'


def check_main_guard() -> None:
    """Raise :class:`MainModuleNotGuarded` when ``__main__`` is a script that calls napari or
    napari-celldenoise outside an ``if __name__ == "__main__":`` block."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or getattr(main, "__name__", "") != "__main__" or not str(path).endswith(".py"):
        return  # an interactive session, a notebook or a frozen entry point: nothing re-runs
    spec = getattr(main, "__spec__", None)
    if spec is not None and str(spec.name).endswith("__main__"):
        return  # `python -m package`: multiprocessing does not run a package's __main__ again
    try:
        line = _unguarded_call(str(Path(path).resolve()), Path(path).stat().st_mtime_ns)
    except OSError:
        return
    if line is not None:
        raise MainModuleNotGuarded(
            f"{Path(path).name}, line {line}, calls napari or napari-celldenoise at the top "
            f"of the script: the job's child process would run the script again and hang; "
            f"{ADVICE}"
        )


@lru_cache(maxsize=8)
def _unguarded_call(path: str, mtime_ns: int) -> int | None:
    """The line of the first top-level call into a watched package, None if there is none."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=path)
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return None
    names = _watched_names(tree)
    for stmt in tree.body:
        if _is_main_guard(stmt) or isinstance(
            stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        ):
            continue
        for node in ast.walk(stmt):
            if isinstance(node, ast.Call) and _root(node.func) in names:
                return node.lineno
    return None


def _watched_names(tree: ast.Module) -> set[str]:
    """Names the script's top level binds to a watched package or something from one."""
    names: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.name.split(".")[0] in WATCHED:
                    names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(stmt, ast.ImportFrom) and stmt.level == 0 and stmt.module:
            if stmt.module.split(".")[0] in WATCHED:
                names.update(alias.asname or alias.name for alias in stmt.names)
    return names


def _root(func: ast.expr) -> str | None:
    """``a`` for ``a.b.c(...)`` and ``a(...)``; None for anything else."""
    while isinstance(func, (ast.Attribute, ast.Call, ast.Subscript)):
        func = func.func if isinstance(func, ast.Call) else func.value
    return func.id if isinstance(func, ast.Name) else None


def _is_main_guard(stmt: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` (either side of the ``==``)."""
    if not isinstance(stmt, ast.If) or not isinstance(stmt.test, ast.Compare):
        return False
    test = stmt.test
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    has_name = any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
    has_main = any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)
    return has_name and has_main


__all__ = ["ADVICE", "check_main_guard"]
