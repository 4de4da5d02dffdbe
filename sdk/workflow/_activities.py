"""Starting activities from a workflow."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, TypedDict, TypeVar, overload

from ..activity._definition import _Definition as _ActivityDefinition
from ..common._retry import RetryPolicy
from ..common._typing import _arg_or_args, _arg_unset
from ._context import StartActivityInput, _Runtime
from ._enums import ActivityCancellationType
from ._exceptions import VersioningIntent
from ._handles import ActivityHandle

_R = TypeVar("_R")


class ActivityConfig(TypedDict, total=False):
    """Activity options as a dict, to share them: ``execute_activity(fn, x, **config)``."""

    task_queue: str | None
    schedule_to_close_timeout: timedelta | None
    schedule_to_start_timeout: timedelta | None
    start_to_close_timeout: timedelta | None
    heartbeat_timeout: timedelta | None
    retry_policy: RetryPolicy | None
    cancellation_type: ActivityCancellationType
    activity_id: str | None
    versioning_intent: VersioningIntent | None
    summary: str | None


def _check_timeout(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, timedelta):
        raise TypeError(f"{name} must be a timedelta, got {type(value).__name__} {value!r}")


def _activity_input(
    activity: Any,
    args: Sequence[Any],
    *,
    task_queue: str | None,
    result_type: Any | None,
    schedule_to_close_timeout: timedelta | None,
    schedule_to_start_timeout: timedelta | None,
    start_to_close_timeout: timedelta | None,
    heartbeat_timeout: timedelta | None,
    retry_policy: RetryPolicy | None,
    cancellation_type: ActivityCancellationType,
    activity_id: str | None,
    summary: str | None,
) -> StartActivityInput:
    name, defined_result_type = _ActivityDefinition.get_name_and_result_type(activity)
    for option, value in (
        ("schedule_to_close_timeout", schedule_to_close_timeout),
        ("schedule_to_start_timeout", schedule_to_start_timeout),
        ("start_to_close_timeout", start_to_close_timeout),
        ("heartbeat_timeout", heartbeat_timeout),
    ):
        _check_timeout(option, value)
    if schedule_to_close_timeout is None and start_to_close_timeout is None:
        raise ValueError(
            f"Activity {name!r} needs start_to_close_timeout or schedule_to_close_timeout"
        )
    if retry_policy is not None and not isinstance(retry_policy, RetryPolicy):
        raise TypeError(f"retry_policy must be a RetryPolicy, got {type(retry_policy).__name__}")
    return StartActivityInput(
        activity=name,
        args=list(args),
        activity_id=activity_id,
        task_queue=task_queue,
        result_type=result_type if result_type is not None else defined_result_type,
        schedule_to_close_timeout=schedule_to_close_timeout,
        schedule_to_start_timeout=schedule_to_start_timeout,
        start_to_close_timeout=start_to_close_timeout,
        heartbeat_timeout=heartbeat_timeout,
        retry_policy=retry_policy,
        cancellation_type=ActivityCancellationType(cancellation_type),
        summary=summary,
    )


@overload
def start_activity(
    activity: Callable[..., Awaitable[_R]],
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    result_type: type | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    versioning_intent: VersioningIntent | None = None,
    summary: str | None = None,
) -> ActivityHandle[_R]: ...


@overload
def start_activity(
    activity: Callable[..., _R],
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    result_type: type | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    versioning_intent: VersioningIntent | None = None,
    summary: str | None = None,
) -> ActivityHandle[_R]: ...


@overload
def start_activity(
    activity: str,
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    result_type: type | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    versioning_intent: VersioningIntent | None = None,
    summary: str | None = None,
) -> ActivityHandle[Any]: ...


def start_activity(
    activity: Any,
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    result_type: type | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    versioning_intent: VersioningIntent | None = None,
    summary: str | None = None,
) -> ActivityHandle[Any]:
    """Schedule an activity and return its handle (an :class:`asyncio.Task`).

    At least one of ``start_to_close_timeout`` and ``schedule_to_close_timeout``
    is required.

    Args:
        activity: An ``@activity.defn`` function (or method) or a type name.
        arg: The single argument.
        args: Several arguments (instead of ``arg``).
        task_queue: Task queue to run on. Defaults to the workflow's.
        result_type: Type to convert the result to (for activities by name).
        schedule_to_close_timeout: Limit from scheduling to completion, retries
            included.
        schedule_to_start_timeout: Limit from scheduling to a worker starting it.
        start_to_close_timeout: Limit for one attempt.
        heartbeat_timeout: Longest allowed gap between heartbeats.
        retry_policy: How failures are retried. ``None``: the engine's default
            (unlimited attempts, 1s initial backoff doubling to 100s).
        cancellation_type: What cancelling the handle waits for.
        activity_id: Explicit id; leave unset unless you need it.
        versioning_intent: Accepted for Temporal compatibility; ignored.
        summary: One-line summary shown in the UI.

    Returns:
        The activity's handle; await it for the result.
    """
    del versioning_intent  # Cadenza has no worker versioning.
    return _Runtime.current().workflow_start_activity(
        _activity_input(
            activity,
            _arg_or_args(arg, args),
            task_queue=task_queue,
            result_type=result_type,
            schedule_to_close_timeout=schedule_to_close_timeout,
            schedule_to_start_timeout=schedule_to_start_timeout,
            start_to_close_timeout=start_to_close_timeout,
            heartbeat_timeout=heartbeat_timeout,
            retry_policy=retry_policy,
            cancellation_type=cancellation_type,
            activity_id=activity_id,
            summary=summary,
        )
    )


@overload
async def execute_activity(
    activity: Callable[..., Awaitable[_R]],
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    result_type: type | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    versioning_intent: VersioningIntent | None = None,
    summary: str | None = None,
) -> _R: ...


@overload
async def execute_activity(
    activity: Callable[..., _R],
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    result_type: type | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    versioning_intent: VersioningIntent | None = None,
    summary: str | None = None,
) -> _R: ...


@overload
async def execute_activity(
    activity: str,
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    result_type: type | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    versioning_intent: VersioningIntent | None = None,
    summary: str | None = None,
) -> Any: ...


async def execute_activity(
    activity: Any,
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    result_type: type | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    versioning_intent: VersioningIntent | None = None,
    summary: str | None = None,
) -> Any:
    """Run an activity and return its result: ``await start_activity(...)``.

    See :func:`start_activity` for the options.

    Raises:
        cadenza.exceptions.ActivityError: The activity failed for good; its
            ``cause`` is the last attempt's failure.
    """
    return await start_activity(
        activity,
        arg,
        args=args,
        task_queue=task_queue,
        result_type=result_type,
        schedule_to_close_timeout=schedule_to_close_timeout,
        schedule_to_start_timeout=schedule_to_start_timeout,
        start_to_close_timeout=start_to_close_timeout,
        heartbeat_timeout=heartbeat_timeout,
        retry_policy=retry_policy,
        cancellation_type=cancellation_type,
        activity_id=activity_id,
        versioning_intent=versioning_intent,
        summary=summary,
    )


# Temporal's typed variants for activity methods and callable classes: same
# behaviour, the definition is read from the method or the class's __call__.
start_activity_method = start_activity
execute_activity_method = execute_activity


def start_activity_class(activity: type, *args: Any, **kwargs: Any) -> ActivityHandle[Any]:
    """:func:`start_activity` for an ``@activity.defn`` class (its ``__call__`` runs)."""
    return start_activity(activity, *args, **kwargs)


async def execute_activity_class(activity: type, *args: Any, **kwargs: Any) -> Any:
    """:func:`execute_activity` for an ``@activity.defn`` class."""
    return await start_activity_class(activity, *args, **kwargs)


def start_local_activity(
    activity: Any,
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    result_type: type | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    local_retry_threshold: timedelta | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    summary: str | None = None,
) -> ActivityHandle[Any]:
    """Start a local activity: run by the worker that runs this workflow, at once.

    Cadenza runs a local activity as an activity of the workflow's own task queue
    that this worker starts eagerly (as soon as the workflow task's completion is
    on Kafka), and whose result continues the workflow on the same worker: no
    task-queue hop, as with Temporal's local activities. Unlike Temporal's, it is
    recorded as an activity (``ActivityTaskScheduled`` ... ``ActivityTaskCompleted``,
    not a marker), its retries go through the engine with the activity's retry
    policy, and when the worker has no free activity slot it runs on another
    worker of the queue. The activity must be registered on the workflow's
    workers.

    Args:
        activity: An ``@activity.defn`` function (or method) or a type name.
        arg: The single argument.
        args: Several arguments (instead of ``arg``).
        result_type: Type to convert the result to (for activities by name).
        schedule_to_close_timeout: Limit from scheduling to completion, retries
            included.
        schedule_to_start_timeout: Limit from scheduling to a worker starting it.
        start_to_close_timeout: Limit for one attempt.
        retry_policy: How failures are retried (default: the engine's).
        local_retry_threshold: Accepted for Temporal compatibility; ignored
            (every retry is scheduled by the engine).
        cancellation_type: What cancelling the handle waits for.
        activity_id: Explicit id; leave unset unless you need it.
        summary: One-line summary shown in the UI.

    Returns:
        The activity's handle; await it for the result.
    """
    del local_retry_threshold
    return _Runtime.current().workflow_start_local_activity(
        _activity_input(
            activity,
            _arg_or_args(arg, args),
            task_queue=None,
            result_type=result_type,
            schedule_to_close_timeout=schedule_to_close_timeout,
            schedule_to_start_timeout=schedule_to_start_timeout,
            start_to_close_timeout=start_to_close_timeout,
            heartbeat_timeout=None,
            retry_policy=retry_policy,
            cancellation_type=cancellation_type,
            activity_id=activity_id,
            summary=summary,
        )
    )


async def execute_local_activity(
    activity: Any,
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    result_type: type | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    local_retry_threshold: timedelta | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    summary: str | None = None,
) -> Any:
    """:func:`start_local_activity` and wait for its result."""
    return await start_local_activity(
        activity,
        arg,
        args=args,
        result_type=result_type,
        schedule_to_close_timeout=schedule_to_close_timeout,
        schedule_to_start_timeout=schedule_to_start_timeout,
        start_to_close_timeout=start_to_close_timeout,
        retry_policy=retry_policy,
        local_retry_threshold=local_retry_threshold,
        cancellation_type=cancellation_type,
        activity_id=activity_id,
        summary=summary,
    )


start_local_activity_method = start_local_activity
start_local_activity_class = start_local_activity
execute_local_activity_method = execute_local_activity
execute_local_activity_class = execute_local_activity
