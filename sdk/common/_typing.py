"""Private helpers that read type hints and positional arguments.

Shared by ``cadenza.activity`` and ``cadenza.workflow``; not public API.
"""

from __future__ import annotations

import collections.abc
import inspect
from collections.abc import Callable, Sequence
from typing import Any, get_args, get_origin, get_type_hints

from ._payload import RawValue

_arg_unset: Any = object()
"""Default of ``arg`` parameters: tells "no argument" apart from ``None``."""


def _arg_or_args(arg: Any, args: Sequence[Any]) -> Sequence[Any]:
    """Merge the ``arg``/``args`` pair every call-with-arguments API takes."""
    if arg is _arg_unset:
        return args
    if args:
        raise ValueError("Cannot give both arg and args")
    return [arg]


def _unwrap_callable(fn: Callable[..., Any]) -> Callable[..., Any]:
    # An instance (or class) with a user-defined __call__ is described by that
    # __call__, as inspect.signature does it.
    if inspect.isfunction(fn) or inspect.ismethod(fn) or inspect.isbuiltin(fn):
        return fn
    owner = fn if isinstance(fn, type) else type(fn)
    call = getattr(owner, "__call__", None)  # noqa: B004 - we want the attribute itself
    if call is not None and inspect.isfunction(call):
        return call
    return fn


def _type_hints_from_func(
    fn: Callable[..., Any],
) -> tuple[list[Any] | None, Any | None]:
    """Parameter and return type hints of ``fn``.

    Returns:
        ``(arg_types, return_type)``. ``arg_types`` is ``None`` when any
        parameter is not positional or has no annotation (then arguments are
        decoded without hints). A leading unannotated ``self`` is skipped.
    """
    fn = _unwrap_callable(fn)
    sig = inspect.signature(fn)
    try:
        hints = get_type_hints(fn)
    except Exception:
        # Unresolvable forward references: fall back to decoding without hints
        # rather than failing the decorator.
        hints = {}
    ret = hints.get("return")
    arg_types: list[Any] = []
    for index, param in enumerate(sig.parameters.values()):
        if index == 0 and param.name == "self" and param.name not in hints:
            continue
        if param.kind not in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            return None, ret
        if param.name not in hints:
            return None, ret
        arg_types.append(hints[param.name])
    return arg_types, ret


def _is_raw_value_sequence(hint: Any) -> bool:
    """Whether ``hint`` is ``Sequence[RawValue]`` (``typing`` or ``collections.abc``)."""
    return get_origin(hint) is collections.abc.Sequence and get_args(hint) == (RawValue,)
