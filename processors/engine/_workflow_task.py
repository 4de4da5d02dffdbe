"""Workflow task completion and failure, and the workflow commands a completion carries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._apply import State
from ._common import (
    _C,
    _CLOSE_COMMANDS,
    STICKY_CACHE_MISS,
    UNHANDLED_COMMAND,
    Context,
    _close,
    _dispatch_new_task,
    _engine_failure,
    _log,
    _retry_task_later,
    _running_or_none,
    _send_activity_task,
    _send_workflow_task,
    drop_transient_task,
    emit,
    is_transient,
    retry_delay_ms,
    schedule_workflow_task,
)
from ._runs import _close_run, _start_successor, _successor_run_id, _update_reply

# -- the worker's cache -----------------------------------------------------------------------


def _reset_sticky(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    """The worker evicted the run: its next workflow task carries the whole history."""
    state = _running_or_none(ctx, command)
    if state is None or not state["worker_seen_event_id"]:
        return  # closed, or the next task is a full one already
    state["worker_seen_event_id"] = 0
    ctx.put(state)


# -- workflow task completion -----------------------------------------------------------------


def _current_task(
    ctx: Context, command: dict[str, Any], body: dict[str, Any]
) -> tuple[State, dict[str, Any]] | None:
    state = _running_or_none(ctx, command)
    if state is None:
        return None
    task = state["workflow_task"]
    if (
        task is None
        or task["scheduled_event_id"] != body["scheduled_event_id"]
        or task["attempt"] != body["attempt"]
    ):
        return None
    return state, task


def _task_completed(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    current = _current_task(ctx, command, body)
    if current is None:
        _log.info("stale workflow task completion for %s ignored", command["workflow_id"])
        return
    state, task = current
    commands = body.get("commands", [])
    unsupported = sorted({name for name, _ in commands if name not in _WORKFLOW_COMMANDS})
    if unsupported:
        # Checked before anything is written: a command applies whole or not at all.
        body = {
            **body,
            "cause": "UNSUPPORTED_COMMAND",
            "failure": _engine_failure(
                f"this engine does not support {', '.join(unsupported)} yet"
            ),
        }
        _task_failed(ctx, command, body)
        return
    new_events = state["next_event_id"] > task["started_event_id"] + 1
    if new_events and any(name in _CLOSE_COMMANDS for name, _ in commands):
        # Something arrived while the task was out (a signal, say): the workflow must
        # see it before it may close, as in Temporal.
        emit(
            ctx,
            state,
            "WorkflowTaskFailed",
            {
                "scheduled_event_id": task["scheduled_event_id"],
                "started_event_id": task["started_event_id"],
                "cause": UNHANDLED_COMMAND,
                "identity": body.get("identity", ""),
            },
        )
        _dispatch_new_task(ctx, state, attempt=1)
        ctx.put(state)
        return
    completed = emit(
        ctx,
        state,
        "WorkflowTaskCompleted",
        {
            "scheduled_event_id": task["scheduled_event_id"],
            "started_event_id": task["started_event_id"],
            "identity": body.get("identity", ""),
            "binary_checksum": body.get("binary_checksum", ""),
        },
    )
    # The worker has seen history up to the task's started event; the next sticky
    # task starts at the event after it (this WorkflowTaskCompleted, or whatever
    # arrived while the task was out), as a Temporal sticky poll does.
    state["worker_seen_event_id"] = task["started_event_id"] if body.get("sticky", True) else 0
    for name, attrs in commands:
        _WORKFLOW_COMMANDS[name](ctx, state, attrs, completed)
        if name in _CLOSE_COMMANDS:
            break  # nothing after a closing command applies (continue-as-new: a new run)
    schedule_workflow_task(ctx, state)
    ctx.put(state)


def _task_started_by_worker(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    """A worker has been running the current workflow task for a moment."""
    current = _current_task(ctx, command, body)
    if current is None:
        return
    state, task = current
    if task["started_time_ms"] is None:
        task["started_time_ms"] = ctx.now_ms
        ctx.put(state)


def _task_failed(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    current = _current_task(ctx, command, body)
    if current is None:
        return
    state, task = current
    if body.get("cause") == STICKY_CACHE_MISS:
        state["worker_seen_event_id"] = 0
        # The worker took the task and asks for it again in full: the resend gets a
        # timeout of its own, or a worker with a backlog sees it time out in the queue.
        task["dispatched_time_ms"] = ctx.now_ms
        task["started_time_ms"] = None  # the resend waits for a worker as any task does
        _send_workflow_task(ctx, state, full=True)
        ctx.put(state)
        return
    if not is_transient(state, task):
        emit(
            ctx,
            state,
            "WorkflowTaskFailed",
            {
                "scheduled_event_id": task["scheduled_event_id"],
                "started_event_id": task["started_event_id"],
                "cause": body.get("cause", ""),
                "failure": body.get("failure"),
                "identity": body.get("identity", ""),
            },
        )
    else:
        drop_transient_task(state)  # history shows the first failure; state the attempts
    _retry_task_later(ctx, state, task["attempt"])
    ctx.put(state)


# -- workflow commands (inside WorkflowTaskCompleted) -----------------------------------------

WorkflowCommand = Callable[[Context, State, dict[str, Any], int], None]


def _schedule_activity(ctx: Context, state: State, attrs: dict[str, Any], wtc: int) -> None:
    event = {k: v for k, v in attrs.items() if k != "request_eager_execution"}
    eager = bool(attrs.get("request_eager_execution", False))
    event["workflow_task_completed_event_id"] = wtc
    event["eager_execution"] = eager
    scheduled = emit(ctx, state, "ActivityTaskScheduled", event)
    if not eager:
        _send_activity_task(ctx, state, state["activities"][str(scheduled)])
    # else: the worker that completed this task has started attempt 1 (Temporal's eager
    # activity execution); its start-to-close timeout runs from now, and its outcome
    # names it by activity id, since the worker cannot know this event's id.


def _cancel_activity(ctx: Context, state: State, attrs: dict[str, Any], wtc: int) -> None:
    activity = state["activities"].get(str(attrs["scheduled_event_id"]))
    if activity is None:
        return
    requested = emit(
        ctx,
        state,
        "ActivityTaskCancelRequested",
        {
            "scheduled_event_id": activity["scheduled_event_id"],
            "workflow_task_completed_event_id": wtc,
        },
    )
    if not activity["dispatched"]:
        # Waiting out a retry backoff: nobody runs it, so it is cancelled at once.
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
                "details": [],
                "latest_cancel_requested_event_id": requested,
                "scheduled_event_id": activity["scheduled_event_id"],
                "started_event_id": started,
            },
        )


def _start_timer(ctx: Context, state: State, attrs: dict[str, Any], wtc: int) -> None:
    emit(ctx, state, "TimerStarted", {**attrs, "workflow_task_completed_event_id": wtc})


def _cancel_timer(ctx: Context, state: State, attrs: dict[str, Any], wtc: int) -> None:
    timer = state["timers"].get(attrs["timer_id"])
    if timer is None:
        return
    emit(
        ctx,
        state,
        "TimerCanceled",
        {
            "timer_id": timer["timer_id"],
            "started_event_id": timer["started_event_id"],
            "workflow_task_completed_event_id": wtc,
        },
    )


def _complete(ctx: Context, state: State, attrs: dict[str, Any], wtc: int) -> None:
    _close_run(
        ctx,
        state,
        "WorkflowExecutionCompleted",
        {"result": attrs.get("result", []), "workflow_task_completed_event_id": wtc},
        "COMPLETED",
    )


def _fail(ctx: Context, state: State, attrs: dict[str, Any], wtc: int) -> None:
    retry_state = "RETRY_POLICY_NOT_SET"
    if state["retry_policy"] is not None:
        _, retry_state = retry_delay_ms(state["retry_policy"], state["attempt"], attrs["failure"])
    _close_run(
        ctx,
        state,
        "WorkflowExecutionFailed",
        {
            "failure": attrs["failure"],
            "retry_state": retry_state,
            "workflow_task_completed_event_id": wtc,
        },
        "FAILED",
        failure=attrs["failure"],
    )


def _cancel(ctx: Context, state: State, attrs: dict[str, Any], wtc: int) -> None:
    emit(
        ctx,
        state,
        "WorkflowExecutionCanceled",
        {"details": attrs.get("details", []), "workflow_task_completed_event_id": wtc},
    )
    _close(ctx, state)


def _continue_as_new(ctx: Context, state: State, attrs: dict[str, Any], wtc: int) -> None:
    new_run_id = _successor_run_id(state, "WORKFLOW")
    workflow_type = attrs.get("workflow_type") or state["workflow_type"]
    task_queue = attrs.get("task_queue") or state["task_queue"]
    emit(
        ctx,
        state,
        "WorkflowExecutionContinuedAsNew",
        {
            **attrs,
            "new_execution_run_id": new_run_id,
            "workflow_type": workflow_type,
            "task_queue": task_queue,
            "initiator": "WORKFLOW",
            "workflow_task_completed_event_id": wtc,
        },
    )
    body = {
        "workflow_type": workflow_type,
        "task_queue": task_queue,
        "input": attrs.get("input", []),
        "run_timeout_ms": attrs.get("run_timeout_ms") or state["run_timeout_ms"],
        "task_timeout_ms": attrs.get("task_timeout_ms") or state["task_timeout_ms"],
        "retry_policy": attrs.get("retry_policy") or state["retry_policy"],
        "memo": attrs.get("memo") or state["memo"],
        "search_attributes": attrs.get("search_attributes") or state["search_attributes"],
        "header": attrs.get("header", {}),
    }
    _start_successor(
        ctx,
        state,
        new_run_id,
        body,
        initiator="WORKFLOW",
        attempt=1,
        backoff_ms=attrs.get("backoff_start_interval_ms"),
    )


def _marker(ctx: Context, state: State, attrs: dict[str, Any], wtc: int) -> None:
    emit(ctx, state, "MarkerRecorded", {**attrs, "workflow_task_completed_event_id": wtc})


def _upsert_search_attributes(ctx: Context, state: State, attrs: dict[str, Any], wtc: int) -> None:
    emit(
        ctx,
        state,
        "UpsertWorkflowSearchAttributes",
        {**attrs, "workflow_task_completed_event_id": wtc},
    )


def _modify_properties(ctx: Context, state: State, attrs: dict[str, Any], wtc: int) -> None:
    emit(
        ctx, state, "WorkflowPropertiesModified", {**attrs, "workflow_task_completed_event_id": wtc}
    )


def _accept_update(ctx: Context, state: State, attrs: dict[str, Any], wtc: int) -> None:
    update = state["updates"].get(attrs["update_id"])
    if update is None:
        return
    emit(
        ctx,
        state,
        "WorkflowExecutionUpdateAccepted",
        {
            "update_id": attrs["update_id"],
            "accepted_request": update["request"],
            "accepted_request_sequencing_event_id": wtc,
        },
    )
    if update["wait_stage"] in ("ADMITTED", "ACCEPTED"):
        _update_reply(ctx, state, update, "ACCEPTED", None)
        update["reply_to"] = None


def _reject_update(ctx: Context, state: State, attrs: dict[str, Any], wtc: int) -> None:
    update = state["updates"].get(attrs["update_id"])
    if update is None:
        return
    emit(
        ctx,
        state,
        "WorkflowExecutionUpdateRejected",
        {
            "update_id": attrs["update_id"],
            "rejected_request": update["request"],
            "failure": attrs["failure"],
        },
    )
    _update_reply(ctx, state, update, "COMPLETED", {"success": [], "failure": attrs["failure"]})


def _complete_update(ctx: Context, state: State, attrs: dict[str, Any], wtc: int) -> None:
    update = state["updates"].get(attrs["update_id"])
    if update is None:
        return
    emit(
        ctx,
        state,
        "WorkflowExecutionUpdateCompleted",
        {"update_id": attrs["update_id"], "accepted_event_id": wtc, "outcome": attrs["outcome"]},
    )
    _update_reply(ctx, state, update, "COMPLETED", attrs["outcome"])


def _start_child(ctx: Context, state: State, attrs: dict[str, Any], wtc: int) -> None:
    initiated = emit(
        ctx,
        state,
        "StartChildWorkflowExecutionInitiated",
        {**attrs, "workflow_task_completed_event_id": wtc},
    )
    body = {
        key: attrs.get(key)
        for key in (
            "workflow_type",
            "task_queue",
            "input",
            "execution_timeout_ms",
            "run_timeout_ms",
            "task_timeout_ms",
            "retry_policy",
            "cron_schedule",
            "memo",
            "search_attributes",
            "header",
        )
        if attrs.get(key) is not None
    }
    body["id_reuse_policy"] = attrs.get("id_reuse_policy", "ALLOW_DUPLICATE")
    # Deterministic: the same initiation always sends the same start.
    body["request_id"] = f"{state['run_id']}/{initiated}"
    body["parent"] = {
        "workflow_id": state["workflow_id"],
        "run_id": state["run_id"],
        "initiated_event_id": initiated,
        "parent_close_policy": attrs.get("parent_close_policy", "TERMINATE"),
    }
    ctx.command(attrs["workflow_id"], (_C + "StartWorkflow", body))


def _signal_external(ctx: Context, state: State, attrs: dict[str, Any], wtc: int) -> None:
    initiated = emit(
        ctx,
        state,
        "SignalExternalWorkflowExecutionInitiated",
        {**attrs, "workflow_task_completed_event_id": wtc},
    )
    ctx.command(
        attrs["workflow_id"],
        (
            _C + "SignalWorkflow",
            {
                "signal_name": attrs["signal_name"],
                "input": attrs.get("input", []),
                "header": attrs.get("header", {}),
                "signal_id": f"{state['run_id']}/{initiated}",
                "external": {
                    "workflow_id": state["workflow_id"],
                    "run_id": state["run_id"],
                    "initiated_event_id": initiated,
                },
            },
        ),
        attrs.get("run_id"),
    )


def _cancel_external(ctx: Context, state: State, attrs: dict[str, Any], wtc: int) -> None:
    initiated = emit(
        ctx,
        state,
        "RequestCancelExternalWorkflowExecutionInitiated",
        {**attrs, "workflow_task_completed_event_id": wtc},
    )
    ctx.command(
        attrs["workflow_id"],
        (
            _C + "RequestCancelWorkflow",
            {
                "reason": attrs.get("reason", ""),
                "request_id": f"{state['run_id']}/{initiated}",
                "external": {
                    "workflow_id": state["workflow_id"],
                    "run_id": state["run_id"],
                    "initiated_event_id": initiated,
                },
            },
        ),
        attrs.get("run_id"),
    )


_WORKFLOW_COMMANDS: dict[str, WorkflowCommand] = {
    _C + "StartChildWorkflowExecution": _start_child,
    _C + "SignalExternalWorkflowExecution": _signal_external,
    _C + "RequestCancelExternalWorkflowExecution": _cancel_external,
    _C + "ScheduleActivityTask": _schedule_activity,
    _C + "RequestCancelActivityTask": _cancel_activity,
    _C + "StartTimer": _start_timer,
    _C + "CancelTimer": _cancel_timer,
    _C + "CompleteWorkflowExecution": _complete,
    _C + "FailWorkflowExecution": _fail,
    _C + "CancelWorkflowExecution": _cancel,
    _C + "ContinueAsNewWorkflowExecution": _continue_as_new,
    _C + "RecordMarker": _marker,
    _C + "UpsertWorkflowSearchAttributes": _upsert_search_attributes,
    _C + "ModifyWorkflowProperties": _modify_properties,
    _C + "AcceptUpdate": _accept_update,
    _C + "RejectUpdate": _reject_update,
    _C + "CompleteUpdate": _complete_update,
}
