"""Commands for activities, timers, child workflows and other workflows, and their
cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from ..common._payload import Payload
from ..exceptions import CancelledError, ChildWorkflowError
from . import _history as h
from . import _search
from ._context import StartActivityInput, StartChildWorkflowInput
from ._enums import ActivityCancellationType, ChildWorkflowCancellationType, ParentClosePolicy
from ._handles import ActivityHandle, ChildWorkflowHandle
from ._interception import (
    SignalChildWorkflowInput,
    SignalExternalWorkflowInput,
    StartLocalActivityInput,
)
from ._loop import DurableTimerHandle
from ._machines import (
    ActivityState,
    ChildState,
    ExternalState,
    _ActivityHandle,
    _ChildWorkflowHandle,
)
from ._state import _ms, _State


class _Outbound(_State):
    """Issuing (and cancelling) the commands that start work outside the workflow."""

    __slots__ = ()

    # Timers (from the loop's call_later/call_at).

    def loop_start_timer(self, handle: DurableTimerHandle, delay: float) -> None:
        """Start a durable timer for ``handle`` (called by the event loop)."""
        timer_id = str(self._next_seq("timer"))
        handle.timer_id = timer_id
        ms = max(1, round(delay * 1000))
        self._timers[timer_id] = handle
        handle.pending = self._add_command(
            h.START_TIMER, {"timer_id": timer_id, "start_to_fire_timeout_ms": ms}
        )

    def loop_cancel_timer(self, handle: DurableTimerHandle) -> None:
        """Cancel the durable timer of ``handle`` (called by the event loop)."""
        if self._timers.pop(handle.timer_id, None) is None:
            return
        self._cancelled_timers.add(handle.timer_id)
        if self._drop_if_unsent(handle.pending):
            return
        if not self._closed:
            self._add_command(h.CANCEL_TIMER, {"timer_id": handle.timer_id})

    # External workflows (also used by child handles).

    async def _signal_external(
        self,
        workflow_id: str,
        run_id: str | None,
        signal: str,
        args: Sequence[Any],
        *,
        child_workflow_only: bool,
    ) -> None:
        interception = self._interception
        if interception is None:
            await self._send_signal(
                workflow_id, run_id, signal, args, {}, child=child_workflow_only
            )
        elif child_workflow_only:
            await interception.outbound.signal_child_workflow(
                SignalChildWorkflowInput(
                    signal=signal, args=args, child_workflow_id=workflow_id, headers={}
                )
            )
        else:
            await interception.outbound.signal_external_workflow(
                SignalExternalWorkflowInput(
                    signal=signal,
                    args=args,
                    namespace=self._namespace,
                    workflow_id=workflow_id,
                    workflow_run_id=run_id,
                    headers={},
                )
            )

    async def _send_signal(
        self,
        workflow_id: str,
        run_id: str | None,
        signal: str,
        args: Sequence[Any],
        headers: Mapping[str, Payload],
        *,
        child: bool,
    ) -> None:
        record: dict[str, Any] = {
            "workflow_id": workflow_id,
            "run_id": run_id,
            "signal_name": signal,
            "input": self._pc.to_payloads(args),
            "header": dict(headers),
            "child_workflow_only": child,
        }
        await self._external_request(h.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION, record, workflow_id)

    async def _cancel_external(
        self, workflow_id: str, run_id: str | None, *, reason: str, child_workflow_only: bool
    ) -> None:
        record: dict[str, Any] = {
            "workflow_id": workflow_id,
            "run_id": run_id,
            "child_workflow_only": child_workflow_only,
            "reason": reason,
        }
        await self._external_request(
            h.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION, record, workflow_id
        )

    def _external_request_future(
        self, name: str, record: dict[str, Any], workflow_id: str
    ) -> ExternalState:
        state = ExternalState(result=self._loop.create_future(), workflow_id=workflow_id)

        def recorded(event_id: int) -> None:
            state.initiated_event_id = event_id
            self._externals[event_id] = state

        state.command = self._add_command(name, record, on_recorded=recorded)
        return state

    async def _external_request(self, name: str, record: dict[str, Any], workflow_id: str) -> None:
        state = self._external_request_future(name, record, workflow_id)
        try:
            await asyncio.shield(state.result)
        except asyncio.CancelledError:
            if self._drop_if_unsent(state.command):
                raise
            # Already sent: the engine delivers it anyway; wait for the answer.
            await state.result

    def workflow_start_activity(self, input: StartActivityInput) -> ActivityHandle[Any]:
        """See :meth:`_Runtime.workflow_start_activity`."""
        if self._interception is not None:
            handle: ActivityHandle[Any] = self._interception.outbound.start_activity(input)
            return handle
        return self._start_activity(input)

    def workflow_start_local_activity(self, input: StartActivityInput) -> ActivityHandle[Any]:
        """See :meth:`_Runtime.workflow_start_local_activity`."""
        if self._interception is not None:
            local = StartLocalActivityInput.of(input)
            handle: ActivityHandle[Any] = self._interception.outbound.start_local_activity(local)
            return handle
        return self._start_activity(input)

    def _start_activity(self, input: StartActivityInput) -> ActivityHandle[Any]:
        seq = self._next_seq("activity")
        activity = ActivityState(input=input, activity_id=input.activity_id or str(seq))
        activity.result = self._loop.create_future()
        record: dict[str, Any] = {
            "activity_id": activity.activity_id,
            "activity_type": input.activity,
            "task_queue": input.task_queue or self.workflow_info().task_queue,
            "input": self._pc.to_payloads(input.args),
            "header": dict(input.headers),
            "schedule_to_close_timeout_ms": _ms(input.schedule_to_close_timeout),
            "schedule_to_start_timeout_ms": _ms(input.schedule_to_start_timeout),
            "start_to_close_timeout_ms": _ms(input.start_to_close_timeout),
            "heartbeat_timeout_ms": _ms(input.heartbeat_timeout),
            "retry_policy": input.retry_policy.to_avro() if input.retry_policy else None,
            "cancellation_type": input.cancellation_type.name,
        }

        def recorded(event_id: int) -> None:
            activity.scheduled_event_id = event_id
            self._activities[event_id] = activity

        activity.command = self._add_command(h.SCHEDULE_ACTIVITY_TASK, record, on_recorded=recorded)
        handle = _ActivityHandle(self._wait_activity(activity), loop=self._loop)
        handle._cadenza_on_cancel = lambda: self._cancel_activity(activity)
        return handle

    async def _wait_activity(self, activity: ActivityState) -> Any:
        assert activity.result is not None
        while True:
            try:
                return await asyncio.shield(activity.result)
            except asyncio.CancelledError:
                if activity.result.done():
                    continue
                self._cancel_activity(activity)

    def _cancel_activity(self, activity: ActivityState) -> None:
        assert activity.result is not None
        if activity.cancel_requested:
            return
        activity.cancel_requested = True
        cancelled = self._activity_error(
            activity, "Activity cancelled", {}, CancelledError("Activity cancelled")
        )
        kind = activity.input.cancellation_type
        if self._drop_if_unsent(activity.command) or kind is ActivityCancellationType.ABANDON:
            # An abandoned activity stays known: its resolution may still arrive.
            activity.result.set_exception(cancelled)
            return
        self._add_command(
            h.REQUEST_CANCEL_ACTIVITY_TASK, {"scheduled_event_id": activity.scheduled_event_id}
        )
        if kind is ActivityCancellationType.TRY_CANCEL:
            activity.result.set_exception(cancelled)

    async def workflow_start_child_workflow(
        self, input: StartChildWorkflowInput
    ) -> ChildWorkflowHandle[Any, Any]:
        """See :meth:`_Runtime.workflow_start_child_workflow`."""
        if self._interception is not None:
            handle: ChildWorkflowHandle[
                Any, Any
            ] = await self._interception.outbound.start_child_workflow(input)
            return handle
        return await self._start_child_workflow(input)

    async def _start_child_workflow(
        self, input: StartChildWorkflowInput
    ) -> ChildWorkflowHandle[Any, Any]:
        child = ChildState(input=input)
        child.started = self._loop.create_future()
        child.result = self._loop.create_future()
        record: dict[str, Any] = {
            "workflow_id": input.id,
            "workflow_type": input.workflow,
            "task_queue": input.task_queue or self.workflow_info().task_queue,
            "input": self._pc.to_payloads(input.args),
            "execution_timeout_ms": _ms(input.execution_timeout),
            "run_timeout_ms": _ms(input.run_timeout),
            "task_timeout_ms": _ms(input.task_timeout),
            "parent_close_policy": (
                "TERMINATE"
                if input.parent_close_policy is ParentClosePolicy.UNSPECIFIED
                else input.parent_close_policy.name
            ),
            "id_reuse_policy": input.id_reuse_policy.name,
            "retry_policy": input.retry_policy.to_avro() if input.retry_policy else None,
            "cron_schedule": input.cron_schedule or None,
            "memo": {k: self._pc.to_payload(v) for k, v in (input.memo or {}).items()},
            "search_attributes": _search.encode_typed(input.search_attributes, self._pc),
            "header": dict(input.headers),
        }

        def recorded(event_id: int) -> None:
            child.initiated_event_id = event_id
            self._children[event_id] = child

        child.command = self._add_command(
            h.START_CHILD_WORKFLOW_EXECUTION, record, on_recorded=recorded
        )
        handle = _ChildWorkflowHandle(self._wait_child(child), loop=self._loop)
        handle._cadenza_instance = self
        handle._cadenza_child = child
        try:
            await asyncio.shield(child.started)
        except asyncio.CancelledError:
            if not child.started.done():
                handle.cancel()
            raise
        return handle

    async def _wait_child(self, child: ChildState) -> Any:
        assert child.result is not None
        while True:
            try:
                return await asyncio.shield(child.result)
            except asyncio.CancelledError:
                if child.result.done():
                    continue
                await self._cancel_child(child)

    async def _cancel_child(self, child: ChildState) -> None:
        assert child.result is not None and child.started is not None
        if child.cancel_requested:
            return
        child.cancel_requested = True
        kind = child.input.cancellation_type
        cancelled = ChildWorkflowError(
            "Child Workflow execution cancelled",
            namespace=self._namespace,
            workflow_id=child.input.id,
            run_id=child.run_id or "",
            workflow_type=child.input.workflow,
            initiated_event_id=child.initiated_event_id,
            started_event_id=child.started_event_id,
            retry_state=None,
        )
        cancelled.__cause__ = CancelledError("Cancelled")
        if self._drop_if_unsent(child.command):
            child.started.set_exception(cancelled)
            child.result.set_exception(cancelled)
            return
        if kind is ChildWorkflowCancellationType.ABANDON:
            child.result.set_exception(cancelled)
            return
        if not child.started.done():
            await asyncio.shield(child.started)
        state = self._external_request_future(
            h.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION,
            {
                "workflow_id": child.input.id,
                "run_id": None,
                "child_workflow_only": True,
                "reason": "",
            },
            child.input.id,
        )
        if kind is ChildWorkflowCancellationType.TRY_CANCEL and not child.result.done():
            child.result.set_exception(cancelled)
        elif kind is ChildWorkflowCancellationType.WAIT_CANCELLATION_REQUESTED:
            await asyncio.shield(state.result)
            if not child.result.done():
                child.result.set_exception(cancelled)
