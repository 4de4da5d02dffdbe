"""Client interceptors, with temporalio's API: wrap what a client asks of the engine.

``Client.connect(interceptors=[...])`` chains each :class:`Interceptor`'s
:class:`OutboundInterceptor` around the client's own calls, the first in the
list outermost. Headers an interceptor sets on a start, a signal, a query or an
update travel in the command's ``header`` field to the workflow, where worker
interceptors read them (``ExecuteWorkflowInput.headers`` and the like). An
interceptor that is also a ``cadenza.worker.Interceptor`` is used by every
worker built on the client too, ahead of the worker's own, as in temporalio.

Intercepted: every call: starting (and executing) workflows, signals, queries,
updates, cancellation, termination, describe, list, count, history reads and
async activity completion.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ._async_activity import (
    AsyncActivityHandle,
    AsyncActivityIDReference,
    CompleteAsyncActivityInput,
    FailAsyncActivityInput,
    HeartbeatAsyncActivityInput,
    ReportCancellationAsyncActivityInput,
)

if TYPE_CHECKING:
    from ..common._enums import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
    from ..common._payload import Payload
    from ..common._retry import RetryPolicy
    from ..common._search_attributes import SearchAttributes, TypedSearchAttributes
    from ._client import Client
    from ._describe import WorkflowExecutionDescription
    from ._handle import WorkflowHandle
    from ._list import WorkflowExecutionAsyncIterator, WorkflowExecutionCount
    from ._update import WorkflowUpdateHandle, WorkflowUpdateStage

__all__ = [
    "CancelWorkflowInput",
    "CompleteAsyncActivityInput",
    "CountWorkflowsInput",
    "DescribeWorkflowInput",
    "FailAsyncActivityInput",
    "FetchWorkflowHistoryEventsInput",
    "HeartbeatAsyncActivityInput",
    "Interceptor",
    "ListWorkflowsInput",
    "OutboundInterceptor",
    "QueryWorkflowInput",
    "ReportCancellationAsyncActivityInput",
    "SignalWorkflowInput",
    "StartWorkflowInput",
    "StartWorkflowUpdateInput",
    "TerminateWorkflowInput",
]


class Interceptor:
    """A client interceptor: override :meth:`intercept_client`."""

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        """The outbound interceptor for the client's calls, wrapping ``next``."""
        return next


@dataclass
class StartWorkflowInput:
    """Input of :meth:`OutboundInterceptor.start_workflow`."""

    workflow: str
    args: Sequence[Any]
    id: str
    task_queue: str
    execution_timeout: timedelta | None
    run_timeout: timedelta | None
    task_timeout: timedelta | None
    id_reuse_policy: WorkflowIDReusePolicy
    id_conflict_policy: WorkflowIDConflictPolicy
    retry_policy: RetryPolicy | None
    cron_schedule: str
    memo: Mapping[str, Any] | None
    search_attributes: SearchAttributes | TypedSearchAttributes | None
    start_delay: timedelta | None
    headers: Mapping[str, Payload]
    start_signal: str | None
    start_signal_args: Sequence[Any]
    ret_type: type | None
    rpc_timeout: timedelta | None
    request_eager_start: bool
    result_reply_to: dict[str, Any] | None = field(default=None, repr=False)
    """Cadenza's own: ``execute_workflow`` asks for the result with the start."""


@dataclass
class SignalWorkflowInput:
    """Input of :meth:`OutboundInterceptor.signal_workflow`."""

    id: str
    run_id: str | None
    signal: str
    args: Sequence[Any]
    headers: Mapping[str, Payload]
    rpc_timeout: timedelta | None


@dataclass
class QueryWorkflowInput:
    """Input of :meth:`OutboundInterceptor.query_workflow`."""

    id: str
    run_id: str | None
    query: str
    args: Sequence[Any]
    reject_condition: Any | None
    headers: Mapping[str, Payload]
    ret_type: type | None
    rpc_timeout: timedelta | None


