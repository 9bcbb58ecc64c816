"""Import ``bioimageio.spec`` so that it works with the installed pydantic.

bioimageio.spec 0.5.12 (pinned exactly by bioimageio.core 0.11, the latest core) calls
pydantic's wrap-serializer handler as ``handler(value, info)``. pydantic-core >= 2.42 (pydantic
2.13+) types that second argument (``index_key``, a name for error locations) and raises
``TypeError: 'index_key' is expected to be an integer or a string``, so *every* model
description with weights fails to validate, build or load. Older pydantic-core accepted the
extra argument and ignored it.

:func:`import_spec` detects that (a probe model, no version guessing) and, only then, routes the
three affected serializers of bioimageio.spec through a handler that drops the extra argument:
what older pydantic did. Nothing else is changed; without the incompatibility nothing is
patched.
"""

from __future__ import annotations

import functools
import types
from typing import Any

_PATCHED = "__celldenoise_tolerant__"
_TARGETS = (
    ("bioimageio.spec._internal.io_packaging", "package_file_descr_serializer"),
    ("bioimageio.spec.model.v0_4", "package_weights"),
    (
        "bioimageio.spec._internal.validated_string_with_inner_node",
        "ValidatedStringWithInnerNode._serialize",
    ),
)


def handler_takes_info() -> bool:
    """Whether ``handler(value, info)`` still works in a wrap serializer (old pydantic-core)."""
    from typing import Annotated

    from pydantic import BaseModel, WrapSerializer

    def ser(value: Any, handler: Any, info: Any) -> Any:
        return handler(value, info)

    class Probe(BaseModel):
        x: Annotated[int, WrapSerializer(ser)] = 1

    from pydantic_core import PydanticSerializationError

    try:
        Probe().model_dump()
    except (TypeError, PydanticSerializationError):
        return False
    return True


class _Handler:
    """A serializer handler that ignores the ``info`` passed as its second argument."""

    def __init__(self, handler: Any):
        self._handler = handler

    def __call__(self, value: Any, *extra: Any) -> Any:
        if extra and isinstance(extra[0], (int, str)):
            return self._handler(value, extra[0])
        return self._handler(value)


def _call(original: types.FunctionType, *args: Any) -> Any:
    fixed = list(args)
    for i, a in enumerate(args[:-1]):
        if callable(a) and type(args[i + 1]).__name__ == "SerializationInfo":
            fixed[i] = _Handler(a)
    return original(*fixed)


def _trampoline(*args):  # its code replaces the target's; globals are the target module's
    call, original = __celldenoise_tolerant__["__key__"]  # noqa: F821
    return call(original, *args)


def _patch(module: Any, qualname: str) -> None:
    owner: Any = module
    *parents, name = qualname.split(".")
    for p in parents:
        owner = getattr(owner, p)
    fn = getattr(owner, name)
    fn = getattr(fn, "__func__", fn)
    if getattr(fn, "__code__", None) is None or fn.__code__.co_freevars:
        return
    original = types.FunctionType(
        fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
    )
    registry = fn.__globals__.setdefault(_PATCHED, {})
    registry[qualname] = (_call, original)
    code = _trampoline.__code__.replace(
        co_consts=tuple(qualname if c == "__key__" else c for c in _trampoline.__code__.co_consts),
        co_name=fn.__name__,
    )
    fn.__code__ = code


@functools.cache
def import_spec() -> Any:
    """``bioimageio.spec``, made to work with this pydantic (see the module docstring)."""
    import importlib

    import bioimageio.spec as spec
    from bioimageio.spec.model import v0_4, v0_5  # noqa: F401 - build every schema first

    if not handler_takes_info():
        for module_name, qualname in _TARGETS:
            _patch(importlib.import_module(module_name), qualname)
    return spec
