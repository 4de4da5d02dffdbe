"""Completing an activity from outside its worker (temporalio's async activity completion).

An activity that calls ``activity.raise_complete_async()`` leaves its attempt
open: its worker sends nothing. Another process completes it with
``client.get_async_activity_handle(task_token=info.task_token)`` (the attempt the
token names) or ``(workflow_id=..., run_id=..., activity_id=...)`` (whatever
attempt is current), then :meth:`AsyncActivityHandle.complete`, ``fail``,
``report_cancellation`` or ``heartbeat``. Each is a command to the engine on the
workflow's ``commands`` partition, answered once the engine has applied it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..exceptions import ApplicationError, CadenzaError
from ..worker._activity_worker import TaskToken
from ..worker._shared import (
    ACTIVITY_TASK_CANCELED,
    ACTIVITY_TASK_COMPLETED,
    ACTIVITY_TASK_FAILED,
    ACTIVITY_TASK_HEARTBEAT,
    HEARTBEAT_RESPONSE,
)
from ._wire import expect

if TYPE_CHECKING:
    from ._client import Client

__all__ = [
    "AsyncActivityCancelledError",
    "AsyncActivityHandle",
    "AsyncActivityIDReference",
    "CompleteAsyncActivityInput",
    "FailAsyncActivityInput",
    "HeartbeatAsyncActivityInput",
    "ReportCancellationAsyncActivityInput",
]


class AsyncActivityCancelledError(CadenzaError):
    """A heartbeat found the activity's cancellation requested, or its attempt over."""

    def __init__(self) -> None:
        super().__init__("Activity cancelled")


@dataclass(frozen=True)
class AsyncActivityIDReference:
    """An activity named by its workflow and activity id (``run_id`` None: the latest run)."""

    workflow_id: str
    run_id: str | None
    activity_id: str


@dataclass
class HeartbeatAsyncActivityInput:
    """Input of :meth:`OutboundInterceptor.heartbeat_async_activity`."""

    id_or_token: AsyncActivityIDReference | bytes
    details: Sequence[Any]
    rpc_timeout: timedelta | None


@dataclass
class CompleteAsyncActivityInput:
    """Input of :meth:`OutboundInterceptor.complete_async_activity`."""

    id_or_token: AsyncActivityIDReference | bytes
    result: Any
    rpc_timeout: timedelta | None


@dataclass
class FailAsyncActivityInput:
    """Input of :meth:`OutboundInterceptor.fail_async_activity`."""

    id_or_token: AsyncActivityIDReference | bytes
    error: Exception
    last_heartbeat_details: Sequence[Any]
    rpc_timeout: timedelta | None


@dataclass
class ReportCancellationAsyncActivityInput:
    """Input of :meth:`OutboundInterceptor.report_cancellation_async_activity`."""

    id_or_token: AsyncActivityIDReference | bytes
    details: Sequence[Any]
    rpc_timeout: timedelta | None


