"""The contract between the workflow API and the workflow runtime.

Every runtime-facing ``cadenza.workflow`` function fetches the current
:class:`_Runtime` and calls one of its ``workflow_*`` methods. The runtime
(``cadenza.workflow._runtime``, run by the worker) implements them, and makes
itself current around workflow code with :meth:`_Runtime.set` (a context
variable, inherited by tasks created afterwards) or :meth:`_Runtime.set_on_loop`
(an attribute of its deterministic event loop, seen by every callback on it).
"""

from __future__ import annotations

import asyncio
import contextvars
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from random import Random
from typing import Any, NoReturn

from ..common._enums import WorkflowIDReusePolicy
from ..common._metric import MetricMeter
from ..common._payload import Payload
from ..common._retry import RetryPolicy
from ..common._search_attributes import (
    SearchAttributes,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)
from ..converter import PayloadConverter
from ._enums import ActivityCancellationType, ChildWorkflowCancellationType, ParentClosePolicy
from ._exceptions import _NotInWorkflowEventLoopError
from ._handles import ActivityHandle, ChildWorkflowHandle, ExternalWorkflowHandle
from ._info import Info

_LOOP_ATTR = "__cadenza_workflow_runtime"

_current: contextvars.ContextVar[_Runtime | None] = contextvars.ContextVar(
    "cadenza_workflow_runtime", default=None
)


@dataclass(kw_only=True)
class StartActivityInput:
    """What ``workflow.start_activity`` asks the runtime to schedule.

    Names are resolved and options checked before the runtime sees them.
    """

    activity: str
    """Activity type name."""
    args: Sequence[Any]
    """Arguments, unconverted."""
    activity_id: str | None
    """Explicit activity id, or ``None`` for the runtime's (deterministic) choice."""
    task_queue: str | None
    """Task queue, or ``None`` for the workflow's."""
    result_type: Any | None
    """Type hint to convert the result to."""
    schedule_to_close_timeout: timedelta | None
    schedule_to_start_timeout: timedelta | None
    start_to_close_timeout: timedelta | None
    heartbeat_timeout: timedelta | None
    retry_policy: RetryPolicy | None
    """``None`` for the engine's default policy."""
    cancellation_type: ActivityCancellationType
    summary: str | None
    """One-line summary shown in the UI."""
    headers: Mapping[str, Payload] = field(default_factory=dict)
    """Sent with the activity task (worker interceptors set them)."""


@dataclass(kw_only=True)
class StartChildWorkflowInput:
    """What ``workflow.start_child_workflow`` asks the runtime to start."""

    workflow: str
    """Workflow type name."""
    args: Sequence[Any]
    """Arguments, unconverted."""
    id: str
    """Child workflow id (defaulted with ``workflow.uuid4()``)."""
    task_queue: str | None
    """Task queue, or ``None`` for the parent's."""
    result_type: Any | None
    """Type hint to convert the result to."""
    cancellation_type: ChildWorkflowCancellationType
    parent_close_policy: ParentClosePolicy
    execution_timeout: timedelta | None
    run_timeout: timedelta | None
    task_timeout: timedelta | None
    id_reuse_policy: WorkflowIDReusePolicy
    retry_policy: RetryPolicy | None
    cron_schedule: str
    """Cron schedule, or ``""`` for none."""
    memo: Mapping[str, Any] | None
    """Memo values, unconverted."""
    search_attributes: SearchAttributes | TypedSearchAttributes | None
    static_summary: str | None
    static_details: str | None
    headers: Mapping[str, Payload] = field(default_factory=dict)
    """Sent with the child's start (worker interceptors set them)."""


@dataclass(kw_only=True)
class ContinueAsNewInput:
    """What ``workflow.continue_as_new`` asks the runtime to continue into.

    ``None`` options default to the current run's.
    """

    workflow: str | None
    """Workflow type name, or ``None`` for the current type."""
    args: Sequence[Any]
    task_queue: str | None
    run_timeout: timedelta | None
    task_timeout: timedelta | None
    backoff_start_interval: timedelta | None
    retry_policy: RetryPolicy | None
    memo: Mapping[str, Any] | None
    search_attributes: SearchAttributes | TypedSearchAttributes | None
    headers: Mapping[str, Payload] = field(default_factory=dict)
    """Sent with the next run's start (worker interceptors set them)."""


