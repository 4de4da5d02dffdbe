"""Applying input history events: one applier per event kind, in one place.

Each applier resolves what the event answers (an activity, a timer, a child,
a request to another workflow) or delivers it (a signal, an update, a
cancellation request). Replay runs exactly these, in history order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..exceptions import (
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    NondeterminismError,
    RetryState,
    TerminatedError,
    TimeoutError,
    TimeoutType,
    WorkflowAlreadyStartedError,
)
from . import _history as h
from ._machines import ActivityState, ChildState
from ._state import _State

_logger = logging.getLogger(__name__)


class _Appliers(_State):
    """The appliers of input events."""

    __slots__ = ()

    def _apply(self, event: h.HistoryEvent) -> None:
        applier = self._APPLIERS.get(h.event_kind(event))
        if applier is None:
            _logger.debug("Workflow %s ignores history event %s", self._workflow_id, event)
            return
        applier(self, int(event["event_id"]), h.event_attributes(event))

    def _on_signaled(self, _event_id: int, attributes: Mapping[str, Any]) -> None:
        self._deliver_signal(attributes)

    def _on_cancel_requested(self, _event_id: int, _attributes: Mapping[str, Any]) -> None:
        self._cancel_requested = True
        if self._main is not None and not self._main.done():
            self._main.cancel()

    def _on_update_admitted(self, _event_id: int, attributes: Mapping[str, Any]) -> None:
        self._deliver_update(attributes["request"], validate=True)

    def _on_activity_started(self, _event_id: int, attributes: Mapping[str, Any]) -> None:
        activity = self._activities.get(attributes["scheduled_event_id"])
        if activity is not None:
            activity.started_event_id = _event_id

    def _activity(self, event_id: int, attributes: Mapping[str, Any]) -> ActivityState:
        activity = self._activities.get(attributes["scheduled_event_id"])
        if activity is None:
            raise NondeterminismError(
                f"Nondeterminism at history event {event_id}: it resolves the activity "
                f"scheduled at event {attributes['scheduled_event_id']}, which the workflow "
                "code did not schedule"
            )
        return activity

    def _resolve_activity(self, activity: ActivityState, value: Any, error: bool) -> None:
        del self._activities[activity.scheduled_event_id]
        if activity.result is None or activity.result.done():
            return
        if error:
            activity.result.set_exception(value)
        else:
            activity.result.set_result(value)

    def _on_activity_completed(self, event_id: int, attributes: Mapping[str, Any]) -> None:
        activity = self._activity(event_id, attributes)
        payloads = attributes.get("result") or []
        try:
            hints = [activity.input.result_type] if activity.input.result_type else None
            value = self._pc.from_payloads(payloads, hints)[0] if payloads else None
        except Exception as err:
            self._resolve_activity(activity, err, True)
            return
        self._resolve_activity(activity, value, False)

    def _on_activity_failed(self, event_id: int, attributes: Mapping[str, Any]) -> None:
        activity = self._activity(event_id, attributes)
        cause = self._fc.from_failure(attributes["failure"], self._pc)
        error = self._activity_error(activity, "Activity task failed", attributes, cause)
        self._resolve_activity(activity, error, True)

    def _on_activity_timed_out(self, event_id: int, attributes: Mapping[str, Any]) -> None:
        activity = self._activity(event_id, attributes)
        cause = self._fc.from_failure(attributes["failure"], self._pc)
        error = self._activity_error(activity, "Activity task timed out", attributes, cause)
        self._resolve_activity(activity, error, True)

    def _on_activity_canceled(self, event_id: int, attributes: Mapping[str, Any]) -> None:
        activity = self._activity(event_id, attributes)
        details = self._pc.from_payloads(attributes.get("details") or [])
        cause = CancelledError("Activity cancelled", *details)
        error = self._activity_error(activity, "Activity task cancelled", attributes, cause)
        self._resolve_activity(activity, error, True)

    def _on_timer_fired(self, event_id: int, attributes: Mapping[str, Any]) -> None:
        timer_id = attributes["timer_id"]
        handle = self._timers.pop(timer_id, None)
        if handle is None:
            if timer_id in self._cancelled_timers:
                return
            raise NondeterminismError(
                f"Nondeterminism at history event {event_id}: TimerFired(timer_id={timer_id!r}) "
                "for a timer the workflow code did not start"
            )
        self._loop.fire_timer(handle)

    def _child(self, event_id: int, attributes: Mapping[str, Any]) -> ChildState:
        child = self._children.get(attributes["initiated_event_id"])
        if child is None:
            raise NondeterminismError(
                f"Nondeterminism at history event {event_id}: it resolves the child workflow "
                f"initiated at event {attributes['initiated_event_id']}, which the workflow "
                "code did not start"
            )
        return child

    def _on_child_started(self, event_id: int, attributes: Mapping[str, Any]) -> None:
        child = self._child(event_id, attributes)
        child.run_id = attributes["run_id"]
        child.started_event_id = event_id
        if child.started is not None and not child.started.done():
            child.started.set_result(None)

    def _on_child_start_failed(self, event_id: int, attributes: Mapping[str, Any]) -> None:
        child = self._children.pop(attributes["initiated_event_id"], None)
        if child is None:
            self._child(event_id, attributes)
            return
        error = WorkflowAlreadyStartedError(child.input.id, child.input.workflow)
        if child.started is not None and not child.started.done():
            child.started.set_exception(error)
        if child.result is not None and not child.result.done():
            child.result.set_exception(error)

    def _close_child(self, event_id: int, attributes: Mapping[str, Any], cause: Any) -> None:
        child = self._child(event_id, attributes)
        del self._children[child.initiated_event_id]
        if child.result is None or child.result.done():
            return
        if cause is None:
            payloads = attributes.get("result") or []
            try:
                hints = [child.input.result_type] if child.input.result_type else None
                value = self._pc.from_payloads(payloads, hints)[0] if payloads else None
            except Exception as err:
                child.result.set_exception(err)
                return
            child.result.set_result(value)
            return
        retry_state = attributes.get("retry_state")
        error = ChildWorkflowError(
            "Child Workflow execution failed",
            namespace=self._namespace,
            workflow_id=child.input.id,
            run_id=str(attributes.get("run_id") or child.run_id or ""),
            workflow_type=child.input.workflow,
            initiated_event_id=child.initiated_event_id,
            started_event_id=child.started_event_id,
            retry_state=RetryState.__members__.get(retry_state) if retry_state else None,
        )
        error.__cause__ = cause
        child.result.set_exception(error)

    def _on_child_completed(self, event_id: int, attributes: Mapping[str, Any]) -> None:
        self._close_child(event_id, attributes, None)

    def _on_child_failed(self, event_id: int, attributes: Mapping[str, Any]) -> None:
        cause = self._fc.from_failure(attributes["failure"], self._pc)
        self._close_child(event_id, attributes, cause)

    def _on_child_canceled(self, event_id: int, attributes: Mapping[str, Any]) -> None:
        details = self._pc.from_payloads(attributes.get("details") or [])
        self._close_child(event_id, attributes, CancelledError("Child cancelled", *details))

    def _on_child_timed_out(self, event_id: int, attributes: Mapping[str, Any]) -> None:
        cause = TimeoutError(
            "Child timed out", type=TimeoutType.START_TO_CLOSE, last_heartbeat_details=[]
        )
        self._close_child(event_id, attributes, cause)

    def _on_child_terminated(self, event_id: int, attributes: Mapping[str, Any]) -> None:
        self._close_child(event_id, attributes, TerminatedError("Terminated"))

    def _resolve_external(
        self, event_id: int, attributes: Mapping[str, Any], error: BaseException | None
    ) -> None:
        external = self._externals.pop(attributes["initiated_event_id"], None)
        if external is None:
            raise NondeterminismError(
                f"Nondeterminism at history event {event_id}: it answers a request initiated "
                f"at event {attributes['initiated_event_id']}, which the workflow code did "
                "not make"
            )
        if external.result.done():
            return
        if error is None:
            external.result.set_result(None)
        else:
            external.result.set_exception(error)

    def _on_external_signaled(self, event_id: int, attributes: Mapping[str, Any]) -> None:
        self._resolve_external(event_id, attributes, None)

    def _on_external_signal_failed(self, event_id: int, attributes: Mapping[str, Any]) -> None:
        error = ApplicationError(
            "Unable to signal external workflow because it was not found",
            type="ExternalWorkflowExecutionNotFound",
        )
        self._resolve_external(event_id, attributes, error)

    def _on_external_cancel_requested(self, event_id: int, attributes: Mapping[str, Any]) -> None:
        self._resolve_external(event_id, attributes, None)

    def _on_external_cancel_failed(self, event_id: int, attributes: Mapping[str, Any]) -> None:
        error = ApplicationError(
            "Unable to cancel external workflow because it was not found",
            type="ExternalWorkflowExecutionNotFound",
        )
        self._resolve_external(event_id, attributes, error)

    _APPLIERS: dict[str, Callable[[_Appliers, int, Mapping[str, Any]], None]] = {
        h.WORKFLOW_EXECUTION_SIGNALED: _on_signaled,
        h.WORKFLOW_EXECUTION_CANCEL_REQUESTED: _on_cancel_requested,
        h.WORKFLOW_EXECUTION_UPDATE_ADMITTED: _on_update_admitted,
        h.ACTIVITY_TASK_STARTED: _on_activity_started,
        h.ACTIVITY_TASK_COMPLETED: _on_activity_completed,
        h.ACTIVITY_TASK_FAILED: _on_activity_failed,
        h.ACTIVITY_TASK_TIMED_OUT: _on_activity_timed_out,
        h.ACTIVITY_TASK_CANCELED: _on_activity_canceled,
        h.TIMER_FIRED: _on_timer_fired,
        h.CHILD_WORKFLOW_EXECUTION_STARTED: _on_child_started,
        h.START_CHILD_WORKFLOW_EXECUTION_FAILED: _on_child_start_failed,
        h.CHILD_WORKFLOW_EXECUTION_COMPLETED: _on_child_completed,
        h.CHILD_WORKFLOW_EXECUTION_FAILED: _on_child_failed,
        h.CHILD_WORKFLOW_EXECUTION_CANCELED: _on_child_canceled,
        h.CHILD_WORKFLOW_EXECUTION_TIMED_OUT: _on_child_timed_out,
        h.CHILD_WORKFLOW_EXECUTION_TERMINATED: _on_child_terminated,
        h.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED: _on_external_signaled,
        h.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED: _on_external_signal_failed,
        h.EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED: _on_external_cancel_requested,
        h.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED: _on_external_cancel_failed,
    }
