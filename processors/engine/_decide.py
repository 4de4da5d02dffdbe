"""Command handlers: validate a command against state, then emit events and tasks.

``decide(ctx, command)`` is called once per command, in partition order. It
never changes state directly except through ``emit`` (which runs the event's
applier) and the scheduling fields the appliers do not own (see ``_apply``).
Duplicates and stale commands are recognised by state and rejected: a
completion for an attempt that is not pending, a timer that already fired, a
signal id already seen, a workflow task that is not the current one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from ._apply import Event, State, apply, new_state
from ._cron import CronError, next_after

_log = logging.getLogger("cadenza.engine")

_C = "cadenza.command."
_H = "cadenza.history."
_R = "cadenza.reply."

STICKY_CACHE_MISS = "STICKY_CACHE_MISS"
UNHANDLED_COMMAND = "UNHANDLED_COMMAND"
_MAX_TASK_BACKOFF_MS = 60_000
_RUN_ID_NAMESPACE = uuid.UUID("7b0c1f5e-6a3d-4c59-9d3e-3f0b8a2c1d10")

_CLOSE_COMMANDS = frozenset(
    {
        _C + "CompleteWorkflowExecution",
        _C + "FailWorkflowExecution",
        _C + "CancelWorkflowExecution",
        _C + "ContinueAsNewWorkflowExecution",
    }
)


class Context(Protocol):
    """What the decider reads and writes; the processor implements it per batch."""

    now_ms: int

    def state(self, workflow_id: str) -> State | None: ...

    def run_state(self, workflow_id: str, run_id: str) -> State | None: ...

    def put(self, state: State) -> None: ...

    def archive(self, state: State) -> None: ...

    def history(self, workflow_id: str, run_id: str, from_event_id: int) -> list[Event]: ...

    def append(self, event: Event) -> None: ...

    def workflow_task(self, task: dict[str, Any]) -> None: ...

    def activity_task(self, task: dict[str, Any]) -> None: ...

    def reply(self, reply_to: dict[str, Any], reply: dict[str, Any]) -> None: ...

    def command(
        self, workflow_id: str, body: tuple[str, dict[str, Any]], run_id: str | None = None
    ) -> None: ...


class Rejected(Exception):
    """A well-formed command that cannot apply; the sender gets a CommandRejected reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- helpers ----------------------------------------------------------------------------------


def emit(ctx: Context, state: State, name: str, attrs: dict[str, Any]) -> int:
    """Append the run's next event, apply it, and return its id."""
    event = {
        "event_id": state["next_event_id"],
        "event_time_ms": ctx.now_ms,
        "workflow_id": state["workflow_id"],
        "run_id": state["run_id"],
        "attributes": (_H + name, attrs),
    }
    apply(state, event)
    ctx.append(event)
    return int(event["event_id"])


def _reply(ctx: Context, command: dict[str, Any], body_name: str, body: dict[str, Any]) -> None:
    reply_to = command.get("reply_to")
    if reply_to is None:
        return
    ctx.reply(
        reply_to,
        {
            "request_id": reply_to["request_id"],
            "workflow_id": command["workflow_id"],
            "run_id": body.get("run_id", command.get("run_id")),
            "body": (_R + body_name, body),
        },
    )


def _result_reply(state: State, reply_to: dict[str, Any]) -> dict[str, Any]:
    return {
        "request_id": reply_to["request_id"],
        "workflow_id": state["workflow_id"],
        "run_id": state["run_id"],
        "body": (
            _R + "WorkflowResult",
            {
                "run_id": state["run_id"],
                "status": state["status"],
                "result": state["result"],
                "failure": state["failure"],
                "new_run_id": state["new_execution_run_id"],
            },
        ),
    }


def _running(ctx: Context, command: dict[str, Any]) -> State:
    """The run a command targets; Rejected when it does not exist or has closed."""
    workflow_id = command["workflow_id"]
    state = ctx.state(workflow_id)
    run_id = command.get("run_id")
    if state is None:
        raise Rejected("NOT_FOUND", f"workflow {workflow_id!r} does not exist")
    if run_id and state["run_id"] != run_id:
        if ctx.run_state(workflow_id, run_id) is None:
            raise Rejected("NOT_FOUND", f"workflow {workflow_id!r} has no run {run_id!r}")
        raise Rejected("ALREADY_CLOSED", f"run {run_id!r} of workflow {workflow_id!r} is closed")
    if state["status"] != "RUNNING":
        raise Rejected(
            "ALREADY_CLOSED",
            f"workflow {workflow_id!r} run {state['run_id']!r} is {state['status'].lower()}",
        )
    return state


