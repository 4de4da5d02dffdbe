"""``@workflow.signal``, ``@workflow.query``, ``@workflow.update`` and their definitions.

The decorators check each method as it is decorated; ``@workflow.defn``
gathers the definitions and checks the class as a whole.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, overload, runtime_checkable

from ..common._types import CallableType
from ..common._typing import _is_raw_value_sequence, _type_hints_from_func

_P = ParamSpec("_P")
_R = TypeVar("_R")
_R_co = TypeVar("_R_co", covariant=True)

_SIGNAL_ATTR = "__cadenza_signal_definition"
_QUERY_ATTR = "__cadenza_query_definition"
_UPDATE_ATTR = "__cadenza_update_definition"
_VALIDATOR_ATTR = "__cadenza_update_validator"


class HandlerUnfinishedPolicy(Enum):
    """What happens when a workflow closes while this handler is still running."""

    WARN_AND_ABANDON = 1
    """Log a warning, then abandon the handler (the default)."""
    ABANDON = 2
    """Abandon the handler silently (an update's caller gets an error)."""


class UnfinishedUpdateHandlersWarning(RuntimeWarning):
    """The workflow closed while update handlers were still running."""


class UnfinishedSignalHandlersWarning(RuntimeWarning):
    """The workflow closed while signal handlers were still running."""


def _label(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", repr(fn)))


def _check_handler(kind: str, fn: Any, name: str | None) -> list[Any] | None:
    """Checks every handler shares; returns its argument type hints."""
    if not inspect.isfunction(fn):
        raise TypeError(f"@workflow.{kind} must decorate a method, got {fn!r}")
    params = list(inspect.signature(fn).parameters.values())
    if not params or params[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        raise TypeError(f"@workflow.{kind} {_label(fn)} must be a method taking self")
    for param in params:
        if param.kind is inspect.Parameter.KEYWORD_ONLY:
            raise TypeError(
                f"@workflow.{kind} {_label(fn)} has keyword-only parameter {param.name!r}; "
                "handler parameters must be positional"
            )
    arg_types, _ = _type_hints_from_func(fn)
    if name is None and (
        arg_types is None
        or len(arg_types) != 2
        or arg_types[0] is not str
        or not _is_raw_value_sequence(arg_types[1])
    ):
        raise TypeError(
            f"Dynamic @workflow.{kind} {_label(fn)} must take exactly (self, name: str, "
            "args: Sequence[RawValue])"
        )
    return arg_types


def _check_name_options(kind: str, name: str | None, dynamic: bool) -> None:
    if name is not None and dynamic:
        raise ValueError(f"@workflow.{kind}: cannot set both name and dynamic")
    if name is not None and not name:
        raise ValueError(f"@workflow.{kind}: name cannot be empty")


def _resolve_name(kind: str, fn: Any, name: str | None, dynamic: bool) -> str | None:
    if dynamic:
        return None
    return name or str(fn.__name__)


def _bind(obj: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
    # A bound method keeps inspect.iscoroutinefunction working for async handlers.
    return types.MethodType(fn, obj)


@dataclass(frozen=True)
class _SignalDefinition:
    """A signal handler. ``name`` is ``None`` for the dynamic handler."""

    name: str | None
    fn: Callable[..., Any]
    is_method: bool
    unfinished_policy: HandlerUnfinishedPolicy = HandlerUnfinishedPolicy.WARN_AND_ABANDON
    description: str | None = None
    arg_types: list[Any] | None = None

    @staticmethod
    def from_fn(fn: Any) -> _SignalDefinition | None:
        """The definition attached to a ``@workflow.signal`` method, if any."""
        found = getattr(fn, _SIGNAL_ATTR, None)
        return found if isinstance(found, _SignalDefinition) else None

    @staticmethod
    def must_name_from_fn_or_str(signal: str | Callable[..., Any]) -> str:
        """The signal name of a name or a ``@workflow.signal`` method."""
        if isinstance(signal, str):
            return signal
        found = _SignalDefinition.from_fn(signal)
        if found is None:
            raise TypeError(f"{_label(signal)} is not decorated with @workflow.signal")
        if found.name is None:
            raise ValueError("The dynamic signal handler cannot be signalled by reference")
        return found.name

    def bind_fn(self, obj: Any) -> Callable[..., Any]:
        """The handler bound to the workflow instance ``obj``."""
        return _bind(obj, self.fn) if self.is_method else self.fn


@dataclass(frozen=True)
class _QueryDefinition:
    """A query handler. ``name`` is ``None`` for the dynamic handler."""

    name: str | None
    fn: Callable[..., Any]
    is_method: bool
    description: str | None = None
    arg_types: list[Any] | None = None
    ret_type: Any | None = None

    @staticmethod
    def from_fn(fn: Any) -> _QueryDefinition | None:
        """The definition attached to a ``@workflow.query`` method, if any."""
        found = getattr(fn, _QUERY_ATTR, None)
        return found if isinstance(found, _QueryDefinition) else None

    @staticmethod
    def get_name_and_result_type(query: str | Callable[..., Any]) -> tuple[str, Any | None]:
        """Query name and result type hint of a name or a ``@workflow.query`` method."""
        if isinstance(query, str):
            return query, None
        found = _QueryDefinition.from_fn(query)
        if found is None:
            raise TypeError(f"{_label(query)} is not decorated with @workflow.query")
        if found.name is None:
            raise ValueError("The dynamic query handler cannot be queried by reference")
        return found.name, found.ret_type

    def bind_fn(self, obj: Any) -> Callable[..., Any]:
        """The handler bound to the workflow instance ``obj``."""
        return _bind(obj, self.fn) if self.is_method else self.fn


@dataclass(frozen=True)
class _UpdateDefinition:
    """An update handler and its validator. ``name`` is ``None`` for the dynamic handler."""

    name: str | None
    fn: Callable[..., Any]
    is_method: bool
    unfinished_policy: HandlerUnfinishedPolicy = HandlerUnfinishedPolicy.WARN_AND_ABANDON
    description: str | None = None
    arg_types: list[Any] | None = None
    ret_type: Any | None = None
    validator: Callable[..., None] | None = None

    @staticmethod
    def from_fn(fn: Any) -> _UpdateDefinition | None:
        """The definition of a ``@workflow.update`` method, validator included."""
        found = getattr(fn, _UPDATE_ATTR, None)
        if not isinstance(found, _UpdateDefinition):
            return None
        validator = getattr(fn, _VALIDATOR_ATTR, None)
        if validator is not None and found.validator is None:
            return dataclasses.replace(found, validator=validator)
        return found

    @staticmethod
    def get_name_and_result_type(update: str | Callable[..., Any]) -> tuple[str, Any | None]:
        """Update name and result type hint of a name or a ``@workflow.update`` method."""
        if isinstance(update, str):
            return update, None
        found = _UpdateDefinition.from_fn(update)
        if found is None:
            raise TypeError(f"{_label(update)} is not decorated with @workflow.update")
        if found.name is None:
            raise ValueError("The dynamic update handler cannot be called by reference")
        return found.name, found.ret_type

    def bind_fn(self, obj: Any) -> Callable[..., Any]:
        """The handler bound to the workflow instance ``obj``."""
        return _bind(obj, self.fn) if self.is_method else self.fn

    def bind_validator(self, obj: Any) -> Callable[..., None] | None:
        """The validator bound to ``obj``, if there is one."""
        if self.validator is None:
            return None
        return _bind(obj, self.validator) if self.is_method else self.validator


@overload
def signal(fn: CallableType) -> CallableType: ...


@overload
def signal(
    *,
    name: str | None = None,
    dynamic: bool = False,
    unfinished_policy: HandlerUnfinishedPolicy = HandlerUnfinishedPolicy.WARN_AND_ABANDON,
    description: str | None = None,
) -> Callable[[CallableType], CallableType]: ...


def signal(
    fn: Any = None,
    *,
    name: str | None = None,
    dynamic: bool = False,
    unfinished_policy: HandlerUnfinishedPolicy = HandlerUnfinishedPolicy.WARN_AND_ABANDON,
    description: str | None = None,
) -> Any:
    """Mark a workflow method as a signal handler.

    Sync or async; the return value is ignored. Parameters must be positional.

    Args:
        fn: The method to decorate.
        name: Signal name. Defaults to the method's name.
        dynamic: Handle every signal no other handler handles; the method takes
            ``(self, name: str, args: Sequence[RawValue])``.
        unfinished_policy: What to do if the workflow closes while it runs.
        description: Short description shown in the UI.
    """

    _check_name_options("signal", name, dynamic)

    def decorator(fn: CallableType) -> CallableType:
        resolved = _resolve_name("signal", fn, name, dynamic)
        arg_types = _check_handler("signal", fn, resolved)
        setattr(
            fn,
            _SIGNAL_ATTR,
            _SignalDefinition(
                name=resolved,
                fn=fn,
                is_method=True,
                unfinished_policy=unfinished_policy,
                description=description,
                arg_types=arg_types,
            ),
        )
        return fn

    return decorator(fn) if fn is not None else decorator


@overload
def query(fn: CallableType) -> CallableType: ...


@overload
def query(
    *, name: str | None = None, dynamic: bool = False, description: str | None = None
) -> Callable[[CallableType], CallableType]: ...


def query(
    fn: Any = None,
    *,
    name: str | None = None,
    dynamic: bool = False,
    description: str | None = None,
) -> Any:
    """Mark a workflow method as a query handler.

    Queries read state and return a value; they must not change state and
    cannot wait, so the method must not be ``async`` (Temporal only warns).

    Args:
        fn: The method to decorate.
        name: Query name. Defaults to the method's name.
        dynamic: Handle every query no other handler handles; the method takes
            ``(self, name: str, args: Sequence[RawValue])``.
        description: Short description shown in the UI.
    """

    _check_name_options("query", name, dynamic)

    def decorator(fn: CallableType) -> CallableType:
        resolved = _resolve_name("query", fn, name, dynamic)
        if inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"@workflow.query {_label(fn)} must not be async: queries only read state"
            )
        arg_types = _check_handler("query", fn, resolved)
        _, ret_type = _type_hints_from_func(fn)
        setattr(
            fn,
            _QUERY_ATTR,
            _QueryDefinition(
                name=resolved,
                fn=fn,
                is_method=True,
                description=description,
                arg_types=arg_types,
                ret_type=ret_type,
            ),
        )
        return fn

    return decorator(fn) if fn is not None else decorator


@runtime_checkable
class UpdateMethodMultiParam(Protocol[_P, _R_co]):
    """Type of a ``@workflow.update`` method: callable, with a ``validator`` decorator."""

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R_co:
        """Call the update method."""
        ...

    def validator(self, vfunc: Callable[_P, None]) -> Callable[_P, None]:
        """Decorate the method that validates this update's arguments."""
        ...


class _ValidatorDecorator(Generic[_P]):
    """The ``validator`` attribute of an update method."""

    def __init__(self, update_fn: Callable[..., Any]) -> None:
        self._update_fn = update_fn

    def __call__(self, vfunc: Callable[_P, None]) -> Callable[_P, None]:
        update_fn = self._update_fn
        label = _label(vfunc)
        if getattr(update_fn, _VALIDATOR_ATTR, None) is not None:
            raise ValueError(f"Update {_label(update_fn)} already has a validator")
        if inspect.iscoroutinefunction(vfunc):
            raise TypeError(f"Update validator {label} must not be async")
        if not _same_parameters(update_fn, vfunc):
            raise TypeError(
                f"Update validator {label} must take the same parameters as "
                f"update {_label(update_fn)}"
            )
        setattr(update_fn, _VALIDATOR_ATTR, vfunc)
        return vfunc


def _same_parameters(fn1: Callable[..., Any], fn2: Callable[..., Any]) -> bool:
    """Same parameter kinds, defaults and annotations, names aside."""

    def shape(fn: Callable[..., Any]) -> list[inspect.Parameter]:
        return [p.replace(name="_") for p in inspect.signature(fn).parameters.values()]

    return shape(fn1) == shape(fn2)


@overload
def update(fn: Callable[_P, _R]) -> UpdateMethodMultiParam[_P, _R]: ...


@overload
def update(
    *,
    name: str | None = None,
    dynamic: bool = False,
    unfinished_policy: HandlerUnfinishedPolicy = HandlerUnfinishedPolicy.WARN_AND_ABANDON,
    description: str | None = None,
) -> Callable[[Callable[_P, _R]], UpdateMethodMultiParam[_P, _R]]: ...


def update(
    fn: Any = None,
    *,
    name: str | None = None,
    dynamic: bool = False,
    unfinished_policy: HandlerUnfinishedPolicy = HandlerUnfinishedPolicy.WARN_AND_ABANDON,
    description: str | None = None,
) -> Any:
    """Mark a workflow method as an update handler.

    Sync or async; it may change state, wait, and return a value to the
    caller. Decorate an optional validator with ``@my_update.validator``: a
    sync method with the same parameters that raises to reject the update
    before it is recorded.

    Args:
        fn: The method to decorate.
        name: Update name. Defaults to the method's name.
        dynamic: Handle every update no other handler handles; the method takes
            ``(self, name: str, args: Sequence[RawValue])``.
        unfinished_policy: What to do if the workflow closes while it runs.
        description: Short description shown in the UI.
    """

    _check_name_options("update", name, dynamic)

    def decorator(fn: Any) -> Any:
        resolved = _resolve_name("update", fn, name, dynamic)
        arg_types = _check_handler("update", fn, resolved)
        _, ret_type = _type_hints_from_func(fn)
        setattr(
            fn,
            _UPDATE_ATTR,
            _UpdateDefinition(
                name=resolved,
                fn=fn,
                is_method=True,
                unfinished_policy=unfinished_policy,
                description=description,
                arg_types=arg_types,
                ret_type=ret_type,
            ),
        )
        fn.validator = _ValidatorDecorator(fn)
        return fn

    return decorator(fn) if fn is not None else decorator
