"""What comes back: activity outcomes, notices from other workflows, timers and timeouts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._apply import State
from ._common import (
    Context,
    _activity_attempt_failed,
    _close,
    _dispatch_new_task,
    _log,
    _reply,
    _running_or_none,
    _send_activity_task,
    _send_workflow_task,
    _timeout_failure,
    drop_transient_task,
    emit,
    is_transient,
    schedule_workflow_task,
)
from ._runs import _close_run
from ._timers import RESEND_UNTAKEN_TASK_AFTER_MS
from ._workflow_task import _task_completed

# -- activity outcomes ------------------------------------------------------------------------


def _pending_attempt(
    ctx: Context, command: dict[str, Any], body: dict[str, Any]
) -> tuple[State, dict[str, Any]] | None:
    state = _running_or_none(ctx, command)
    if state is None:
        return None
    activity = _attempt_activity(state["activities"], body)
    if activity is None or not activity["dispatched"]:
        return None
    if body["attempt"] not in (0, activity["attempt"]):
        return None
    return state, activity


def _attempt_activity(activities: dict[str, Any], body: dict[str, Any]) -> dict[str, Any] | None:
    """The activity an outcome, start or heartbeat names: by scheduled event id, or (id 0)
    an eagerly started attempt by activity id, or (id 0 and attempt 0: a client's
    ``get_async_activity_handle`` by ids) the current attempt of that activity id. A
    named activity id must match."""
    activity_id = body.get("activity_id", "")
    if body["scheduled_event_id"] == 0:
        if not activity_id:
            return None
        any_attempt = body["attempt"] == 0
        # Activity ids are unique among a run's open activities.
        found: dict[str, Any] | None = next(
            (
                a
                for a in activities.values()
                if (any_attempt or a["eager"]) and a["activity_id"] == activity_id
            ),
            None,
        )
        return found
    activity = activities.get(str(body["scheduled_event_id"]))
    if activity is not None and activity_id and activity["activity_id"] != activity_id:
        return None
    return activity


def _not_pending(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    """An outcome for an attempt that is not pending is ignored (a stale worker's); a
    sender that asked for a reply (an async completion through the client) hears why."""
    _reply(
        ctx,
        command,
        "CommandRejected",
        {
            "code": "NOT_FOUND",
            "message": (
                f"activity {body.get('activity_id') or body['scheduled_event_id']} of workflow "
                f"{command['workflow_id']} has no pending attempt {body['attempt'] or ''}".rstrip()
                + " (it completed, timed out or was cancelled, or the run closed)"
            ),
        },
    )


def _activity_completed(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    pending = _pending_attempt(ctx, command, body)
    if pending is None:
        _not_pending(ctx, command, body)
        return
    state, activity = pending
    _reply(ctx, command, "CommandAccepted", {"run_id": state["run_id"]})
    continuation = body.get("continuation")
    if continuation is not None:
        refused = _continuation_refused(state, activity, continuation)
        if refused:
            _log.debug(
                "continuation of workflow %s ignored: %s; dispatching its task",
                command["workflow_id"],
                refused,
            )
            continuation = None
    identity = command.get("identity", "")
    started = emit(
        ctx,
        state,
        "ActivityTaskStarted",
        {
            "scheduled_event_id": activity["scheduled_event_id"],
            "attempt": activity["attempt"],
            "identity": identity,
            "last_failure": activity["last_failure"],
        },
    )
    emit(
        ctx,
        state,
        "ActivityTaskCompleted",
        {
            "result": body.get("result", []),
            "scheduled_event_id": activity["scheduled_event_id"],
            "started_event_id": started,
            "identity": identity,
        },
    )
    if continuation is not None:
        # The worker ran the task this completion wakes: record it as run then (its
        # WorkflowTaskStarted time is what workflow.now() read, so it is kept exactly,
        # even when the worker's clock is behind this engine's), and apply its
        # completion, all in this decision.
        _dispatch_new_task(ctx, state, attempt=1, ran_at_ms=continuation["task_time_ms"])
        _task_completed(ctx, command, continuation["completion"])
        return
    schedule_workflow_task(ctx, state)
    ctx.put(state)


def _continuation_refused(
    state: State, activity: dict[str, Any], continuation: dict[str, Any]
) -> str | None:
    """Why a worker's continuation cannot stand in for the next workflow task, or None.

    The worker ran the task on the history it last saw, the activity's schedule, and
    this outcome. That is the task the engine would dispatch only if nothing else
    happened to the run since the activity was scheduled: no event after it, no task
    out or owed (a signal, a timer, an update, another outcome), and the worker's
    idea of the activity's event id right (which it derives from its own history).
    """
    scheduled = int(activity["scheduled_event_id"])
    if not activity["eager"] or activity["attempt"] != 1:
        return "the attempt was not started eagerly"
    if state["next_event_id"] != scheduled + 1:
        return f"events were recorded after the activity was scheduled (event {scheduled})"
    if state["workflow_task"] is not None or state["workflow_task_needed"]:
        return "another workflow task is out or owed"
    if any(u["stage"] == "ADMITTED" for u in state["updates"].values()):
        return "an update waits for a workflow task"
    completion = continuation["completion"]
    if completion["scheduled_event_id"] != scheduled + 3 or completion["attempt"] != 1:
        return (
            f"it names task {completion['scheduled_event_id']} attempt "
            f"{completion['attempt']}, the next is {scheduled + 3} attempt 1"
        )
    return None


def _activity_failed(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    pending = _pending_attempt(ctx, command, body)
    if pending is None:
        _not_pending(ctx, command, body)
        return
    state, activity = pending
    _reply(ctx, command, "CommandAccepted", {"run_id": state["run_id"]})
    if body.get("last_heartbeat_details"):
        activity["heartbeat_details"] = body["last_heartbeat_details"]
    _activity_attempt_failed(ctx, state, activity, body["failure"], timeout=False)
    schedule_workflow_task(ctx, state)
    ctx.put(state)


def _activity_canceled(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    pending = _pending_attempt(ctx, command, body)
    if pending is None:
        _not_pending(ctx, command, body)
        return
    state, activity = pending
    _reply(ctx, command, "CommandAccepted", {"run_id": state["run_id"]})
    started = emit(
        ctx,
        state,
        "ActivityTaskStarted",
        {"scheduled_event_id": activity["scheduled_event_id"], "attempt": activity["attempt"]},
    )
    emit(
        ctx,
        state,
        "ActivityTaskCanceled",
        {
            "details": body.get("details", []),
            "latest_cancel_requested_event_id": 0,
            "scheduled_event_id": activity["scheduled_event_id"],
            "started_event_id": started,
            "identity": command.get("identity", ""),
        },
    )
    schedule_workflow_task(ctx, state)
    ctx.put(state)


def _activity_started(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    pending = _pending_attempt(ctx, command, body)
    if pending is None:
        return
    state, activity = pending
    if activity["started_time_ms"] is None:
        activity["started_time_ms"] = ctx.now_ms
        ctx.put(state)


def _heartbeat(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    pending = _pending_attempt(ctx, command, body)
    if pending is None:
        # The attempt is over (or the run closed): tell the worker to stop.
        _reply(ctx, command, "HeartbeatResponse", {"cancel_requested": True})
        return
    state, activity = pending
    activity["heartbeat_details"] = body.get("details", [])
    activity["last_heartbeat_time_ms"] = ctx.now_ms
    if activity["started_time_ms"] is None:  # a heartbeat says it started too
        activity["started_time_ms"] = ctx.now_ms
    ctx.put(state)
    _reply(
        ctx,
        command,
        "HeartbeatResponse",
        {"run_id": state["run_id"], "cancel_requested": activity["cancel_requested"]},
    )


# -- notices from children and other workflows ------------------------------------------------


def _notice_target(
    ctx: Context, command: dict[str, Any], pending: str, initiated: int
) -> tuple[State, dict[str, Any]] | None:
    state = _running_or_none(ctx, command)
    if state is None:
        return None
    entry = state[pending].get(str(initiated))
    return None if entry is None else (state, entry)


def _child_started(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    target = _notice_target(ctx, command, "children", body["initiated_event_id"])
    if target is None or target[1]["run_id"] is not None:
        return  # duplicate notice
    state, child = target
    emit(
        ctx,
        state,
        "ChildWorkflowExecutionStarted",
        {
            "workflow_id": child["workflow_id"],
            "run_id": body["child_run_id"],
            "workflow_type": child["workflow_type"],
            "initiated_event_id": child["initiated_event_id"],
        },
    )
    schedule_workflow_task(ctx, state)
    ctx.put(state)


def _child_start_failed(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    target = _notice_target(ctx, command, "children", body["initiated_event_id"])
    if target is None or target[1]["run_id"] is not None:
        return
    state, child = target
    emit(
        ctx,
        state,
        "StartChildWorkflowExecutionFailed",
        {
            "workflow_id": child["workflow_id"],
            "workflow_type": child["workflow_type"],
            "cause": body["cause"],
            "initiated_event_id": child["initiated_event_id"],
            "workflow_task_completed_event_id": 0,
        },
    )
    schedule_workflow_task(ctx, state)
    ctx.put(state)


_CHILD_CLOSED_EVENTS = {
    "COMPLETED": "ChildWorkflowExecutionCompleted",
    "FAILED": "ChildWorkflowExecutionFailed",
    "CANCELED": "ChildWorkflowExecutionCanceled",
    "TIMED_OUT": "ChildWorkflowExecutionTimedOut",
    "TERMINATED": "ChildWorkflowExecutionTerminated",
}


def _child_closed(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    target = _notice_target(ctx, command, "children", body["initiated_event_id"])
    if target is None:
        return
    state, child = target
    if child["run_id"] is None:
        # The start notice may still be on its way (another partition): record it first.
        _child_started(ctx, command, {**body, "child_run_id": body["child_run_id"]})
        child = state["children"][str(body["initiated_event_id"])]
    attrs: dict[str, Any] = {
        "workflow_id": child["workflow_id"],
        "run_id": body["child_run_id"],
        "workflow_type": child["workflow_type"],
        "initiated_event_id": child["initiated_event_id"],
        "started_event_id": child["started_event_id"],
    }
    status = body["status"]
    if status == "COMPLETED":
        attrs["result"] = body.get("result", [])
    elif status == "FAILED":
        attrs["failure"] = body["failure"]
        attrs["retry_state"] = "RETRY_POLICY_NOT_SET"
    elif status == "TIMED_OUT":
        attrs["retry_state"] = "TIMEOUT"
    elif status == "CANCELED":
        attrs["details"] = []
    emit(ctx, state, _CHILD_CLOSED_EVENTS[status], attrs)
    schedule_workflow_task(ctx, state)
    ctx.put(state)


def _external_result(kind: str) -> Callable[[Context, dict[str, Any], dict[str, Any]], None]:
    done, failed = (
        ("ExternalWorkflowExecutionSignaled", "SignalExternalWorkflowExecutionFailed")
        if kind == "SIGNAL"
        else (
            "ExternalWorkflowExecutionCancelRequested",
            "RequestCancelExternalWorkflowExecutionFailed",
        )
    )

    def handler(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
        target = _notice_target(ctx, command, "externals", body["initiated_event_id"])
        if target is None:
            return
        state, external = target
        attrs = {
            "initiated_event_id": external["initiated_event_id"],
            "workflow_id": external["workflow_id"],
            "run_id": external["run_id"],
        }
        if body["success"]:
            emit(ctx, state, done, attrs)
        else:
            emit(
                ctx,
                state,
                failed,
                {**attrs, "cause": body.get("cause", ""), "workflow_task_completed_event_id": 0},
            )
        schedule_workflow_task(ctx, state)
        ctx.put(state)

    return handler


# -- timers and timeouts ----------------------------------------------------------------------


def _timer_fired(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    state = ctx.state(command["workflow_id"])
    if state is None or state["status"] != "RUNNING":
        return
    timer = state["timers"].get(body["timer_id"])
    if timer is None or timer["started_event_id"] != body["started_event_id"]:
        return  # fired already, or cancelled: firing is idempotent
    emit(
        ctx,
        state,
        "TimerFired",
        {"timer_id": timer["timer_id"], "started_event_id": timer["started_event_id"]},
    )
    schedule_workflow_task(ctx, state)
    ctx.put(state)


def _timeout_fired(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    state = _running_or_none(ctx, command)
    if state is None:
        return
    kind, ref, attempt = body["kind"], body["ref_event_id"], body["attempt"]
    due = body["due_time_ms"]
    handler = _TIMEOUTS.get(kind)
    if handler is not None and handler(ctx, state, ref, attempt, due):
        if state["status"] == "RUNNING":
            schedule_workflow_task(ctx, state)
        ctx.put(state)


def _wft_timeout(ctx: Context, state: State, ref: int, attempt: int, due: int) -> bool:
    task = state["workflow_task"]
    if task is None or task["scheduled_event_id"] != ref or task["attempt"] != attempt:
        return False
    if task["started_time_ms"] is None:
        return _resend_untaken_task(ctx, state, task)
    if task["started_time_ms"] + task["timeout_ms"] > ctx.now_ms:
        return False
    if is_transient(state, task):
        drop_transient_task(state)  # the next attempt is transient too
    else:
        emit(
            ctx,
            state,
            "WorkflowTaskTimedOut",
            {
                "scheduled_event_id": task["scheduled_event_id"],
                "started_event_id": task["started_event_id"],
                "timeout_type": "START_TO_CLOSE",
            },
        )
    _dispatch_new_task(ctx, state, attempt=attempt + 1)
    return True


def _resend_untaken_task(ctx: Context, state: State, task: dict[str, Any]) -> bool:
    """No worker has said it took the workflow task, six days after it was sent.

    As in Temporal's task queue, a task no worker has taken waits, with no timeout
    (a worker's ``WorkflowTaskStarted`` arms that). Its record may soon leave the
    topic (a week's retention), so it is sent again, the same attempt, in full.
    """
    if ctx.now_ms - task["dispatched_time_ms"] < RESEND_UNTAKEN_TASK_AFTER_MS:
        return False
    task["dispatched_time_ms"] = ctx.now_ms
    _send_workflow_task(ctx, state, full=True)
    return True


def _wft_backoff(ctx: Context, state: State, ref: int, attempt: int, due: int) -> bool:
    task = state["workflow_task"]
    if task is None or task["scheduled_event_id"] != 0 or task["attempt"] != attempt:
        return False
    state["workflow_task"] = None
    _dispatch_new_task(ctx, state, attempt=attempt)
    return True


def _start_delay(ctx: Context, state: State, ref: int, attempt: int, due: int) -> bool:
    return state["workflow_task"] is None and state["workflow_task_needed"]


def _activity_for(state: State, ref: int, attempt: int) -> dict[str, Any] | None:
    activity: dict[str, Any] | None = state["activities"].get(str(ref))
    if activity is None or activity["attempt"] != attempt:
        return None
    return activity


def _activity_backoff(ctx: Context, state: State, ref: int, attempt: int, due: int) -> bool:
    activity = _activity_for(state, ref, attempt)
    if activity is None or activity["dispatched"]:
        return False
    _send_activity_task(ctx, state, activity)
    return True


def _activity_timeout(kind: str) -> Callable[[Context, State, int, int, int], bool]:
    def handler(ctx: Context, state: State, ref: int, attempt: int, due: int) -> bool:
        activity = _activity_for(state, ref, attempt)
        if activity is None:
            return False
        if kind == "SCHEDULE_TO_CLOSE":
            deadline = activity["scheduled_time_ms"] + (
                activity["schedule_to_close_timeout_ms"] or 0
            )
        elif not activity["dispatched"]:
            return False
        elif kind == "START_TO_CLOSE" and activity["started_time_ms"] is None:
            return _resend_untaken_attempt(ctx, state, activity)
        elif kind == "START_TO_CLOSE":
            deadline = activity["started_time_ms"] + (activity["start_to_close_timeout_ms"] or 0)
        elif kind == "HEARTBEAT":
            started = activity["started_time_ms"]
            if started is None:
                return False
            last = max(activity["last_heartbeat_time_ms"] or 0, started)
            deadline = last + (activity["heartbeat_timeout_ms"] or 0)
        else:  # SCHEDULE_TO_START
            if activity["started_time_ms"] is not None:
                return False
            deadline = activity["attempt_time_ms"] + (activity["schedule_to_start_timeout_ms"] or 0)
        if deadline > ctx.now_ms:
            return False
        details = activity["heartbeat_details"] if kind == "HEARTBEAT" else []
        failure = _timeout_failure(kind, details, activity["last_failure"])
        retryable = kind in ("START_TO_CLOSE", "HEARTBEAT")
        _activity_attempt_failed(ctx, state, activity, failure, timeout=True, retryable=retryable)
        return True

    return handler


def _resend_untaken_attempt(ctx: Context, state: State, activity: dict[str, Any]) -> bool:
    """No worker has said it started the attempt, six days after it was sent.

    Start-to-close and heartbeat timeouts count from a worker's word that it started
    the attempt (``ActivityTaskStarted``, or a heartbeat), as Temporal's count from a
    poll, so an attempt no worker has taken waits, spending none of its retry
    policy's attempts; schedule-to-start and schedule-to-close still end the wait.
    Its record may soon leave the topic (a week's retention): it is sent again.
    """
    if ctx.now_ms - activity["attempt_time_ms"] < RESEND_UNTAKEN_TASK_AFTER_MS:
        return False
    _send_activity_task(ctx, state, activity)
    return True


def _workflow_timeout(ctx: Context, state: State, ref: int, attempt: int, due: int) -> bool:
    if ctx.now_ms < due:
        return False
    _close_run(ctx, state, "WorkflowExecutionTimedOut", {"retry_state": "TIMEOUT"}, "TIMED_OUT")
    return True


def _execution_timeout(ctx: Context, state: State, ref: int, attempt: int, due: int) -> bool:
    # The whole chain of runs is out of time: no retry, no next cron run.
    if ctx.now_ms < due:
        return False
    emit(ctx, state, "WorkflowExecutionTimedOut", {"retry_state": "TIMEOUT"})
    _close(ctx, state)
    return True


_TIMEOUTS: dict[str, Callable[[Context, State, int, int, int], bool]] = {
    "WORKFLOW_TASK_START_TO_CLOSE": _wft_timeout,
    "WORKFLOW_BACKOFF": _wft_backoff,
    "WORKFLOW_START_DELAY": _start_delay,
    "ACTIVITY_RETRY_BACKOFF": _activity_backoff,
    "ACTIVITY_START_TO_CLOSE": _activity_timeout("START_TO_CLOSE"),
    "ACTIVITY_SCHEDULE_TO_CLOSE": _activity_timeout("SCHEDULE_TO_CLOSE"),
    "ACTIVITY_SCHEDULE_TO_START": _activity_timeout("SCHEDULE_TO_START"),
    "ACTIVITY_HEARTBEAT": _activity_timeout("HEARTBEAT"),
    "WORKFLOW_EXECUTION": _execution_timeout,
    "WORKFLOW_RUN": _workflow_timeout,
}