_CHILD_POLICY_COMMANDS = {
    "TERMINATE": (_C + "TerminateWorkflow", {"reason": "the parent workflow closed"}),
    "REQUEST_CANCEL": (_C + "RequestCancelWorkflow", {"reason": "the parent workflow closed"}),
}


def _close(ctx: Context, state: State) -> None:
    """After a closing event: answer waiters, tell the parent, apply the children's policy."""
    for waiter in state["waiters"]:
        ctx.reply(waiter["reply_to"], _result_reply(state, waiter["reply_to"]))
    state["waiters"] = []
    state["updates"] = {}
    parent = state["parent"]
    if parent is not None and state["new_execution_run_id"] is None:
        ctx.command(
            parent["workflow_id"],
            (
                _C + "ChildWorkflowClosed",
                {
                    "initiated_event_id": parent["initiated_event_id"],
                    "child_workflow_id": state["workflow_id"],
                    "child_run_id": state["run_id"],
                    "workflow_type": state["workflow_type"],
                    "status": state["status"],
                    "result": state["result"],
                    "failure": state["failure"],
                },
            ),
            parent["run_id"],
        )
    for child in state["children"].values():
        policy = _CHILD_POLICY_COMMANDS.get(child["parent_close_policy"])
        if policy is not None:  # ABANDON: the child runs on
            ctx.command(child["workflow_id"], policy, child["run_id"])
    ctx.archive(state)


# -- workflow task dispatch -------------------------------------------------------------------


def schedule_workflow_task(ctx: Context, state: State) -> None:
    """Dispatch a workflow task if the run needs one and none is outstanding or backing off."""
    if state["status"] != "RUNNING" or state["workflow_task"] is not None:
        return
    if not state["workflow_task_needed"] or ctx.now_ms < state["execution_time_ms"]:
        return
    _dispatch_new_task(ctx, state, attempt=1)


def _dispatch_new_task(ctx: Context, state: State, *, attempt: int) -> None:
    timeout = state["task_timeout_ms"]
    scheduled = emit(
        ctx,
        state,
        "WorkflowTaskScheduled",
        {
            "task_queue": state["task_queue"],
            "start_to_close_timeout_ms": timeout,
            "attempt": attempt,
        },
    )
    emit(ctx, state, "WorkflowTaskStarted", {"scheduled_event_id": scheduled})
    _send_workflow_task(ctx, state)


def _send_workflow_task(ctx: Context, state: State, *, full: bool = False) -> None:
    task = state["workflow_task"]
    seen = 0 if full else state["worker_seen_event_id"]
    from_id = seen + 1 if seen else 1
    ctx.workflow_task(
        {
            "workflow_id": state["workflow_id"],
            "run_id": state["run_id"],
            "workflow_type": state["workflow_type"],
            "task_queue": state["task_queue"],
            "scheduled_event_id": task["scheduled_event_id"],
            "attempt": task["attempt"],
            "started_event_id": task["started_event_id"],
            "history_from_event_id": from_id,
            "history": ctx.history(state["workflow_id"], state["run_id"], from_id),
            "next_event_id": state["next_event_id"],
            "query": None,
            "updates": [
                u["request"] for u in state["updates"].values() if u["stage"] == "ADMITTED"
            ],
            "scheduled_time_ms": ctx.now_ms,
        }
    )
    for update in state["updates"].values():
        update["delivered"] = True


def _retry_task_later(ctx: Context, state: State, failed_attempt: int) -> None:
    # Backoff: the second attempt runs at once, then 1 s, 2 s, 4 s ... capped at a minute.
    attempt = failed_attempt + 1
    delay = 0 if attempt <= 2 else min(1000 * 2 ** (attempt - 3), _MAX_TASK_BACKOFF_MS)
    if delay == 0:
        _dispatch_new_task(ctx, state, attempt=attempt)
        return
    state["workflow_task"] = {
        "scheduled_event_id": 0,
        "started_event_id": 0,
        "attempt": attempt,
        "dispatched_time_ms": ctx.now_ms + delay,
        "timeout_ms": state["task_timeout_ms"],
    }


# -- activity dispatch and retry --------------------------------------------------------------


def _send_activity_task(ctx: Context, state: State, activity: dict[str, Any]) -> None:
    activity["dispatched"] = True
    activity["attempt_time_ms"] = ctx.now_ms
    activity["started_time_ms"] = None
    ctx.activity_task(
        {
            "workflow_id": state["workflow_id"],
            "run_id": state["run_id"],
            "workflow_type": state["workflow_type"],
            "activity_id": activity["activity_id"],
            "activity_type": activity["activity_type"],
            "task_queue": activity["task_queue"],
            "scheduled_event_id": activity["scheduled_event_id"],
            "attempt": activity["attempt"],
            "input": activity["input"],
            "header": activity["header"],
            "heartbeat_details": activity["heartbeat_details"],
            "scheduled_time_ms": activity["scheduled_time_ms"],
            "current_attempt_scheduled_time_ms": ctx.now_ms,
            "schedule_to_close_timeout_ms": activity["schedule_to_close_timeout_ms"],
            "schedule_to_start_timeout_ms": activity["schedule_to_start_timeout_ms"],
            "start_to_close_timeout_ms": activity["start_to_close_timeout_ms"],
            "heartbeat_timeout_ms": activity["heartbeat_timeout_ms"],
            "retry_policy": activity["retry_policy"],
        }
    )


