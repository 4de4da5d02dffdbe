"""``@workflow.defn``, ``@workflow.run``, ``@workflow.init`` and the class definition."""

from __future__ import annotations

import inspect
import types
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

from ..common._types import CallableAsyncType, CallableType, ClassType
from ..common._typing import _is_raw_value_sequence, _type_hints_from_func
from ._handlers import _QueryDefinition, _same_parameters, _SignalDefinition, _UpdateDefinition

_DEFN_ATTR = "__cadenza_workflow_definition"
_RUN_ATTR = "__cadenza_workflow_run"
_INIT_ATTR = "__cadenza_workflow_init"


@overload
def defn(cls: ClassType) -> ClassType: ...


@overload
def defn(
    *,
    name: str | None = None,
    sandboxed: bool = True,
    dynamic: bool = False,
    failure_exception_types: Sequence[type[BaseException]] = (),
) -> Callable[[ClassType], ClassType]: ...


def defn(
    cls: Any = None,
    *,
    name: str | None = None,
    sandboxed: bool = True,
    dynamic: bool = False,
    failure_exception_types: Sequence[type[BaseException]] = (),
) -> Any:
    """Mark a class as a workflow.

    The class needs exactly one ``@workflow.run`` async method, defined on the
    class itself. Handlers are ``@workflow.signal``, ``@workflow.query`` and
    ``@workflow.update`` methods. Everything is checked here, at import time,
    and every problem found is reported at once.

    Args:
        cls: The class to decorate.
        name: Workflow type name. Defaults to the class's name. Cannot be set
            together with ``dynamic``.
        sandboxed: Whether the workflow may run in a sandbox (recorded for the
            runtime; Cadenza has no import sandbox yet).
        dynamic: Handle every workflow type no other workflow handles; the run
            method takes one ``Sequence[RawValue]`` parameter.
        failure_exception_types: Exception types that fail the workflow when
            they escape it, instead of failing (and retrying) the workflow task.

    Example:
        >>> @defn
        ... class Greeting:
        ...     @run
        ...     async def run(self, name: str) -> str:
        ...         return f"Hello, {name}!"
        >>> _Definition.must_from_class(Greeting).name
        'Greeting'
    """
    if name is not None and dynamic:
        raise ValueError("@workflow.defn: cannot set both name and dynamic")
    if name is not None and not name:
        raise ValueError("@workflow.defn: name cannot be empty")
    failure_types = tuple(failure_exception_types)
    for t in failure_types:
        if not (inspect.isclass(t) and issubclass(t, BaseException)):
            raise TypeError(
                f"@workflow.defn: failure_exception_types must hold exception classes, got {t!r}"
            )

    def decorator(cls: ClassType) -> ClassType:
        _Definition._apply(
            cls,
            name=None if dynamic else (name or cls.__name__),
            sandboxed=sandboxed,
            failure_exception_types=failure_types,
        )
        return cls

    return decorator(cls) if cls is not None else decorator


def run(fn: CallableAsyncType) -> CallableAsyncType:
    """Mark the workflow's entry method.

    It must be ``async def``, defined on the ``@workflow.defn`` class itself,
    take positional parameters only, and the class must be importable by
    module and name (not defined inside a function).
    """
    label = getattr(fn, "__qualname__", repr(fn))
    if not _is_async_def(fn):
        raise TypeError(f"@workflow.run method {label} must be async def")
    if "<locals>" in label:
        raise ValueError(
            f"@workflow.run method {label} is in a class defined inside a function; "
            "define workflow classes at module level"
        )
    for param in inspect.signature(fn).parameters.values():
        if param.kind is inspect.Parameter.KEYWORD_ONLY:
            raise TypeError(
                f"@workflow.run method {label} has keyword-only parameter {param.name!r}; "
                "workflow parameters must be positional"
            )
    setattr(fn, _RUN_ATTR, True)
    return fn


def _is_async_def(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn)