@dataclass
class StartWorkflowUpdateInput:
    """Input of :meth:`OutboundInterceptor.start_workflow_update`."""

    id: str
    run_id: str | None
    first_execution_run_id: str | None
    update_id: str | None
    update: str
    args: Sequence[Any]
    wait_for_stage: WorkflowUpdateStage
    headers: Mapping[str, Payload]
    ret_type: type | None
    rpc_timeout: timedelta | None


@dataclass
class CancelWorkflowInput:
    """Input of :meth:`OutboundInterceptor.cancel_workflow`."""

    id: str
    run_id: str | None
    first_execution_run_id: str | None
    rpc_timeout: timedelta | None
    reason: str = ""


@dataclass
class TerminateWorkflowInput:
    """Input of :meth:`OutboundInterceptor.terminate_workflow`."""

    id: str
    run_id: str | None
    first_execution_run_id: str | None
    args: Sequence[Any]
    reason: str | None
    rpc_timeout: timedelta | None


@dataclass
class DescribeWorkflowInput:
    """Input of :meth:`OutboundInterceptor.describe_workflow`."""

    id: str
    run_id: str | None
    rpc_timeout: timedelta | None


@dataclass
class ListWorkflowsInput:
    """Input of :meth:`OutboundInterceptor.list_workflows`."""

    query: str | None
    page_size: int
    next_page_token: bytes | None
    rpc_timeout: timedelta | None
    limit: int | None


@dataclass
class FetchWorkflowHistoryEventsInput:
    """Input of :meth:`OutboundInterceptor.fetch_workflow_history_events`."""

    id: str
    run_id: str | None
    rpc_timeout: timedelta | None


@dataclass
class CountWorkflowsInput:
    """Input of :meth:`OutboundInterceptor.count_workflows`."""

    query: str | None
    rpc_timeout: timedelta | None


class OutboundInterceptor:
    """Wraps a client's calls; delegates to ``next`` by default."""

    def __init__(self, next: OutboundInterceptor) -> None:
        self.next = next

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        """Called for every ``start_workflow`` and ``execute_workflow``."""
        return await self.next.start_workflow(input)

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        """Called for every ``WorkflowHandle.signal``."""
        await self.next.signal_workflow(input)

    async def query_workflow(self, input: QueryWorkflowInput) -> Any:
        """Called for every ``WorkflowHandle.query``."""
        return await self.next.query_workflow(input)

    async def start_workflow_update(
        self, input: StartWorkflowUpdateInput
    ) -> WorkflowUpdateHandle[Any]:
        """Called for every ``WorkflowHandle.start_update`` and ``execute_update``."""
        return await self.next.start_workflow_update(input)

    async def cancel_workflow(self, input: CancelWorkflowInput) -> None:
        """Called for every ``WorkflowHandle.cancel``."""
        await self.next.cancel_workflow(input)

    async def terminate_workflow(self, input: TerminateWorkflowInput) -> None:
        """Called for every ``WorkflowHandle.terminate``."""
        await self.next.terminate_workflow(input)

    async def describe_workflow(self, input: DescribeWorkflowInput) -> WorkflowExecutionDescription:
        """Called for every ``WorkflowHandle.describe``."""
        return await self.next.describe_workflow(input)

    async def count_workflows(self, input: CountWorkflowsInput) -> WorkflowExecutionCount:
        """Called for every ``Client.count_workflows``."""
        return await self.next.count_workflows(input)

    def list_workflows(self, input: ListWorkflowsInput) -> WorkflowExecutionAsyncIterator:
        """Called for every ``Client.list_workflows``."""
        return self.next.list_workflows(input)

    def fetch_workflow_history_events(
        self, input: FetchWorkflowHistoryEventsInput
    ) -> AsyncIterator[Mapping[str, Any]]:
        """Called for every ``WorkflowHandle.fetch_history`` and ``fetch_history_events``."""
        return self.next.fetch_workflow_history_events(input)

    async def heartbeat_async_activity(self, input: HeartbeatAsyncActivityInput) -> None:
        """Called for every ``AsyncActivityHandle.heartbeat``."""
        await self.next.heartbeat_async_activity(input)

    async def complete_async_activity(self, input: CompleteAsyncActivityInput) -> None:
        """Called for every ``AsyncActivityHandle.complete``."""
        await self.next.complete_async_activity(input)

    async def fail_async_activity(self, input: FailAsyncActivityInput) -> None:
        """Called for every ``AsyncActivityHandle.fail``."""
        await self.next.fail_async_activity(input)

    async def report_cancellation_async_activity(
        self, input: ReportCancellationAsyncActivityInput
    ) -> None:
        """Called for every ``AsyncActivityHandle.report_cancellation``."""
        await self.next.report_cancellation_async_activity(input)