def retry_delay_ms(
    policy: dict[str, Any] | None, attempt: int, failure: dict[str, Any] | None
) -> tuple[int | None, str]:
    """Delay before the attempt after ``attempt``, or None with the retry state when final.

    Temporal's rules: non-retryable application errors and listed error types are
    final; ``maximum_attempts`` 0 means unlimited; the delay is
    ``initial * coefficient ** (attempt - 1)`` capped at ``maximum_interval``
    (default 100x initial), unless the failure names ``next_retry_delay``.
    """
    policy = policy or {
        "initial_interval_ms": 1000,
        "backoff_coefficient": 2.0,
        "maximum_interval_ms": None,
        "maximum_attempts": 0,
        "non_retryable_error_types": [],
    }
    info_name, info = (failure or {}).get("info") or (None, None)
    if info_name == "cadenza.common.ApplicationFailureInfo" and info is not None:
        if info.get("non_retryable"):
            return None, "NON_RETRYABLE_FAILURE"
        if info.get("type") in (policy.get("non_retryable_error_types") or []):
            return None, "NON_RETRYABLE_FAILURE"
    maximum = policy.get("maximum_attempts") or 0
    if maximum and attempt >= maximum:
        return None, "MAXIMUM_ATTEMPTS_REACHED"
    if info_name == "cadenza.common.ApplicationFailureInfo" and info.get("next_retry_delay_ms"):
        return int(info["next_retry_delay_ms"]), "IN_PROGRESS"
    initial = policy.get("initial_interval_ms") or 1000
    cap = policy.get("maximum_interval_ms") or 100 * initial
    delay = initial * (policy.get("backoff_coefficient") or 2.0) ** (attempt - 1)
    return int(min(delay, cap)), "IN_PROGRESS"


def _activity_attempt_failed(
    ctx: Context,
    state: State,
    activity: dict[str, Any],
    failure: dict[str, Any],
    *,
    timeout: bool,
    retryable: bool = True,
) -> None:
    delay, retry_state = retry_delay_ms(activity["retry_policy"], activity["attempt"], failure)
    if timeout and retry_state == "NON_RETRYABLE_FAILURE":
        retry_state = "TIMEOUT"
    if not retryable:
        delay, retry_state = None, "TIMEOUT"
    deadline = activity["schedule_to_close_timeout_ms"]
    if delay is not None and deadline is not None:
        if ctx.now_ms + delay >= activity["scheduled_time_ms"] + deadline:
            delay, retry_state = None, "TIMEOUT"
    if delay is not None:
        activity["attempt"] += 1
        activity["attempt_time_ms"] = ctx.now_ms + delay
        activity["dispatched"] = False
        activity["last_failure"] = failure
        if delay == 0:
            _send_activity_task(ctx, state, activity)
        return
    started = emit(
        ctx,
        state,
        "ActivityTaskStarted",
        {
            "scheduled_event_id": activity["scheduled_event_id"],
            "attempt": activity["attempt"],
            "last_failure": failure,
        },
    )
    name = "ActivityTaskTimedOut" if timeout else "ActivityTaskFailed"
    emit(
        ctx,
        state,
        name,
        {
            "failure": failure,
            "scheduled_event_id": activity["scheduled_event_id"],
            "started_event_id": started,
            "retry_state": retry_state,
        },
    )


def _engine_failure(message: str) -> dict[str, Any]:
    return {
        "message": message,
        "source": "Cadenza",
        "stack_trace": "",
        "cause": None,
        "info": ("cadenza.common.ServerFailureInfo", {"non_retryable": False}),
    }


def _timeout_failure(kind: str, details: list[Any], cause: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "message": f"activity {kind.replace('_', '-').lower()} timeout",
        "source": "Cadenza",
        "stack_trace": "",
        "cause": cause,
        "info": (
            "cadenza.common.TimeoutFailureInfo",
            {"timeout_type": kind, "last_heartbeat_details": details},
        ),
    }


# -- command handlers -------------------------------------------------------------------------


