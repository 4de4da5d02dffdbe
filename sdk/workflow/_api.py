"""Workflow API functions that read or change the running workflow.

Each delegates to the current :class:`~cadenza.workflow._context._Runtime`
and raises ``RuntimeError("Not in workflow event loop")`` outside a workflow.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any, TypeVar, overload

from ..common._metric import MetricMeter
from ..common._search_attributes import SearchAttributes, SearchAttributeUpdate
from ..common._typing import _arg_unset
from ..converter import PayloadConverter
from ._context import _Runtime
from ._info import Info

_T = TypeVar("_T")


def in_workflow() -> bool:
    """Whether the caller runs inside a workflow."""
    return _Runtime.maybe_current() is not None


def info() -> Info:
    """The running workflow's :class:`Info`."""
    return _Runtime.current().workflow_info_for_code()


def instance() -> Any:
    """The running workflow's class instance."""
    return _Runtime.current().workflow_instance()


def time_ns() -> int:
    """Workflow time in nanoseconds since the epoch (deterministic ``time.time_ns``)."""
    return _Runtime.current().workflow_time_ns()


def time() -> float:
    """Workflow time in seconds since the epoch (deterministic ``time.time``)."""
    return time_ns() / 1e9


def now() -> datetime:
    """Workflow time as an aware UTC datetime (deterministic ``datetime.now(UTC)``).

    It is the time of the current workflow task: it does not advance while
    the code runs without waiting.
    """
    seconds, nanos = divmod(time_ns(), 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=nanos // 1000)


def random() -> Random:
    """The run's deterministically seeded random generator (not for secrets)."""
    return _Runtime.current().workflow_random()


def uuid4() -> uuid.UUID:
    """A version 4 UUID drawn from :func:`random` (deterministic; not for secrets)."""
    return uuid.UUID(int=random().getrandbits(128), version=4)


async def sleep(duration: float | timedelta, *, summary: str | None = None) -> None:
    """Sleep on a durable timer: survives crashes, restarts and deploys.

    Args:
        duration: Seconds, or a timedelta.
        summary: One-line summary shown in the UI.
    """
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
    await _Runtime.current().workflow_sleep(seconds, summary=summary)


async def wait_condition(
    fn: Callable[[], bool],
    *,
    timeout: timedelta | float | None = None,
    timeout_summary: str | None = None,
) -> None:
    """Wait until ``fn()`` returns true (it is checked after every state change).

    Args:
        fn: A non-async function of no arguments.
        timeout: Give up after this long (a durable timer) with
            :class:`asyncio.TimeoutError`. Changing between ``None`` and a value
            changes the workflow's commands: it is not a replay-safe change.
        timeout_summary: Summary of the timeout timer shown in the UI.
    """
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    await _Runtime.current().workflow_wait_condition(
        fn, timeout=seconds, timeout_summary=timeout_summary
    )


def patched(id: str) -> bool:
    """Whether to take the new code path of patch ``id`` (safe workflow versioning).

    True when running new code, or replaying a history that took the new path.
    """
    return _Runtime.current().workflow_patch(id, deprecated=False)


def deprecate_patch(id: str) -> None:
    """Mark patch ``id`` as always taken, once no history with the old path remains."""
    _Runtime.current().workflow_patch(id, deprecated=True)


def upsert_search_attributes(
    attributes: Sequence[SearchAttributeUpdate[Any]] | SearchAttributes,
) -> None:
    """Change the workflow's search attributes.

    Args:
        attributes: Updates made with ``key.value_set(v)`` / ``key.value_unset()``.
            The untyped mapping form is deprecated, as in Temporal.
    """
    if not attributes:
        return
    if isinstance(attributes, Mapping):
        warnings.warn(
            "Dictionary-based search attributes are deprecated; use SearchAttributeKey updates",
            DeprecationWarning,
            stacklevel=2,
        )
    _Runtime.current().workflow_upsert_search_attributes(attributes)


def memo() -> Mapping[str, Any]:
    """The workflow's memo, converted without type hints (dataclasses come back as dicts)."""
    return _Runtime.current().workflow_memo()


@overload
def memo_value(key: str, default: Any = _arg_unset) -> Any: ...


@overload
def memo_value(key: str, *, type_hint: type[_T]) -> _T: ...


@overload
def memo_value(key: str, default: Any, *, type_hint: type[_T]) -> Any: ...


def memo_value(key: str, default: Any = _arg_unset, *, type_hint: Any | None = None) -> Any:
    """One memo value, converted to ``type_hint`` if given.

    Raises:
        KeyError: ``key`` is absent and no ``default`` was given.
    """
    return _Runtime.current().workflow_memo_value(key, default, type_hint=type_hint)


def upsert_memo(updates: Mapping[str, Any]) -> None:
    """Set memo keys; a ``None`` value removes the key."""
    _Runtime.current().workflow_upsert_memo(updates)


def all_handlers_finished() -> bool:
    """Whether no signal or update handler is running.

    Wait for it before returning, so handlers are not abandoned:
    ``await workflow.wait_condition(workflow.all_handlers_finished)``.
    """
    return _Runtime.current().workflow_all_handlers_finished()


def payload_converter() -> PayloadConverter:
    """The worker's payload converter (e.g. to convert ``RawValue`` arguments)."""
    return _Runtime.current().workflow_payload_converter()


def is_failure_exception(err: BaseException) -> bool:
    """Whether ``err`` escaping the workflow would fail it (not just the task)."""
    return _Runtime.current().workflow_is_failure_exception(err)


def has_last_completion_result() -> bool:
    """Whether the previous cron run completed with a result."""
    return _Runtime.current().workflow_has_last_completion_result()


@overload
def get_last_completion_result() -> Any | None: ...


@overload
def get_last_completion_result(type_hint: type[_T]) -> _T | None: ...


def get_last_completion_result(type_hint: Any | None = None) -> Any | None:
    """The previous cron run's result (``None`` if none; see :func:`has_last_completion_result`)."""
    return _Runtime.current().workflow_last_completion_result(type_hint)


def get_last_failure() -> BaseException | None:
    """The previous attempt's or cron run's failure, if any."""
    return _Runtime.current().workflow_last_failure()


def get_signal_handler(name: str) -> Callable[..., Any] | None:
    """The handler of signal ``name``, if any."""
    return _Runtime.current().workflow_get_signal_handler(name)


def set_signal_handler(name: str, handler: Callable[..., Any] | None) -> None:
    """Set (or with ``None`` remove) the handler of signal ``name``; buffered signals run."""
    _Runtime.current().workflow_set_signal_handler(name, handler)


def get_dynamic_signal_handler() -> Callable[..., Any] | None:
    """The dynamic signal handler, if any."""
    return _Runtime.current().workflow_get_signal_handler(None)


def set_dynamic_signal_handler(handler: Callable[..., Any] | None) -> None:
    """Set (or remove) the handler of signals with no handler of their own."""
    _Runtime.current().workflow_set_signal_handler(None, handler)


def get_query_handler(name: str) -> Callable[..., Any] | None:
    """The handler of query ``name``, if any."""
    return _Runtime.current().workflow_get_query_handler(name)


def set_query_handler(name: str, handler: Callable[..., Any] | None) -> None:
    """Set (or with ``None`` remove) the handler of query ``name``."""
    _Runtime.current().workflow_set_query_handler(name, handler)


def get_dynamic_query_handler() -> Callable[..., Any] | None:
    """The dynamic query handler, if any."""
    return _Runtime.current().workflow_get_query_handler(None)


def set_dynamic_query_handler(handler: Callable[..., Any] | None) -> None:
    """Set (or remove) the handler of queries with no handler of their own."""
    _Runtime.current().workflow_set_query_handler(None, handler)


def get_update_handler(name: str) -> Callable[..., Any] | None:
    """The handler of update ``name``, if any."""
    return _Runtime.current().workflow_get_update_handler(name)


def set_update_handler(
    name: str,
    handler: Callable[..., Any] | None,
    *,
    validator: Callable[..., None] | None = None,
) -> None:
    """Set (or with ``None`` remove) the handler and validator of update ``name``."""
    _Runtime.current().workflow_set_update_handler(name, handler, validator)


def get_dynamic_update_handler() -> Callable[..., Any] | None:
    """The dynamic update handler, if any."""
    return _Runtime.current().workflow_get_update_handler(None)


def set_dynamic_update_handler(
    handler: Callable[..., Any] | None,
    *,
    validator: Callable[..., None] | None = None,
) -> None:
    """Set (or remove) the handler of updates with no handler of their own."""
    _Runtime.current().workflow_set_update_handler(None, handler, validator)


def metric_meter() -> MetricMeter:
    """The workflow's metric meter: its metrics carry the ``namespace``,
    ``task_queue`` and ``workflow_type`` attributes, and record nothing while the
    workflow replays history (so a value is counted once per run, not once per replay).

    The worker's client's ``Runtime`` decides where they go; with no metrics
    configured this is ``MetricMeter.noop``.

    Example::

        @workflow.run
        async def run(self, order: Order) -> None:
            workflow.metric_meter().create_counter("orders_taken").add(1)
    """
    return _Runtime.current().workflow_metric_meter()