class _Runtime(ABC):
    """What the workflow runtime implements for the workflow API (one per workflow run).

    Determinism is the runtime's job: time, randomness and ids must come from
    history, and every method that adds a command records it in order.
    """

    __slots__ = ()

    @staticmethod
    def current() -> _Runtime:
        """The running workflow's runtime.

        Raises:
            RuntimeError: ``Not in workflow event loop`` (an internal
                ``CadenzaError`` subclass that is also a ``RuntimeError``).
        """
        runtime = _Runtime.maybe_current()
        if runtime is None:
            raise _NotInWorkflowEventLoopError()
        return runtime

    @staticmethod
    def maybe_current() -> _Runtime | None:
        """The running workflow's runtime, or ``None`` outside workflows."""
        runtime = _current.get()
        if runtime is not None:
            return runtime
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        found = getattr(loop, _LOOP_ATTR, None)
        return found if isinstance(found, _Runtime) else None

    @staticmethod
    def set(runtime: _Runtime | None) -> contextvars.Token[_Runtime | None]:
        """Make ``runtime`` current in this context; undo with :meth:`reset`."""
        return _current.set(runtime)

    @staticmethod
    def reset(token: contextvars.Token[_Runtime | None]) -> None:
        """Restore the runtime that was current before :meth:`set`."""
        _current.reset(token)

    @staticmethod
    def set_on_loop(loop: asyncio.AbstractEventLoop, runtime: _Runtime | None) -> None:
        """Make ``runtime`` current for all code running on ``loop`` (``None`` clears)."""
        if runtime is None:
            if hasattr(loop, _LOOP_ATTR):
                delattr(loop, _LOOP_ATTR)
        else:
            setattr(loop, _LOOP_ATTR, runtime)

    @property
    def logger_details(self) -> Mapping[str, Any]:
        """Info fields added to workflow log records."""
        return self.workflow_info()._logger_details()

    # Facts and deterministic sources.

    @abstractmethod
    def workflow_info(self) -> Info:
        """The workflow's :class:`Info` (search attributes kept up to date)."""

    def workflow_info_for_code(self) -> Info:
        """What ``workflow.info()`` returns: :meth:`workflow_info`, through the worker
        interceptors' ``info`` when there are any."""
        return self.workflow_info()

    @abstractmethod
    def workflow_instance(self) -> Any:
        """The workflow class instance."""

    @abstractmethod
    def workflow_time_ns(self) -> int:
        """Workflow time in nanoseconds since the epoch (the current task's time)."""

    @abstractmethod
    def workflow_random(self) -> Random:
        """The run's deterministically seeded random generator."""

    @abstractmethod
    def workflow_is_replaying(self) -> bool:
        """Whether the code is replaying history."""

    @abstractmethod
    def workflow_payload_converter(self) -> PayloadConverter:
        """The worker's payload converter (no codec)."""

    @abstractmethod
    def workflow_get_current_history_length(self) -> int:
        """Events in history so far."""

    @abstractmethod
    def workflow_is_continue_as_new_suggested(self) -> bool:
        """Whether the history is large enough to suggest continue-as-new."""

    @abstractmethod
    def workflow_is_failure_exception(self, error: BaseException) -> bool:
        """Whether ``error`` escaping the workflow fails it (rather than the task)."""

    def workflow_metric_meter(self) -> MetricMeter:
        """The workflow's metric meter (records nothing while replaying); a runtime
        without metrics keeps this default, the no-op meter."""
        return MetricMeter.noop

    # Commands.

    @abstractmethod
    def workflow_start_activity(self, input: StartActivityInput) -> ActivityHandle[Any]:
        """Schedule an activity; the handle resolves with its (converted) result."""

    def workflow_start_local_activity(self, input: StartActivityInput) -> ActivityHandle[Any]:
        """Schedule a local activity (an eager activity of the workflow's own queue)."""
        return self.workflow_start_activity(input)

    @abstractmethod
    async def workflow_start_child_workflow(
        self, input: StartChildWorkflowInput
    ) -> ChildWorkflowHandle[Any, Any]:
        """Start a child; return once it started (raise ``WorkflowAlreadyStartedError``)."""

    @abstractmethod
    def workflow_get_external_workflow_handle(
        self, workflow_id: str, *, run_id: str | None
    ) -> ExternalWorkflowHandle[Any]:
        """A handle to signal or cancel another workflow."""

    @abstractmethod
    def workflow_continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        """Raise a ``ContinueAsNewError`` (subclass) carrying ``input``."""

    @abstractmethod
    async def workflow_sleep(self, duration: float, *, summary: str | None) -> None:
        """Start a durable timer of ``duration`` seconds and wait for it."""

    @abstractmethod
    async def workflow_wait_condition(
        self,
        fn: Callable[[], bool],
        *,
        timeout: float | None,
        timeout_summary: str | None,
    ) -> None:
        """Wait until ``fn()`` is true; raise :class:`asyncio.TimeoutError` after ``timeout``
        seconds (a durable timer, only when ``timeout`` is not ``None``)."""

    @abstractmethod
    def workflow_patch(self, id: str, *, deprecated: bool) -> bool:
        """Record or check patch marker ``id``; whether to take the new code path."""

    @abstractmethod
    def workflow_upsert_search_attributes(
        self, attributes: Sequence[SearchAttributeUpdate[Any]] | SearchAttributes
    ) -> None:
        """Change search attributes (updates, or the deprecated untyped mapping)."""

    @abstractmethod
    def workflow_memo(self) -> Mapping[str, Any]:
        """The memo, converted without type hints."""

    @abstractmethod
    def workflow_memo_value(self, key: str, default: Any, *, type_hint: Any | None) -> Any:
        """One memo value; ``default`` is ``_arg_unset`` when none was given
        (then a missing key raises ``KeyError``)."""

    @abstractmethod
    def workflow_upsert_memo(self, updates: Mapping[str, Any]) -> None:
        """Set memo keys; a ``None`` value removes the key."""

    # Handlers.

    @abstractmethod
    def workflow_all_handlers_finished(self) -> bool:
        """Whether no signal or update handler is still running."""

    @abstractmethod
    def workflow_get_signal_handler(self, name: str | None) -> Callable[..., Any] | None:
        """The signal handler for ``name`` (``None``: the dynamic one)."""

    @abstractmethod
    def workflow_set_signal_handler(
        self, name: str | None, handler: Callable[..., Any] | None
    ) -> None:
        """Set (or remove with ``None``) a signal handler; buffered signals are delivered."""

    @abstractmethod
    def workflow_get_query_handler(self, name: str | None) -> Callable[..., Any] | None:
        """The query handler for ``name`` (``None``: the dynamic one)."""

    @abstractmethod
    def workflow_set_query_handler(
        self, name: str | None, handler: Callable[..., Any] | None
    ) -> None:
        """Set (or remove with ``None``) a query handler."""

    @abstractmethod
    def workflow_get_update_handler(self, name: str | None) -> Callable[..., Any] | None:
        """The update handler for ``name`` (``None``: the dynamic one)."""

    @abstractmethod
    def workflow_set_update_handler(
        self,
        name: str | None,
        handler: Callable[..., Any] | None,
        validator: Callable[..., None] | None,
    ) -> None:
        """Set (or remove with ``None``) an update handler and its validator."""

    # Cron and retries.

    @abstractmethod
    def workflow_has_last_completion_result(self) -> bool:
        """Whether a previous cron run completed with a result."""

    @abstractmethod
    def workflow_last_completion_result(self, type_hint: Any | None) -> Any | None:
        """The previous cron run's result, converted to ``type_hint``."""

    @abstractmethod
    def workflow_last_failure(self) -> BaseException | None:
        """The previous attempt's or cron run's failure, if any."""