def _start(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    parent = body.get("parent")
    if parent is None:
        _start_workflow(ctx, command, body)
        return
    # A child's start answers its parent with commands, not replies.
    child = {
        "initiated_event_id": parent["initiated_event_id"],
        "child_workflow_id": command["workflow_id"],
        "workflow_type": body["workflow_type"],
    }
    try:
        run_id = _start_workflow(ctx, command, body)
    except Rejected:
        ctx.command(
            parent["workflow_id"],
            (_C + "ChildWorkflowStartFailed", {**child, "cause": "WORKFLOW_ALREADY_EXISTS"}),
            parent["run_id"],
        )
        return
    ctx.command(
        parent["workflow_id"],
        (_C + "ChildWorkflowStarted", {**child, "child_run_id": run_id}),
        parent["run_id"],
    )


def _start_workflow(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> str:
    workflow_id = command["workflow_id"]
    existing = ctx.state(workflow_id)
    if existing is not None and existing["start_request_id"] == body["request_id"]:
        # The same start sent again: answer as the first time, change nothing.
        _reply(ctx, command, "WorkflowStarted", {"run_id": existing["run_id"], "started": True})
        return str(existing["run_id"])
    if existing is not None and existing["status"] == "RUNNING":
        policy = body.get("id_conflict_policy", "UNSPECIFIED")
        if body.get("id_reuse_policy") == "TERMINATE_IF_RUNNING":
            policy = "TERMINATE_EXISTING"
        if policy == "USE_EXISTING" or (body.get("signal") and policy != "TERMINATE_EXISTING"):
            if body.get("signal"):
                _deliver_signal(ctx, existing, body["signal"], command.get("identity", ""))
                schedule_workflow_task(ctx, existing)
                ctx.put(existing)
            _reply(
                ctx, command, "WorkflowStarted", {"run_id": existing["run_id"], "started": False}
            )
            return
        if policy != "TERMINATE_EXISTING":
            raise Rejected(
                "ALREADY_STARTED",
                f"workflow {workflow_id!r} is already running (run {existing['run_id']})",
            )
        emit(
            ctx,
            existing,
            "WorkflowExecutionTerminated",
            {"reason": "terminated by a start with TERMINATE_EXISTING", "details": []},
        )
        _close(ctx, existing)
    elif existing is not None:
        reuse = body.get("id_reuse_policy", "ALLOW_DUPLICATE")
        if reuse == "REJECT_DUPLICATE" or (
            reuse == "ALLOW_DUPLICATE_FAILED_ONLY" and existing["status"] == "COMPLETED"
        ):
            raise Rejected(
                "ALREADY_STARTED",
                f"workflow {workflow_id!r} already ran (run {existing['run_id']}, "
                f"{existing['status'].lower()}) and the id reuse policy is {reuse}",
            )
    if body.get("cron_schedule"):
        try:
            first = next_after(body["cron_schedule"], ctx.now_ms)
        except CronError as exc:
            raise Rejected("INVALID_ARGUMENT", f"cron_schedule: {exc}") from None
        body = {**body, "start_delay_ms": (body.get("start_delay_ms") or 0) + first - ctx.now_ms}
    run_id = str(uuid.uuid5(_RUN_ID_NAMESPACE, command["command_id"]))
    state = _start_run(ctx, workflow_id, run_id, body, command.get("identity", ""))
    if body.get("signal"):
        _deliver_signal(ctx, state, body["signal"], command.get("identity", ""))
    schedule_workflow_task(ctx, state)
    ctx.put(state)
    _reply(ctx, command, "WorkflowStarted", {"run_id": run_id, "started": True})
    return run_id


def _start_run(
    ctx: Context,
    workflow_id: str,
    run_id: str,
    body: dict[str, Any],
    identity: str,
    *,
    extra: dict[str, Any] | None = None,
) -> State:
    execution_timeout = body.get("execution_timeout_ms")
    attrs = {
        "workflow_type": body["workflow_type"],
        "task_queue": body["task_queue"],
        "input": body.get("input", []),
        "execution_timeout_ms": execution_timeout,
        "run_timeout_ms": body.get("run_timeout_ms"),
        "task_timeout_ms": body.get("task_timeout_ms"),
        "retry_policy": body.get("retry_policy"),
        "cron_schedule": body.get("cron_schedule"),
        "memo": body.get("memo", {}),
        "search_attributes": body.get("search_attributes", {}),
        "header": body.get("header", {}),
        "attempt": 1,
        "first_execution_run_id": run_id,
        "original_execution_run_id": run_id,
        "parent": body.get("parent"),
        "execution_expiration_time_ms": (
            ctx.now_ms + execution_timeout if execution_timeout else None
        ),
        "first_workflow_task_backoff_ms": body.get("start_delay_ms"),
        "request_id": body.get("request_id", ""),
        "identity": identity,
    }
    attrs.update(extra or {})
    event = {
        "event_id": 1,
        "event_time_ms": ctx.now_ms,
        "workflow_id": workflow_id,
        "run_id": run_id,
        "attributes": (_H + "WorkflowExecutionStarted", attrs),
    }
    state = new_state(event)
    ctx.append(event)
    return state


def _deliver_signal(ctx: Context, state: State, signal: dict[str, Any], identity: str) -> bool:
    signal_id = signal.get("signal_id") or ""
    if signal_id and signal_id in state["signal_ids"]:
        return False
    emit(
        ctx,
        state,
        "WorkflowExecutionSignaled",
        {
            "signal_name": signal["signal_name"],
            "input": signal.get("input", []),
            "header": signal.get("header", {}),
            "identity": identity,
            "signal_id": signal_id,
            "external": signal.get("external"),
        },
    )
    return True


def _answer_initiator(
    ctx: Context, body: dict[str, Any], result: str, rejection: Rejected | None
) -> None:
    external = body.get("external")
    if external is None:
        if rejection is not None:
            raise rejection
        return
    ctx.command(
        external["workflow_id"],
        (
            _C + result,
            {
                "initiated_event_id": external["initiated_event_id"],
                "success": rejection is None,
                "cause": "" if rejection is None else "EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND",
            },
        ),
        external["run_id"],
    )


def _signal(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    try:
        state = _running(ctx, command)
    except Rejected as rejection:
        _answer_initiator(ctx, body, "ExternalSignalResult", rejection)
        return
    if _deliver_signal(ctx, state, body, command.get("identity", "")):
        schedule_workflow_task(ctx, state)
        ctx.put(state)
    _answer_initiator(ctx, body, "ExternalSignalResult", None)
    _reply(ctx, command, "CommandAccepted", {"run_id": state["run_id"]})


def _request_cancel(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    try:
        state = _running(ctx, command)
    except Rejected as rejection:
        _answer_initiator(ctx, body, "ExternalCancelResult", rejection)
        return
    _answer_initiator(ctx, body, "ExternalCancelResult", None)
    if not state["cancel_requested"]:
        emit(
            ctx,
            state,
            "WorkflowExecutionCancelRequested",
            {
                "reason": body.get("reason", ""),
                "identity": command.get("identity", ""),
                "external": body.get("external"),
            },
        )
        schedule_workflow_task(ctx, state)
        ctx.put(state)
    _reply(ctx, command, "CommandAccepted", {"run_id": state["run_id"]})


def _terminate(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    state = _running(ctx, command)
    emit(
        ctx,
        state,
        "WorkflowExecutionTerminated",
        {
            "reason": body.get("reason", ""),
            "details": body.get("details", []),
            "identity": command.get("identity", ""),
        },
    )
    _close(ctx, state)
    ctx.put(state)
    _reply(ctx, command, "CommandAccepted", {"run_id": state["run_id"]})


def _get_result(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    workflow_id = command["workflow_id"]
    run_id = command.get("run_id")
    current = ctx.state(workflow_id)
    state = current
    if run_id and (current is None or current["run_id"] != run_id):
        state = ctx.run_state(workflow_id, run_id)
    if state is None:
        raise Rejected("NOT_FOUND", f"workflow {workflow_id!r} run {run_id or ''} does not exist")
    follow = body.get("follow_runs", True)
    # Follow the chain of runs (continue-as-new, retries, cron) to the one that decides.
    while follow and state["status"] != "RUNNING" and state["new_execution_run_id"]:
        nxt = ctx.run_state(workflow_id, state["new_execution_run_id"])
        if nxt is None and current is not None:
            nxt = current if current["run_id"] == state["new_execution_run_id"] else None
        if nxt is None:
            break
        state = nxt
    reply_to = command.get("reply_to")
    if reply_to is None:
        return
    if state["status"] != "RUNNING":
        ctx.reply(reply_to, _result_reply(state, reply_to))
        return
    state["waiters"].append({"reply_to": reply_to, "follow_runs": follow})
    ctx.put(state)


def _describe(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    workflow_id = command["workflow_id"]
    run_id = command.get("run_id")
    state = ctx.state(workflow_id)
    if run_id and (state is None or state["run_id"] != run_id):
        state = ctx.run_state(workflow_id, run_id)
    if state is None:
        raise Rejected("NOT_FOUND", f"workflow {workflow_id!r} does not exist")
    pending = [
        {
            "activity_id": a["activity_id"],
            "activity_type": a["activity_type"],
            "scheduled_event_id": a["scheduled_event_id"],
            "attempt": a["attempt"],
            "state": (
                "CANCEL_REQUESTED"
                if a["cancel_requested"]
                else ("SCHEDULED" if not a["dispatched"] else "STARTED")
            ),
            "last_heartbeat_details": a["heartbeat_details"],
            "last_failure": a["last_failure"],
        }
        for a in state["activities"].values()
    ]
    _reply(
        ctx,
        command,
        "WorkflowDescription",
        {
            "run_id": state["run_id"],
            "workflow_type": state["workflow_type"],
            "task_queue": state["task_queue"],
            "status": state["status"],
            "start_time_ms": state["start_time_ms"],
            "close_time_ms": state["close_time_ms"],
            "execution_time_ms": state["execution_time_ms"],
            "history_length": state["next_event_id"] - 1,
            "parent": state["parent"],
            "memo": state["memo"],
            "search_attributes": state["search_attributes"],
            "pending_activities": pending if body.get("include_pending", True) else [],
            "pending_children": [
                {
                    "workflow_id": c["workflow_id"],
                    "run_id": c["run_id"],
                    "workflow_type": c["workflow_type"],
                    "initiated_event_id": c["initiated_event_id"],
                }
                for c in state["children"].values()
            ],
        },
    )


def _query(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    workflow_id = command["workflow_id"]
    run_id = command.get("run_id")
    state = ctx.state(workflow_id)
    if run_id and (state is None or state["run_id"] != run_id):
        state = ctx.run_state(workflow_id, run_id)
    if state is None:
        raise Rejected("NOT_FOUND", f"workflow {workflow_id!r} does not exist")
    if command.get("reply_to") is None:
        raise Rejected("INVALID_ARGUMENT", "a query needs reply_to")
    # A query runs on a worker that replays the whole history; the worker answers.
    ctx.workflow_task(
        {
            "workflow_id": state["workflow_id"],
            "run_id": state["run_id"],
            "workflow_type": state["workflow_type"],
            "task_queue": state["task_queue"],
            "scheduled_event_id": 0,
            "attempt": 1,
            "started_event_id": 0,
            "history_from_event_id": 1,
            "history": ctx.history(state["workflow_id"], state["run_id"], 1),
            "next_event_id": state["next_event_id"],
            "query": {
                "query_id": body["query_id"],
                "query_type": body["query_type"],
                "args": body.get("args", []),
                "header": body.get("header", {}),
                "reply_to": command["reply_to"],
            },
            "updates": [],
            "scheduled_time_ms": ctx.now_ms,
        }
    )


def _update(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    state = _running(ctx, command)
    request = body["request"]
    existing = state["updates"].get(request["update_id"])
    if existing is not None:
        # The same update asked again (a client waiting for a later stage): the newest
        # asker gets the answer; the update itself is not admitted twice.
        existing["reply_to"] = command.get("reply_to")
        existing["wait_stage"] = body.get("wait_stage", "COMPLETED")
        if existing["stage"] == "ACCEPTED" and existing["wait_stage"] != "COMPLETED":
            _update_reply(ctx, state, existing, "ACCEPTED", None)
            existing["reply_to"] = None
        ctx.put(state)
        return
    state["updates"][request["update_id"]] = {
        "request": request,
        "stage": "ADMITTED",
        "wait_stage": body.get("wait_stage", "COMPLETED"),
        "reply_to": command.get("reply_to"),
        "delivered": False,
    }
    state["workflow_task_needed"] = True
    schedule_workflow_task(ctx, state)
    ctx.put(state)


def _update_reply(
    ctx: Context, state: State, update: dict[str, Any], stage: str, outcome: Any
) -> None:
    reply_to = update.get("reply_to")
    if reply_to is None:
        return
    ctx.reply(
        reply_to,
        {
            "request_id": reply_to["request_id"],
            "workflow_id": state["workflow_id"],
            "run_id": state["run_id"],
            "body": (
                _R + "UpdateResult",
                {"update_id": update["request"]["update_id"], "stage": stage, "outcome": outcome},
            ),
        },
    )


# -- workflow task completion -----------------------------------------------------------------


def _current_task(
    ctx: Context, command: dict[str, Any], body: dict[str, Any]
) -> tuple[State, dict[str, Any]] | None:
    state = ctx.state(command["workflow_id"])
    if state is None or state["status"] != "RUNNING":
        return None
    if command.get("run_id") and command["run_id"] != state["run_id"]:
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
    state["worker_seen_event_id"] = completed if body.get("sticky", True) else 0
    for name, attrs in commands:
        _WORKFLOW_COMMANDS[name](ctx, state, attrs, completed)
        if name in _CLOSE_COMMANDS:
            break  # nothing after a closing command applies (continue-as-new: a new run)
    schedule_workflow_task(ctx, state)
    ctx.put(state)


def _task_failed(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    current = _current_task(ctx, command, body)
    if current is None:
        return
    state, task = current
    if body.get("cause") == STICKY_CACHE_MISS:
        state["worker_seen_event_id"] = 0
        _send_workflow_task(ctx, state, full=True)
        ctx.put(state)
        return
    if task["attempt"] == 1:
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
        # Later attempts of a failing task are not written again (Temporal's transient
        # tasks): history shows the first failure, state counts the attempts.
        state["workflow_task"] = None
        state["worker_seen_event_id"] = 0
    _retry_task_later(ctx, state, task["attempt"])
    ctx.put(state)


# -- workflow commands (inside WorkflowTaskCompleted) -----------------------------------------

WorkflowCommand = Callable[[Context, State, dict[str, Any], int], None]


def _schedule_activity(ctx: Context, state: State, attrs: dict[str, Any], wtc: int) -> None:
    scheduled = emit(
        ctx, state, "ActivityTaskScheduled", {**attrs, "workflow_task_completed_event_id": wtc}
    )
    _send_activity_task(ctx, state, state["activities"][str(scheduled)])


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


# -- successor runs: continue-as-new, retry, cron ----------------------------------------------


def _successor_run_id(state: State, initiator: str) -> str:
    # Deterministic: processing the same close twice names the same next run.
    return str(uuid.uuid5(_RUN_ID_NAMESPACE, f"{state['run_id']}/{initiator}"))


def _plan_successor(
    ctx: Context, state: State, status: str, failure: dict[str, Any] | None
) -> tuple[str, int, int] | None:
    """(initiator, backoff ms, attempt) of the run that follows a closing one, if any.

    Temporal's rules: a failed or run-timed-out run retries under the workflow's retry
    policy while attempts and the execution timeout allow; otherwise a cron workflow's
    next run starts at its next scheduled time, whatever the outcome.
    """
    policy = state["retry_policy"]
    if policy is not None and status in ("FAILED", "TIMED_OUT"):
        delay, _ = retry_delay_ms(policy, state["attempt"], failure)
        expires = state["execution_expiration_time_ms"]
        if delay is not None and (expires is None or ctx.now_ms + delay < expires):
            return "RETRY", delay, state["attempt"] + 1
    if state["cron_schedule"] and status in ("COMPLETED", "FAILED", "TIMED_OUT"):
        try:
            due = next_after(state["cron_schedule"], ctx.now_ms)
        except CronError:
            return None
        return "CRON_SCHEDULE", due - ctx.now_ms, 1
    return None


def _close_run(
    ctx: Context,
    state: State,
    event: str,
    attrs: dict[str, Any],
    status: str,
    *,
    failure: dict[str, Any] | None = None,
) -> None:
    """Emit a closing event; start the retry or the next cron run when one follows."""
    plan = _plan_successor(ctx, state, status, failure)
    if plan is None:
        emit(ctx, state, event, attrs)
        _close(ctx, state)
        return
    initiator, backoff, attempt = plan
    new_run_id = _successor_run_id(state, initiator)
    attrs = {**attrs, "new_execution_run_id": new_run_id}
    if initiator == "RETRY":
        attrs["retry_state"] = "IN_PROGRESS"
    emit(ctx, state, event, attrs)
    first = ctx.history(state["workflow_id"], state["run_id"], 1)[0]["attributes"][1]
    body = {
        key: first.get(key)
        for key in ("workflow_type", "task_queue", "input", "run_timeout_ms", "header")
    }
    body.update(
        task_timeout_ms=state["task_timeout_ms"],
        retry_policy=state["retry_policy"],
        memo=state["memo"],
        search_attributes=state["search_attributes"],
    )
    _start_successor(
        ctx,
        state,
        new_run_id,
        body,
        initiator=initiator,
        attempt=attempt,
        backoff_ms=backoff,
        failure=failure,
        result=state["result"] if status == "COMPLETED" else None,
    )


def _start_successor(
    ctx: Context,
    state: State,
    new_run_id: str,
    body: dict[str, Any],
    *,
    initiator: str,
    attempt: int,
    backoff_ms: int | None,
    failure: dict[str, Any] | None = None,
    result: list[Any] | None = None,
) -> None:
    """Close ``state``'s run into a new run of the same workflow, which becomes ``state``."""
    waiters = [w for w in state["waiters"] if w["follow_runs"]]
    state["waiters"] = [w for w in state["waiters"] if not w["follow_runs"]]
    _close(ctx, state)
    body = {
        **body,
        "execution_timeout_ms": state["execution_timeout_ms"],
        "cron_schedule": state["cron_schedule"],
        "start_delay_ms": backoff_ms,
        "parent": state["parent"],
        "request_id": "",
    }
    extra: dict[str, Any] = {
        "attempt": attempt,
        "first_execution_run_id": state["first_execution_run_id"],
        "continued_execution_run_id": state["run_id"],
        "initiator": initiator,
        "execution_expiration_time_ms": state["execution_expiration_time_ms"],
    }
    if failure is not None:
        extra["continued_failure"] = failure
    if result is not None:
        extra["last_completion_result"] = result
    new = _start_run(ctx, state["workflow_id"], new_run_id, body, "", extra=extra)
    new["waiters"] = waiters
    schedule_workflow_task(ctx, new)
    # The new run becomes the workflow's current run; the caller stores it.
    state.clear()
    state.update(new)


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


# -- activity outcomes ------------------------------------------------------------------------


def _pending_attempt(
    ctx: Context, command: dict[str, Any], body: dict[str, Any]
) -> tuple[State, dict[str, Any]] | None:
    state = ctx.state(command["workflow_id"])
    if state is None or state["status"] != "RUNNING":
        return None
    if command.get("run_id") and command["run_id"] != state["run_id"]:
        return None
    activity = state["activities"].get(str(body["scheduled_event_id"]))
    if activity is None or activity["attempt"] != body["attempt"] or not activity["dispatched"]:
        return None
    return state, activity


def _activity_completed(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    pending = _pending_attempt(ctx, command, body)
    if pending is None:
        return
    state, activity = pending
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
    schedule_workflow_task(ctx, state)
    ctx.put(state)


def _activity_failed(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    pending = _pending_attempt(ctx, command, body)
    if pending is None:
        return
    state, activity = pending
    if body.get("last_heartbeat_details"):
        activity["heartbeat_details"] = body["last_heartbeat_details"]
    _activity_attempt_failed(ctx, state, activity, body["failure"], timeout=False)
    schedule_workflow_task(ctx, state)
    ctx.put(state)


def _activity_canceled(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    pending = _pending_attempt(ctx, command, body)
    if pending is None:
        return
    state, activity = pending
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
    state = ctx.state(command["workflow_id"])
    if state is None or state["status"] != "RUNNING":
        return None
    if command.get("run_id") and command["run_id"] != state["run_id"]:
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
    state = ctx.state(command["workflow_id"])
    if state is None or state["status"] != "RUNNING":
        return
    if command.get("run_id") and command["run_id"] != state["run_id"]:
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
    if task["dispatched_time_ms"] + task["timeout_ms"] > ctx.now_ms:
        return False
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
    activity = state["activities"].get(str(ref))
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
        elif kind == "START_TO_CLOSE":
            begin = activity["started_time_ms"] or activity["attempt_time_ms"]
            deadline = begin + (activity["start_to_close_timeout_ms"] or 0)
        elif kind == "HEARTBEAT":
            last = activity["last_heartbeat_time_ms"] or activity["attempt_time_ms"]
            deadline = max(last, activity["attempt_time_ms"]) + (
                activity["heartbeat_timeout_ms"] or 0
            )
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


# -- entry point ------------------------------------------------------------------------------

_HANDLERS: dict[str, Callable[[Context, dict[str, Any], dict[str, Any]], None]] = {
    _C + "StartWorkflow": _start,
    _C + "SignalWorkflow": _signal,
    _C + "RequestCancelWorkflow": _request_cancel,
    _C + "TerminateWorkflow": _terminate,
    _C + "GetWorkflowResult": _get_result,
    _C + "DescribeWorkflow": _describe,
    _C + "QueryWorkflow": _query,
    _C + "UpdateWorkflow": _update,
    _C + "WorkflowTaskCompleted": _task_completed,
    _C + "WorkflowTaskFailed": _task_failed,
    _C + "ActivityTaskStarted": _activity_started,
    _C + "ActivityTaskCompleted": _activity_completed,
    _C + "ActivityTaskFailed": _activity_failed,
    _C + "ActivityTaskCanceled": _activity_canceled,
    _C + "ActivityTaskHeartbeat": _heartbeat,
    _C + "TimerFired": _timer_fired,
    _C + "TimeoutFired": _timeout_fired,
    _C + "ChildWorkflowStarted": _child_started,
    _C + "ChildWorkflowStartFailed": _child_start_failed,
    _C + "ChildWorkflowClosed": _child_closed,
    _C + "ExternalSignalResult": _external_result("SIGNAL"),
    _C + "ExternalCancelResult": _external_result("CANCEL"),
}


def decide(ctx: Context, command: dict[str, Any]) -> None:
    """Take the decision for one command; a Rejected becomes a CommandRejected reply."""
    name, body = command["body"]
    handler = _HANDLERS.get(name)
    try:
        if handler is None:
            raise Rejected("INVALID_ARGUMENT", f"command {name} is not supported yet")
        handler(ctx, command, body)
    except Rejected as rejection:
        _log.debug("rejected %s for %s: %s", name, command["workflow_id"], rejection.message)
        _reply(
            ctx, command, "CommandRejected", {"code": rejection.code, "message": rejection.message}
        )
