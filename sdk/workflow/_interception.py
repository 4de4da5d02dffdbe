"""Worker interceptors inside a workflow instance: the inputs the instance hands to
them, and the innermost inbound and outbound links, which do the instance's work.

The interceptor base classes and the activity side are in
``cadenza.worker._interceptor`` (the worker package, as in temporalio); what is
here is what the workflow runtime needs without importing the worker.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from ..common._payload import Payload
from ..common._retry import RetryPolicy
from ._context import ContinueAsNewInput, StartActivityInput, StartChildWorkflowInput
from ._enums import ActivityCancellationType
from ._handles import ActivityHandle, ChildWorkflowHandle
from ._info import Info

if TYPE_CHECKING:
    from ._instance import WorkflowInstance

__all__ = [
    "ExecuteWorkflowInput",
    "HandleQueryInput",
    "HandleSignalInput",
    "HandleUpdateInput",
    "Interception",
    "SignalChildWorkflowInput",
    "SignalExternalWorkflowInput",
    "StartLocalActivityInput",
    "answer_at_once",
]


@dataclass
class ExecuteWorkflowInput:
    """Input of ``WorkflowInboundInterceptor.execute_workflow``."""

    type: type
    run_fn: Callable[..., Awaitable[Any]]
    """The ``@workflow.run`` method, unbound."""
    args: Sequence[Any]
    headers: Mapping[str, Payload]


@dataclass
class HandleSignalInput:
    """Input of ``WorkflowInboundInterceptor.handle_signal``."""

    signal: str
    args: Sequence[Any]
    headers: Mapping[str, Payload]


@dataclass
class HandleQueryInput:
    """Input of ``WorkflowInboundInterceptor.handle_query``."""

    id: str
    query: str
    args: Sequence[Any]
    headers: Mapping[str, Payload]


@dataclass
class HandleUpdateInput:
    """Input of the update methods of ``WorkflowInboundInterceptor``."""

    id: str
    update: str
    args: Sequence[Any]
    headers: Mapping[str, Payload]


@dataclass
class SignalChildWorkflowInput:
    """Input of ``WorkflowOutboundInterceptor.signal_child_workflow``."""

    signal: str
    args: Sequence[Any]
    child_workflow_id: str
    headers: Mapping[str, Payload]


@dataclass
class SignalExternalWorkflowInput:
    """Input of ``WorkflowOutboundInterceptor.signal_external_workflow``."""

    signal: str
    args: Sequence[Any]
    namespace: str
    workflow_id: str
    workflow_run_id: str | None
    headers: Mapping[str, Payload]


@dataclass
class StartLocalActivityInput:
    """Input of ``WorkflowOutboundInterceptor.start_local_activity``."""

    activity: str
    args: Sequence[Any]
    activity_id: str | None
    schedule_to_close_timeout: timedelta | None
    schedule_to_start_timeout: timedelta | None
    start_to_close_timeout: timedelta | None
    retry_policy: RetryPolicy | None
    local_retry_threshold: timedelta | None
    cancellation_type: ActivityCancellationType
    headers: Mapping[str, Payload]
    summary: str | None
    ret_type: Any | None

    @staticmethod
    def of(start: StartActivityInput) -> StartLocalActivityInput:
        """The local activity ``workflow.start_local_activity`` asked for."""
        return StartLocalActivityInput(
            activity=start.activity,
            args=start.args,
            activity_id=start.activity_id,
            schedule_to_close_timeout=start.schedule_to_close_timeout,
            schedule_to_start_timeout=start.schedule_to_start_timeout,
            start_to_close_timeout=start.start_to_close_timeout,
            retry_policy=start.retry_policy,
            local_retry_threshold=None,
            cancellation_type=start.cancellation_type,
            headers=start.headers,
            summary=start.summary,
            ret_type=start.result_type,
        )

    def as_activity(self) -> StartActivityInput:
        """The activity of the workflow's own queue that Cadenza runs it as."""
        return StartActivityInput(
            activity=self.activity,
            args=self.args,
            activity_id=self.activity_id,
            task_queue=None,
            result_type=self.ret_type,
            schedule_to_close_timeout=self.schedule_to_close_timeout,
            schedule_to_start_timeout=self.schedule_to_start_timeout,
            start_to_close_timeout=self.start_to_close_timeout,
            heartbeat_timeout=None,
            retry_policy=self.retry_policy,
            cancellation_type=self.cancellation_type,
            summary=self.summary,
            headers=self.headers,
        )


class _Inbound:
    """The innermost inbound link: runs the workflow's own code."""

    def __init__(self, instance: WorkflowInstance, interception: Interception) -> None:
        self._instance = instance
        self._interception = interception

    def init(self, outbound: Any) -> None:
        self._interception.outbound = outbound

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        return await input.run_fn(self._instance._object, *input.args)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        result = self._instance._signal_fn(input.signal)(*input.args)
        if inspect.isawaitable(result):
            await result

    async def handle_query(self, input: HandleQueryInput) -> Any:
        return self._instance._query_fn(input.query)(*input.args)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        validator = self._instance._update_validator(input.update)
        if validator is not None:
            validator(*input.args)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        result = self._instance._update_fn(input.update)(*input.args)
        if inspect.isawaitable(result):
            result = await result
        return result


class _Outbound:
    """The innermost outbound link: issues the instance's commands."""

    def __init__(self, instance: WorkflowInstance) -> None:
        self._instance = instance

    def continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        self._instance._continue_as_new_now(input)

    def info(self) -> Info:
        return self._instance.workflow_info()

    async def signal_child_workflow(self, input: SignalChildWorkflowInput) -> None:
        await self._instance._send_signal(
            input.child_workflow_id, None, input.signal, input.args, input.headers, child=True
        )

    async def signal_external_workflow(self, input: SignalExternalWorkflowInput) -> None:
        await self._instance._send_signal(
            input.workflow_id,
            input.workflow_run_id,
            input.signal,
            input.args,
            input.headers,
            child=False,
        )

    def start_activity(self, input: StartActivityInput) -> ActivityHandle[Any]:
        return self._instance._start_activity(input)

    async def start_child_workflow(
        self, input: StartChildWorkflowInput
    ) -> ChildWorkflowHandle[Any, Any]:
        return await self._instance._start_child_workflow(input)

    def start_local_activity(self, input: StartLocalActivityInput) -> ActivityHandle[Any]:
        return self._instance._start_activity(input.as_activity())


class Interception:
    """One instance's chain: ``inbound`` (outermost first) and ``outbound`` (set by the
    chain's ``init``)."""

    __slots__ = ("inbound", "outbound")

    def __init__(self, instance: WorkflowInstance, classes: Sequence[type]) -> None:
        inbound: Any = _Inbound(instance, self)
        for cls in reversed(classes):
            inbound = cls(inbound)
        self.inbound = inbound
        self.outbound: Any = _Outbound(instance)
        inbound.init(self.outbound)


def answer_at_once(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a query's interceptor chain to its answer without an event loop: a query
    answers from the state as it is, so nothing in it may wait.

    Raises:
        RuntimeError: Something in the chain waited.
    """
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError(
        "A workflow interceptor's handle_query waited on something: a query must answer "
        "at once, from the workflow's state"
    )