class _Innermost(OutboundInterceptor):
    """The end of the chain: the client's own calls."""

    def __init__(self, client: Client) -> None:  # no next
        self._client = client

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        return await self._client._start_workflow_now(input)

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        await self._handle(input.id, input.run_id)._signal_now(input)

    async def query_workflow(self, input: QueryWorkflowInput) -> Any:
        return await self._handle(input.id, input.run_id)._query_now(input)

    async def start_workflow_update(
        self, input: StartWorkflowUpdateInput
    ) -> WorkflowUpdateHandle[Any]:
        return await self._handle(input.id, input.run_id)._start_update_now(input)

    async def cancel_workflow(self, input: CancelWorkflowInput) -> None:
        await self._handle(input.id, input.run_id)._cancel_now(input)

    async def terminate_workflow(self, input: TerminateWorkflowInput) -> None:
        await self._handle(input.id, input.run_id)._terminate_now(input)

    async def describe_workflow(self, input: DescribeWorkflowInput) -> WorkflowExecutionDescription:
        return await self._handle(input.id, input.run_id)._describe_now(input)

    async def count_workflows(self, input: CountWorkflowsInput) -> WorkflowExecutionCount:
        return await self._client._count_workflows_now(input)

    def list_workflows(self, input: ListWorkflowsInput) -> WorkflowExecutionAsyncIterator:
        return self._client._list_workflows_now(input)

    def fetch_workflow_history_events(
        self, input: FetchWorkflowHistoryEventsInput
    ) -> AsyncIterator[Mapping[str, Any]]:
        return self._handle(input.id, input.run_id)._history_events_now(input)

    async def heartbeat_async_activity(self, input: HeartbeatAsyncActivityInput) -> None:
        await self._activity(input.id_or_token)._heartbeat_now(input)

    async def complete_async_activity(self, input: CompleteAsyncActivityInput) -> None:
        await self._activity(input.id_or_token)._complete_now(input)

    async def fail_async_activity(self, input: FailAsyncActivityInput) -> None:
        await self._activity(input.id_or_token)._fail_now(input)

    async def report_cancellation_async_activity(
        self, input: ReportCancellationAsyncActivityInput
    ) -> None:
        await self._activity(input.id_or_token)._report_cancellation_now(input)

    def _activity(self, id_or_token: AsyncActivityIDReference | bytes) -> AsyncActivityHandle:
        return AsyncActivityHandle(self._client, id_or_token)

    def _handle(self, workflow_id: str, run_id: str | None) -> WorkflowHandle[Any, Any]:
        return self._client.get_workflow_handle(workflow_id, run_id=run_id)


def outbound_chain(client: Client, interceptors: Sequence[Interceptor]) -> OutboundInterceptor:
    """The client's calls through ``interceptors`` (the first outermost); without any,
    the client's own code (one call more per call: nothing is measurable)."""
    for interceptor in interceptors:
        if not isinstance(interceptor, Interceptor):
            raise TypeError(
                f"interceptors must be cadenza.client.Interceptor instances (subclass it), "
                f"not {type(interceptor).__name__}"
            )
    chain: OutboundInterceptor = _Innermost(client)
    for interceptor in reversed(interceptors):
        chain = interceptor.intercept_client(chain)
    return chain