class AsyncActivityHandle:
    """One activity's attempt, to complete from outside its worker (see the module)."""

    def __init__(self, client: Client, id_or_token: AsyncActivityIDReference | bytes) -> None:
        self._client = client
        self._id_or_token = id_or_token
        self._workflow_id: str
        self._run_id: str | None
        if isinstance(id_or_token, bytes):
            token = TaskToken.decode(id_or_token)
            self._workflow_id, self._run_id = token.workflow_id, token.run_id
            self._ids: dict[str, Any] = {
                "scheduled_event_id": token.scheduled_event_id,
                "attempt": token.attempt,
                "activity_id": token.activity_id,
            }
        else:
            self._workflow_id, self._run_id = id_or_token.workflow_id, id_or_token.run_id
            # Scheduled event id 0 and attempt 0: the current attempt of this activity id.
            self._ids = {
                "scheduled_event_id": 0,
                "attempt": 0,
                "activity_id": id_or_token.activity_id,
            }

    @property
    def id_or_token(self) -> AsyncActivityIDReference | bytes:
        """What the handle was made from."""
        return self._id_or_token

    async def heartbeat(self, *details: Any, rpc_timeout: timedelta | None = None) -> None:
        """Record a heartbeat with ``details`` (the next attempt's ``heartbeat_details``).

        Raises:
            AsyncActivityCancelledError: Cancellation was requested, or the attempt
                is over (completed, timed out, or its run closed).
        """
        beat = HeartbeatAsyncActivityInput(self._id_or_token, details, rpc_timeout)
        await self._client._outbound.heartbeat_async_activity(beat)

    async def _heartbeat_now(self, beat: HeartbeatAsyncActivityInput) -> None:
        encoded = await self._client.data_converter.encode(list(beat.details))
        reply = await self._send(ACTIVITY_TASK_HEARTBEAT, {"details": encoded}, beat.rpc_timeout)
        name, body = reply["body"]
        if name == HEARTBEAT_RESPONSE and body.get("cancel_requested"):
            raise AsyncActivityCancelledError()

    async def complete(self, result: Any = None, *, rpc_timeout: timedelta | None = None) -> None:
        """Complete the attempt with ``result``.

        Raises:
            CadenzaServiceError: NOT_FOUND when no such attempt is pending.
        """
        done = CompleteAsyncActivityInput(self._id_or_token, result, rpc_timeout)
        await self._client._outbound.complete_async_activity(done)

    async def _complete_now(self, done: CompleteAsyncActivityInput) -> None:
        payloads = await self._client.data_converter.encode([done.result])
        reply = await self._send(ACTIVITY_TASK_COMPLETED, {"result": payloads}, done.rpc_timeout)
        expect(reply, "CommandAccepted")

    async def fail(
        self,
        error: Exception,
        *,
        last_heartbeat_details: Sequence[Any] = (),
        rpc_timeout: timedelta | None = None,
    ) -> None:
        """Fail the attempt with ``error`` (retried per the activity's retry policy).

        Raises:
            CadenzaServiceError: NOT_FOUND when no such attempt is pending.
        """
        failing = FailAsyncActivityInput(
            self._id_or_token, error, last_heartbeat_details, rpc_timeout
        )
        await self._client._outbound.fail_async_activity(failing)

    async def _fail_now(self, failing: FailAsyncActivityInput) -> None:
        converter, error = self._client.data_converter, failing.error
        try:
            failure = await converter.encode_failure(error)
        except Exception as exc:
            failure = await converter.encode_failure(
                ApplicationError(f"{type(error).__name__}: {error} (not convertible: {exc})")
            )
        fields = {
            "failure": failure,
            "last_heartbeat_details": await converter.encode(list(failing.last_heartbeat_details)),
        }
        reply = await self._send(ACTIVITY_TASK_FAILED, fields, failing.rpc_timeout)
        expect(reply, "CommandAccepted")

    async def report_cancellation(
        self, *details: Any, rpc_timeout: timedelta | None = None
    ) -> None:
        """Acknowledge a requested cancellation: the activity ends as cancelled.

        Raises:
            CadenzaServiceError: NOT_FOUND when no such attempt is pending.
        """
        cancelled = ReportCancellationAsyncActivityInput(self._id_or_token, details, rpc_timeout)
        await self._client._outbound.report_cancellation_async_activity(cancelled)

    async def _report_cancellation_now(
        self, cancelled: ReportCancellationAsyncActivityInput
    ) -> None:
        fields = {"details": await self._client.data_converter.encode(list(cancelled.details))}
        reply = await self._send(ACTIVITY_TASK_CANCELED, fields, cancelled.rpc_timeout)
        expect(reply, "CommandAccepted")

    async def _send(
        self, name: str, fields: dict[str, Any], rpc_timeout: timedelta | None
    ) -> dict[str, Any]:
        timeout = (rpc_timeout or self._client.rpc_timeout).total_seconds()
        reply = await self._client.transport.send_command(
            self._workflow_id,
            (name, {**self._ids, **fields}),
            run_id=self._run_id,
            want_reply=True,
            timeout=timeout,
        )
        if reply is None:
            raise CadenzaError(f"no reply from the engine to {name.rsplit('.', 1)[-1]}")
        return reply