def init(init_fn: CallableType) -> CallableType:
    """Mark ``__init__`` as taking the workflow's arguments, like the run method.

    Its parameters must then be exactly those of the ``@workflow.run`` method.
    """
    if getattr(init_fn, "__name__", None) != "__init__":
        raise ValueError("@workflow.init can only decorate __init__")
    setattr(init_fn, _INIT_ATTR, True)
    return init_fn


@dataclass(frozen=True)
class _Definition:
    """What ``@workflow.defn`` knows about a workflow class; read by the worker and client.

    Attributes:
        name: Workflow type name; ``None`` for the dynamic workflow.
        cls: The class.
        run_fn: The ``@workflow.run`` method (unbound).
        signals: Signal definitions by name (``None``: the dynamic handler).
        queries: Query definitions by name (``None``: the dynamic handler).
        updates: Update definitions by name (``None``: the dynamic handler).
        init_fn: ``__init__`` if decorated with ``@workflow.init``.
        sandboxed: See :func:`defn`.
        failure_exception_types: See :func:`defn`.
        arg_types: Type hints of the run method's parameters, or ``None``.
        ret_type: The run method's return type hint, if any.
    """

    name: str | None
    cls: type
    run_fn: Callable[..., Awaitable[Any]]
    signals: Mapping[str | None, _SignalDefinition]
    queries: Mapping[str | None, _QueryDefinition]
    updates: Mapping[str | None, _UpdateDefinition]
    init_fn: Callable[..., None] | None
    sandboxed: bool
    failure_exception_types: tuple[type[BaseException], ...]
    arg_types: list[Any] | None
    ret_type: Any | None

    @staticmethod
    def from_class(cls: type) -> _Definition | None:
        """The definition of ``cls`` itself (not one inherited from a base class)."""
        found = cls.__dict__.get(_DEFN_ATTR)
        return found if isinstance(found, _Definition) else None

    @staticmethod
    def must_from_class(cls: type) -> _Definition:
        """Like :meth:`from_class`, raising ``TypeError`` if ``cls`` is not a workflow."""
        found = _Definition.from_class(cls)
        if found is None:
            raise TypeError(
                f"Workflow {getattr(cls, '__qualname__', cls)!r} is not decorated "
                "with @workflow.defn"
            )
        return found

    @staticmethod
    def from_run_fn(fn: Callable[..., Any]) -> _Definition | None:
        """The definition whose run method is ``fn``."""
        found = getattr(fn, _DEFN_ATTR, None)
        return found if isinstance(found, _Definition) else None

    @staticmethod
    def must_from_run_fn(fn: Callable[..., Any]) -> _Definition:
        """Like :meth:`from_run_fn`, raising ``TypeError`` if ``fn`` is not a run method."""
        found = _Definition.from_run_fn(fn)
        if found is None:
            raise TypeError(
                f"{getattr(fn, '__qualname__', fn)!r} is not the @workflow.run method "
                "of a @workflow.defn class"
            )
        return found

    @staticmethod
    def get_name_and_result_type(workflow: str | Callable[..., Any]) -> tuple[str, Any | None]:
        """Workflow type name and result type hint of a name or a run method."""
        if isinstance(workflow, str):
            if not workflow:
                raise ValueError("Workflow name cannot be empty")
            return workflow, None
        if not callable(workflow):
            raise TypeError(f"Workflow must be a name or a run method, got {workflow!r}")
        found = _Definition.must_from_run_fn(workflow)
        if found.name is None:
            raise ValueError("The dynamic workflow cannot be started by reference; use a name")
        return found.name, found.ret_type

    @staticmethod
    def _apply(
        cls: type,
        *,
        name: str | None,
        sandboxed: bool,
        failure_exception_types: tuple[type[BaseException], ...],
    ) -> None:
        if not inspect.isclass(cls):
            raise TypeError(f"@workflow.defn must decorate a class, got {cls!r}")
        if _Definition.from_class(cls) is not None:
            raise ValueError(f"@workflow.defn: {cls.__qualname__} is already a workflow")
        issues: list[str] = []
        run_fns: list[tuple[str, Callable[..., Any]]] = []
        init_fn: Callable[..., None] | None = None
        signals: dict[str | None, _SignalDefinition] = {}
        queries: dict[str | None, _QueryDefinition] = {}
        updates: dict[str | None, _UpdateDefinition] = {}
        handlers = (("signal", signals), ("query", queries), ("update", updates))

        for attr, member in inspect.getmembers(cls):
            if getattr(member, _RUN_ATTR, False):
                if cls.__dict__.get(attr) is member and callable(member):
                    run_fns.append((attr, member))
                else:
                    issues.append(
                        f"@workflow.run method {member.__qualname__} is inherited; "
                        f"override it on {cls.__qualname__} and decorate it with @workflow.run"
                    )
            if attr == "__init__" and getattr(member, _INIT_ATTR, False):
                init_fn = member
            found: dict[str, Any] = {
                "signal": _SignalDefinition.from_fn(member),
                "query": _QueryDefinition.from_fn(member),
                "update": _UpdateDefinition.from_fn(member),
            }
            for kind, registry in handlers:
                handler = found[kind]
                if handler is None:
                    continue
                if handler.name in registry:
                    shown = handler.name if handler.name is not None else "<dynamic>"
                    issues.append(
                        f"two @workflow.{kind} handlers for {shown!r} "
                        f"({registry[handler.name].fn.__name__} and {attr})"
                    )
                else:
                    registry[handler.name] = handler

        # A base class method decorated as a handler but overridden undecorated
        # would silently stop handling: make the override say it.
        for base in cls.__mro__[1:]:
            for attr, base_member in base.__dict__.items():
                if not inspect.isfunction(base_member) or attr not in cls.__dict__:
                    continue
                override = cls.__dict__[attr]
                checks = (
                    ("run", _RUN_ATTR),
                    ("signal", "__cadenza_signal_definition"),
                    ("query", "__cadenza_query_definition"),
                    ("update", "__cadenza_update_definition"),
                )
                for kind, marker in checks:
                    if hasattr(base_member, marker) and not hasattr(override, marker):
                        issues.append(
                            f"{base_member.__qualname__} is a @workflow.{kind} method but its "
                            f"override {cls.__qualname__}.{attr} is not decorated"
                        )

        run_fn: Callable[..., Any] | None = None
        if not run_fns:
            if not any("@workflow.run method" in issue for issue in issues):
                issues.append("missing @workflow.run method")
        elif len(run_fns) > 1:
            issues.append(
                "more than one @workflow.run method (" + ", ".join(a for a, _ in run_fns) + ")"
            )
        else:
            run_fn = run_fns[0][1]

        if run_fn is not None and init_fn is not None and not _same_parameters(init_fn, run_fn):
            issues.append("@workflow.init __init__ must take the same parameters as @workflow.run")

        arg_types: list[Any] | None = None
        ret_type: Any | None = None
        if run_fn is not None:
            arg_types, ret_type = _type_hints_from_func(run_fn)
            if name is None and (
                arg_types is None or len(arg_types) != 1 or not _is_raw_value_sequence(arg_types[0])
            ):
                issues.append(
                    "dynamic workflow's @workflow.run method must take exactly one "
                    "Sequence[RawValue] parameter"
                )

        if issues:
            if len(issues) == 1:
                raise ValueError(f"Invalid workflow class {cls.__qualname__}: {issues[0]}")
            listed = "; ".join(f"({i}) {issue}" for i, issue in enumerate(issues, 1))
            raise ValueError(
                f"Invalid workflow class {cls.__qualname__}, {len(issues)} problems: {listed}"
            )

        assert run_fn is not None
        definition = _Definition(
            name=name,
            cls=cls,
            run_fn=run_fn,
            signals=types.MappingProxyType(signals),
            queries=types.MappingProxyType(queries),
            updates=types.MappingProxyType(updates),
            init_fn=init_fn,
            sandboxed=sandboxed,
            failure_exception_types=failure_exception_types,
            arg_types=arg_types,
            ret_type=ret_type,
        )
        setattr(cls, _DEFN_ATTR, definition)
        setattr(run_fn, _DEFN_ATTR, definition)
