"""Worker interceptors, with temporalio's API: wrap how a worker runs activities and
workflows, and what workflow code asks of the engine.

An :class:`Interceptor` given to ``Worker(interceptors=[...])`` (or a
``Replayer``) returns, for each activity attempt, an
:class:`ActivityInboundInterceptor` wrapping the next one, and, for workflows, a
:class:`WorkflowInboundInterceptor` class the worker instantiates around each
workflow instance. An inbound interceptor's ``init`` may wrap the outbound
interceptor (what the code calls: ``activity.info()``, ``workflow.start_activity``
...) before passing it on. The first interceptor in the list is the outermost.

Headers travel with the work: what an outbound interceptor puts in
``input.headers`` of ``start_activity``, ``start_child_workflow``,
``continue_as_new`` or a signal reaches the inbound interceptors of the activity,
child, next run or signalled workflow, in the command and history records'
``header`` field (tracing context, say). Headers are not encoded by a payload
codec, as in Temporal.

Example:
    >>> class Named(Interceptor):
    ...     def intercept_activity(self, next):
    ...         return next
    >>> Named().workflow_interceptor_class(WorkflowInterceptorClassInput({})) is None
    True
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from ..activity import Info as ActivityInfo
from ..common._payload import Payload
from ..workflow._context import ContinueAsNewInput, StartActivityInput, StartChildWorkflowInput
from ..workflow._handles import ActivityHandle, ChildWorkflowHandle
from ..workflow._info import Info as WorkflowInfo
from ..workflow._interception import (
    ExecuteWorkflowInput,
    HandleQueryInput,
    HandleSignalInput,
    HandleUpdateInput,
    SignalChildWorkflowInput,
    SignalExternalWorkflowInput,
    StartLocalActivityInput,
)

__all__ = [
    "ActivityInboundInterceptor",
    "ActivityOutboundInterceptor",
    "ContinueAsNewInput",
    "ExecuteActivityInput",
    "ExecuteWorkflowInput",
    "HandleQueryInput",
    "HandleSignalInput",
    "HandleUpdateInput",
    "Interceptor",
    "SignalChildWorkflowInput",
    "SignalExternalWorkflowInput",
    "StartActivityInput",
    "StartChildWorkflowInput",
    "StartLocalActivityInput",
    "WorkflowInboundInterceptor",
    "WorkflowInterceptorClassInput",
    "WorkflowOutboundInterceptor",
]


class Interceptor:
    """A worker interceptor: override either method (the defaults intercept nothing)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        """The inbound interceptor for one activity attempt, wrapping ``next``."""
        return next

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        """The class instantiated (with the next inbound interceptor) around each workflow
        instance, or None. Asked once, when the worker (or replayer) is built."""
        del input
        return None


@dataclass(frozen=True)
class WorkflowInterceptorClassInput:
    """Input of :meth:`Interceptor.workflow_interceptor_class`.

    ``unsafe_extern_functions`` is accepted for temporalio compatibility; Cadenza runs
    workflows without a sandbox, so there is nothing to expose them to.
    """

    unsafe_extern_functions: MutableMapping[str, Callable[..., Any]]


# -- activities ----------------------------------------------------------------------------


@dataclass
class ExecuteActivityInput:
    """Input of :meth:`ActivityInboundInterceptor.execute_activity`."""

    fn: Callable[..., Any]
    args: Sequence[Any]
    executor: concurrent.futures.Executor | None
    """The worker's ``activity_executor`` for a sync activity, None for an async one."""
    headers: Mapping[str, Payload]


class ActivityInboundInterceptor:
    """Wraps one activity attempt's execution; delegates to ``next`` by default."""

    def __init__(self, next: ActivityInboundInterceptor) -> None:
        self.next = next

    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        """Receive the outbound interceptor (wrap it before passing it on to add one)."""
        self.next.init(outbound)

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        """Run the activity (in the attempt's activity context)."""
        return await self.next.execute_activity(input)


class ActivityOutboundInterceptor:
    """Wraps what activity code calls; delegates to ``next`` by default."""

    def __init__(self, next: ActivityOutboundInterceptor) -> None:
        self.next = next

    def info(self) -> ActivityInfo:
        """Called for every ``activity.info()``."""
        return self.next.info()

    def heartbeat(self, *details: Any) -> None:
        """Called for every ``activity.heartbeat()``."""
        self.next.heartbeat(*details)


# -- workflows -----------------------------------------------------------------------------


class WorkflowInboundInterceptor:
    """Wraps a workflow instance's run and handlers; delegates to ``next`` by default.

    Workflow interceptors run inside the workflow, on its deterministic event loop,
    and are replayed with it: they must be deterministic too.
    """

    def __init__(self, next: WorkflowInboundInterceptor) -> None:
        self.next = next

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        """Receive the outbound interceptor (wrap it before passing it on to add one)."""
        self.next.init(outbound)

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        """Run the workflow's ``@workflow.run`` method."""
        return await self.next.execute_workflow(input)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        """Run a signal handler."""
        return await self.next.handle_signal(input)

    async def handle_query(self, input: HandleQueryInput) -> Any:
        """Run a query handler. It must not wait: a query answers at once."""
        return await self.next.handle_query(input)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        """Run an update's validator."""
        self.next.handle_update_validator(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        """Run an update's handler."""
        return await self.next.handle_update_handler(input)


class WorkflowOutboundInterceptor:
    """Wraps what workflow code asks of the engine; delegates to ``next`` by default."""

    def __init__(self, next: WorkflowOutboundInterceptor) -> None:
        self.next = next

    def continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        """Called for every ``workflow.continue_as_new()``."""
        self.next.continue_as_new(input)

    def info(self) -> WorkflowInfo:
        """Called for every ``workflow.info()``."""
        return self.next.info()

    async def signal_child_workflow(self, input: SignalChildWorkflowInput) -> None:
        """Called for every ``ChildWorkflowHandle.signal()``."""
        return await self.next.signal_child_workflow(input)

    async def signal_external_workflow(self, input: SignalExternalWorkflowInput) -> None:
        """Called for every ``ExternalWorkflowHandle.signal()``."""
        return await self.next.signal_external_workflow(input)

    def start_activity(self, input: StartActivityInput) -> ActivityHandle[Any]:
        """Called for every ``workflow.start_activity()`` and ``execute_activity()``."""
        return self.next.start_activity(input)

    async def start_child_workflow(
        self, input: StartChildWorkflowInput
    ) -> ChildWorkflowHandle[Any, Any]:
        """Called for every ``workflow.start_child_workflow()`` and
        ``execute_child_workflow()``."""
        return await self.next.start_child_workflow(input)

    def start_local_activity(self, input: StartLocalActivityInput) -> ActivityHandle[Any]:
        """Called for every ``workflow.start_local_activity()`` and
        ``execute_local_activity()``."""
        return self.next.start_local_activity(input)


def workflow_interceptor_classes(interceptors: Sequence[Interceptor]) -> list[type]:
    """The workflow inbound classes of ``interceptors``, outermost first (asked once, as
    a worker or replayer is built)."""
    for interceptor in interceptors:
        if not isinstance(interceptor, Interceptor):
            raise TypeError(
                f"interceptors must be cadenza.worker.Interceptor instances (subclass it), "
                f"not {type(interceptor).__name__}"
            )
    asked = WorkflowInterceptorClassInput(unsafe_extern_functions={})
    classes = (interceptor.workflow_interceptor_class(asked) for interceptor in interceptors)
    return [cls for cls in classes if cls is not None]
