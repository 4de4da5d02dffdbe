"""Event appliers: how each history event changes a run's state.

One small function per event type, all in this table, and nothing else changes
state that history must be able to rebuild. ``apply`` is the only code replay
runs. State is the ``cadenza.state.WorkflowState`` record as a plain dict.

The decider (``_decide.py``) owns a few scheduling fields that no event
records, as Temporal's mutable state does: activity retry attempts and their
backoff, workflow task retry attempts, heartbeat details, result waiters and
update reply addresses. They live in the state changelog only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

State = dict[str, Any]
Event = dict[str, Any]  # a cadenza.history.HistoryEvent datum
Attrs = dict[str, Any]

DEFAULT_TASK_TIMEOUT_MS = 10_000
SIGNAL_IDS_KEPT = 1000

_H = "cadenza.history."


def new_state(event: Event) -> State:
    """The state of a run from its WorkflowExecutionStarted event."""
    attrs = event["attributes"][1]
    start = event["event_time_ms"]
    backoff = attrs.get("first_workflow_task_backoff_ms") or 0
    return {
        "workflow_id": event["workflow_id"],
        "run_id": event["run_id"],
        "first_execution_run_id": attrs["first_execution_run_id"],
        "status": "RUNNING",
        "workflow_type": attrs["workflow_type"],
        "task_queue": attrs["task_queue"],
        "start_time_ms": start,
        "execution_time_ms": start + backoff,
        "close_time_ms": None,
        "next_event_id": 2,
        "start_request_id": attrs.get("request_id", ""),
        "attempt": attrs.get("attempt", 1),
        "execution_timeout_ms": attrs.get("execution_timeout_ms"),
        "run_timeout_ms": attrs.get("run_timeout_ms"),
        "task_timeout_ms": attrs.get("task_timeout_ms") or DEFAULT_TASK_TIMEOUT_MS,
        "execution_expiration_time_ms": attrs.get("execution_expiration_time_ms"),
        "retry_policy": attrs.get("retry_policy"),
        "cron_schedule": attrs.get("cron_schedule"),
        "parent": attrs.get("parent"),
        "memo": dict(attrs.get("memo") or {}),
        "search_attributes": dict(attrs.get("search_attributes") or {}),
        "workflow_task": None,
        "workflow_task_needed": True,
        "worker_seen_event_id": 0,
        "last_completed_task_event_id": 0,
        "activities": {},
        "timers": {},
        "updates": {},
        "children": {},
        "externals": {},
        "signal_ids": [],
        "cancel_requested": False,
        "waiters": [],
        "result": [],
        "failure": None,
        "new_execution_run_id": None,
    }


def apply(state: State, event: Event) -> None:
    """Fold ``event`` (the run's next event) into ``state``."""
    name, attrs = event["attributes"]
    if event["event_id"] != state["next_event_id"]:
        raise ValueError(
            f"event {event['event_id']} of {state['workflow_id']}/{state['run_id']} applied to "
            f"state expecting event {state['next_event_id']}"
        )
    state["next_event_id"] += 1
    applier = APPLIERS.get(name)
    if applier is not None:
        applier(state, attrs, event)


# -- workflow tasks ---------------------------------------------------------------------------


def _task_scheduled(state: State, attrs: Attrs, event: Event) -> None:
    state["workflow_task"] = {
        "scheduled_event_id": event["event_id"],
        "started_event_id": 0,
        "attempt": attrs["attempt"],
        "dispatched_time_ms": event["event_time_ms"],
        "timeout_ms": attrs["start_to_close_timeout_ms"],
        "started_time_ms": None,
    }
    state["workflow_task_needed"] = False


def _task_started(state: State, attrs: Attrs, event: Event) -> None:
    task = state["workflow_task"]
    task["started_event_id"] = event["event_id"]
    task["dispatched_time_ms"] = event["event_time_ms"]


def _task_completed(state: State, attrs: Attrs, event: Event) -> None:
    state["workflow_task"] = None
    state["last_completed_task_event_id"] = event["event_id"]


def _task_failed_or_timed_out(state: State, attrs: Attrs, event: Event) -> None:
    # The next attempt is scheduled by the decider (with backoff for failures);
    # the worker's cache is no longer trusted.
    state["workflow_task"] = None
    state["workflow_task_needed"] = True
    state["worker_seen_event_id"] = 0


# -- inputs that the workflow must see ---------------------------------------------------------


def _needs_task(state: State, attrs: Attrs, event: Event) -> None:
    state["workflow_task_needed"] = True


def _signaled(state: State, attrs: Attrs, event: Event) -> None:
    state["workflow_task_needed"] = True
    signal_id = attrs.get("signal_id")
    if signal_id:
        ids = state["signal_ids"]
        ids.append(signal_id)
        if len(ids) > SIGNAL_IDS_KEPT:
            del ids[: len(ids) - SIGNAL_IDS_KEPT]


def _cancel_requested(state: State, attrs: Attrs, event: Event) -> None:
    state["cancel_requested"] = True
    state["workflow_task_needed"] = True


# -- activities -------------------------------------------------------------------------------


def _activity_scheduled(state: State, attrs: Attrs, event: Event) -> None:
    now = event["event_time_ms"]
    start_to_close = attrs.get("start_to_close_timeout_ms") or attrs.get(
        "schedule_to_close_timeout_ms"
    )
    eager = bool(attrs.get("eager_execution", False))
    state["activities"][str(event["event_id"])] = {
        "scheduled_event_id": event["event_id"],
        "activity_id": attrs["activity_id"],
        "activity_type": attrs["activity_type"],
        "task_queue": attrs["task_queue"],
        "input": attrs.get("input", []),
        "header": attrs.get("header", {}),
        "schedule_to_close_timeout_ms": attrs.get("schedule_to_close_timeout_ms"),
        "schedule_to_start_timeout_ms": attrs.get("schedule_to_start_timeout_ms"),
        "start_to_close_timeout_ms": start_to_close,
        "heartbeat_timeout_ms": attrs.get("heartbeat_timeout_ms"),
        "retry_policy": attrs.get("retry_policy"),
        "cancellation_type": attrs.get("cancellation_type", "TRY_CANCEL"),
        "scheduled_time_ms": now,
        "attempt": 1,
        "attempt_time_ms": now,
        "dispatched": True,
        # An eager attempt runs from the moment its workflow task completed.
        "started_time_ms": now if eager else None,
        "heartbeat_details": [],
        "last_heartbeat_time_ms": None,
        "cancel_requested": False,
        "last_failure": None,
        "eager": eager,
    }


def _activity_started(state: State, attrs: Attrs, event: Event) -> None:
    # Written together with the final outcome (Temporal records only the last attempt).
    pass


def _activity_closed(state: State, attrs: Attrs, event: Event) -> None:
    state["activities"].pop(str(attrs["scheduled_event_id"]), None)
    state["workflow_task_needed"] = True


def _activity_cancel_requested(state: State, attrs: Attrs, event: Event) -> None:
    activity = state["activities"].get(str(attrs["scheduled_event_id"]))
    if activity is not None:
        activity["cancel_requested"] = True


# -- timers -----------------------------------------------------------------------------------


def _timer_started(state: State, attrs: Attrs, event: Event) -> None:
    state["timers"][attrs["timer_id"]] = {
        "timer_id": attrs["timer_id"],
        "started_event_id": event["event_id"],
        "due_time_ms": event["event_time_ms"] + attrs["start_to_fire_timeout_ms"],
    }


def _timer_fired(state: State, attrs: Attrs, event: Event) -> None:
    state["timers"].pop(attrs["timer_id"], None)
    state["workflow_task_needed"] = True


def _timer_canceled(state: State, attrs: Attrs, event: Event) -> None:
    state["timers"].pop(attrs["timer_id"], None)


# -- properties -------------------------------------------------------------------------------


def _search_attributes(state: State, attrs: Attrs, event: Event) -> None:
    state["search_attributes"].update(attrs.get("search_attributes") or {})


def _memo(state: State, attrs: Attrs, event: Event) -> None:
    state["memo"].update(attrs.get("upserted_memo") or {})


def _update_accepted(state: State, attrs: Attrs, event: Event) -> None:
    update = state["updates"].get(attrs["update_id"])
    if update is not None:
        update["stage"] = "ACCEPTED"


def _update_closed(state: State, attrs: Attrs, event: Event) -> None:
    state["updates"].pop(attrs["update_id"], None)


def _update_admitted(state: State, attrs: Attrs, event: Event) -> None:
    request = attrs["request"]
    state["updates"].setdefault(
        request["update_id"],
        {
            "request": request,
            "stage": "ADMITTED",
            "wait_stage": "COMPLETED",
            "reply_to": None,
            "delivered": False,
        },
    )
    state["workflow_task_needed"] = True


# -- children and other workflows --------------------------------------------------------------


def _child_initiated(state: State, attrs: Attrs, event: Event) -> None:
    state["children"][str(event["event_id"])] = {
        "initiated_event_id": event["event_id"],
        "workflow_id": attrs["workflow_id"],
        "workflow_type": attrs["workflow_type"],
        "run_id": None,
        "started_event_id": 0,
        "parent_close_policy": attrs.get("parent_close_policy", "TERMINATE"),
    }


def _child_started(state: State, attrs: Attrs, event: Event) -> None:
    child = state["children"].get(str(attrs["initiated_event_id"]))
    if child is not None:
        child["run_id"] = attrs["run_id"]
        child["started_event_id"] = event["event_id"]
    state["workflow_task_needed"] = True


def _child_closed(state: State, attrs: Attrs, event: Event) -> None:
    state["children"].pop(str(attrs["initiated_event_id"]), None)
    state["workflow_task_needed"] = True


def _external_initiated(kind: str) -> Callable[[State, Attrs, Event], None]:
    def applier(state: State, attrs: Attrs, event: Event) -> None:
        state["externals"][str(event["event_id"])] = {
            "initiated_event_id": event["event_id"],
            "workflow_id": attrs["workflow_id"],
            "run_id": attrs.get("run_id"),
            "kind": kind,
        }

    return applier


def _external_resolved(state: State, attrs: Attrs, event: Event) -> None:
    state["externals"].pop(str(attrs["initiated_event_id"]), None)
    state["workflow_task_needed"] = True


# -- closing ----------------------------------------------------------------------------------


def _close(status: str) -> Callable[[State, Attrs, Event], None]:
    def closer(state: State, attrs: Attrs, event: Event) -> None:
        state["status"] = status
        state["close_time_ms"] = event["event_time_ms"]
        state["workflow_task"] = None
        state["workflow_task_needed"] = False
        # Whatever was pending is abandoned with the run; late answers are stale.
        state["activities"] = {}
        state["timers"] = {}
        state["result"] = attrs.get("result", []) if status == "COMPLETED" else []
        state["failure"] = attrs.get("failure")
        state["new_execution_run_id"] = attrs.get("new_execution_run_id")

    return closer


APPLIERS: dict[str, Callable[[State, Attrs, Event], None]] = {
    _H + "WorkflowTaskScheduled": _task_scheduled,
    _H + "WorkflowTaskStarted": _task_started,
    _H + "WorkflowTaskCompleted": _task_completed,
    _H + "WorkflowTaskFailed": _task_failed_or_timed_out,
    _H + "WorkflowTaskTimedOut": _task_failed_or_timed_out,
    _H + "WorkflowExecutionSignaled": _signaled,
    _H + "WorkflowExecutionCancelRequested": _cancel_requested,
    _H + "ActivityTaskScheduled": _activity_scheduled,
    _H + "ActivityTaskStarted": _activity_started,
    _H + "ActivityTaskCompleted": _activity_closed,
    _H + "ActivityTaskFailed": _activity_closed,
    _H + "ActivityTaskTimedOut": _activity_closed,
    _H + "ActivityTaskCanceled": _activity_closed,
    _H + "ActivityTaskCancelRequested": _activity_cancel_requested,
    _H + "TimerStarted": _timer_started,
    _H + "TimerFired": _timer_fired,
    _H + "TimerCanceled": _timer_canceled,
    _H + "UpsertWorkflowSearchAttributes": _search_attributes,
    _H + "WorkflowPropertiesModified": _memo,
    _H + "WorkflowExecutionUpdateAdmitted": _update_admitted,
    _H + "WorkflowExecutionUpdateAccepted": _update_accepted,
    _H + "WorkflowExecutionUpdateCompleted": _update_closed,
    _H + "WorkflowExecutionUpdateRejected": _update_closed,
    _H + "StartChildWorkflowExecutionInitiated": _child_initiated,
    _H + "StartChildWorkflowExecutionFailed": _child_closed,
    _H + "ChildWorkflowExecutionStarted": _child_started,
    _H + "ChildWorkflowExecutionCompleted": _child_closed,
    _H + "ChildWorkflowExecutionFailed": _child_closed,
    _H + "ChildWorkflowExecutionCanceled": _child_closed,
    _H + "ChildWorkflowExecutionTimedOut": _child_closed,
    _H + "ChildWorkflowExecutionTerminated": _child_closed,
    _H + "SignalExternalWorkflowExecutionInitiated": _external_initiated("SIGNAL"),
    _H + "RequestCancelExternalWorkflowExecutionInitiated": _external_initiated("CANCEL"),
    _H + "ExternalWorkflowExecutionSignaled": _external_resolved,
    _H + "SignalExternalWorkflowExecutionFailed": _external_resolved,
    _H + "ExternalWorkflowExecutionCancelRequested": _external_resolved,
    _H + "RequestCancelExternalWorkflowExecutionFailed": _external_resolved,
    _H + "WorkflowExecutionCompleted": _close("COMPLETED"),
    _H + "WorkflowExecutionFailed": _close("FAILED"),
    _H + "WorkflowExecutionCanceled": _close("CANCELED"),
    _H + "WorkflowExecutionTerminated": _close("TERMINATED"),
    _H + "WorkflowExecutionTimedOut": _close("TIMED_OUT"),
    _H + "WorkflowExecutionContinuedAsNew": _close("CONTINUED_AS_NEW"),
}
