"""Commands about whole runs: start, signal, cancel, terminate, result, describe, query, update;
and the runs that follow a closing one (continue-as-new, retry, cron)."""

from __future__ import annotations

from typing import Any

from ._apply import State, new_state
from ._common import (
    _C,
    _H,
    _R,
    Context,
    Rejected,
    _close,
    _reply,
    _result_reply,
    _running,
    emit,
    retry_delay_ms,
    run_id_for,
    schedule_workflow_task,
)
from ._cron import CronError, next_after

# -- command handlers -------------------------------------------------------------------------


def _start(ctx: Context, command: dict[str, Any], body: dict[str, Any]) -> None:
    parent = body.get("parent")
    if parent is None:
        run_id = _start_workflow(ctx, command, body)
        result_reply_to = body.get("result_reply_to")
        if result_reply_to is not None:
            # A start that also asks for the result: GetWorkflowResult on the run it
            # started (or joined), without a command of its own.
            asks = {**command, "run_id": run_id, "reply_to": result_reply_to}
            _get_result(ctx, asks, {"follow_runs": True})
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
            return str(existing["run_id"])
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
    run_id = run_id_for(command["command_id"])
    state = _start_run(ctx, workflow_id, run_id, body, command.get("identity", ""))
    if body.get("signal"):
        _deliver_signal(ctx, state, body["signal"], command.get("identity", ""))
    # Eager start: the first task goes back in the reply, to the sender's own worker.
    eager = bool(body.get("request_eager_execution")) and command.get("reply_to") is not None
    eager_task = schedule_workflow_task(ctx, state, eager=eager)
    ctx.put(state)
    _reply(
        ctx,
        command,
        "WorkflowStarted",
        {"run_id": run_id, "started": True, "eager_workflow_task": eager_task},
    )
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
            # STARTED once a worker said so (an attempt says it after running a
            # moment); before that it waits for a worker, or is too young to say.
            "state": (
                "CANCEL_REQUESTED"
                if a["cancel_requested"]
                else ("STARTED" if a["started_time_ms"] is not None else "SCHEDULED")
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
            "pending_workflow_task": _pending_workflow_task(state),
        },
    )


def _pending_workflow_task(state: State) -> dict[str, Any] | None:
    """The run's workflow task that has not completed, for a description. Its later
    attempts are transient (not in history), so this is where they show."""
    task = state["workflow_task"]
    if task is None or state["status"] != "RUNNING":
        return None
    started = task["started_time_ms"]
    return {
        "state": "SCHEDULED" if started is None else "STARTED",
        "attempt": task["attempt"],
        "scheduled_time_ms": task["dispatched_time_ms"],
        "started_time_ms": started,
    }


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
            "history": ctx.task_history(state["workflow_id"], state["run_id"], 1),
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


# -- successor runs: continue-as-new, retry, cron ----------------------------------------------


def _successor_run_id(state: State, initiator: str) -> str:
    # Deterministic: processing the same close twice names the same next run.
    return run_id_for(f"{state['run_id']}/{initiator}")


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
