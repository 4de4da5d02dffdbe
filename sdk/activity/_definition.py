"""``@activity.defn`` and the definition it attaches to the function."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, overload

from ..common._types import CallableType
from ..common._typing import _is_raw_value_sequence, _type_hints_from_func, _unwrap_callable

_ATTR = "__cadenza_activity_definition"


@overload
def defn(fn: CallableType) -> CallableType: ...


@overload
def defn(
    *, name: str | None = None, no_thread_cancel_exception: bool = False
) -> Callable[[CallableType], CallableType]: ...


@overload
def defn(
    *, no_thread_cancel_exception: bool = False, dynamic: bool = False
) -> Callable[[CallableType], CallableType]: ...


def defn(
    fn: Any = None,
    *,
    name: str | None = None,
    no_thread_cancel_exception: bool = False,
    dynamic: bool = False,
) -> Any:
    """Mark a function (or method) as an activity.

    Activities may be ``async def`` or plain functions (run in a thread by the
    worker). Parameters must be positional; best practice is one dataclass
    parameter that can gain fields later. The function is checked here, at
    import time.

    Args:
        fn: The function to decorate.
        name: Activity type name. Defaults to the function's ``__name__``.
            Cannot be set together with ``dynamic``.
        no_thread_cancel_exception: For sync activities run in threads, do not
            raise a cancellation exception inside the thread on cancellation.
        dynamic: Handle every activity type no other activity handles. The
            function must take one ``Sequence[RawValue]`` parameter and reads
            its type name from ``activity.info().activity_type``.

    Example:
        >>> @defn
        ... async def greet(name: str) -> str:
        ...     return f"Hello, {name}!"
        >>> _Definition.must_from_callable(greet).name
        'greet'
    """
    if name is not None and dynamic:
        raise ValueError("@activity.defn: cannot set both name and dynamic")
    if name is not None and not name:
        raise ValueError("@activity.defn: name cannot be empty")

    def decorator(fn: CallableType) -> CallableType:
        _Definition._apply(
            fn,
            name=None if dynamic else (name or getattr(fn, "__name__", None)),
            no_thread_cancel_exception=no_thread_cancel_exception,
        )
        return fn

    if fn is not None:
        return decorator(fn)
    return decorator


@dataclass(frozen=True)
class _Definition:
    """What ``@activity.defn`` knows about an activity; read by the worker.

    Attributes:
        name: Activity type name; ``None`` for the dynamic activity.
        fn: The function (replaced by the bound method for methods).
        is_async: Whether calling ``fn`` returns an awaitable.
        no_thread_cancel_exception: See :func:`defn`.
        arg_types: Type hints of the positional parameters, or ``None`` when
            any is missing (arguments are then decoded without hints).
        ret_type: Return type hint, if any.
    """

    name: str | None
    fn: Callable[..., Any]
    is_async: bool
    no_thread_cancel_exception: bool
    arg_types: list[Any] | None
    ret_type: Any | None

    @staticmethod
    def from_callable(fn: Callable[..., Any]) -> _Definition | None:
        """The definition of ``fn``, with ``fn`` itself (e.g. a bound method) as ``fn``."""
        found = getattr(fn, _ATTR, None)
        if isinstance(found, _Definition):
            return dataclasses.replace(found, fn=fn)
        return None

    @staticmethod
    def must_from_callable(fn: Callable[..., Any]) -> _Definition:
        """Like :meth:`from_callable`, raising ``TypeError`` if ``fn`` is not an activity."""
        found = _Definition.from_callable(fn)
        if found is None:
            fn_name = getattr(fn, "__qualname__", repr(fn))
            raise TypeError(f"Activity {fn_name} is not decorated with @activity.defn")
        return found

    @staticmethod
    def get_name_and_result_type(activity: str | Callable[..., Any]) -> tuple[str, Any | None]:
        """Activity type name and result type hint of a name or decorated function."""
        if isinstance(activity, str):
            if not activity:
                raise ValueError("Activity name cannot be empty")
            return activity, None
        if not callable(activity):
            raise TypeError(f"Activity must be a name or a function, got {type(activity).__name__}")
        found = _Definition.must_from_callable(activity)
        if found.name is None:
            raise ValueError("The dynamic activity cannot be called by reference; use a name")
        return found.name, found.ret_type

    @staticmethod
    def _apply(fn: Any, *, name: str | None, no_thread_cancel_exception: bool) -> None:
        if not callable(fn):
            raise TypeError(f"@activity.defn: {fn!r} is not callable")
        label = getattr(fn, "__qualname__", repr(fn))
        if hasattr(fn, _ATTR):
            raise ValueError(f"@activity.defn: {label} is already an activity")
        if inspect.isasyncgenfunction(fn):
            raise TypeError(f"@activity.defn: {label} is an async generator, not a function")
        for param in inspect.signature(_unwrap_callable(fn)).parameters.values():
            if param.kind is inspect.Parameter.KEYWORD_ONLY:
                raise TypeError(
                    f"@activity.defn: {label} has keyword-only parameter {param.name!r}; "
                    "activity parameters must be positional"
                )
        arg_types, ret_type = _type_hints_from_func(fn)
        if name is None and (
            arg_types is None or len(arg_types) != 1 or not _is_raw_value_sequence(arg_types[0])
        ):
            raise TypeError(
                f"@activity.defn: dynamic activity {label} must take exactly one "
                "Sequence[RawValue] parameter"
            )
        is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            _unwrap_callable(fn)
        )
        setattr(
            fn,
            _ATTR,
            _Definition(
                name=name,
                fn=fn,
                is_async=is_async,
                no_thread_cancel_exception=no_thread_cancel_exception,
                arg_types=arg_types,
                ret_type=ret_type,
            ),
        )
