"""What every command handler shares: the context, emitting events, replies, closing, dispatch."""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any, Protocol

from ._apply import Event, State, apply

_log = logging.getLogger("cadenza.engine")

_C = "cadenza.command."
_H = "cadenza.history."
_R = "cadenza.reply."

STICKY_CACHE_MISS = "STICKY_CACHE_MISS"
UNHANDLED_COMMAND = "UNHANDLED_COMMAND"
_MAX_TASK_BACKOFF_MS = 60_000
MAX_RETRY_TASK_TIMEOUT_MS = 600_000
"""The longest start-to-close timeout a retried workflow task grows to (10 minutes)."""
_ENDS_A_RUN_FROM_OUTSIDE = frozenset({"WorkflowExecutionTerminated", "WorkflowExecutionTimedOut"})
_RUN_ID_NAMESPACE = uuid.UUID("7b0c1f5e-6a3d-4c59-9d3e-3f0b8a2c1d10")
_RUN_ID_PREFIX = _RUN_ID_NAMESPACE.bytes
_sha1 = hashlib.sha1


def run_id_for(name: str) -> str:
    """``str(uuid.uuid5(_RUN_ID_NAMESPACE, name))``, the same text, without building the
    ``UUID`` object (4.3 -> 1.5 us; every StartWorkflow names its run this way)."""
    digest = bytearray(_sha1(_RUN_ID_PREFIX + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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

    def task_history(self, workflow_id: str, run_id: str, from_event_id: int) -> list[Any]:
        """The same events for a workflow task's ``history``, each an event or its
        encoding (which the task's writer splices in)."""
        ...

    def append(self, event: Event) -> None: ...

    def workflow_task(self, task: dict[str, Any]) -> None: ...

    def encode_workflow_task(self, task: dict[str, Any]) -> bytes:
        """``task`` encoded as :meth:`workflow_task` writes it (an eager start's reply
        carries it instead)."""
        ...

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


def emit(
    ctx: Context, state: State, name: str, attrs: dict[str, Any], *, time_ms: int | None = None
) -> int:
    """Append the run's next event, apply it, and return its id (recorded at ``time_ms``,
    by default now).

    A transient workflow task out with a worker (see :func:`is_transient`) has its
    events written first, as they hold the ids the worker was given; unless the
    event ends the run from outside (a termination, a timeout), which drops the
    task, as Temporal does."""
    task = state["workflow_task"]
    if is_transient(state, task):
        if name in _ENDS_A_RUN_FROM_OUTSIDE:
            state["workflow_task"] = None
        else:
            _write_transient_task(ctx, state, task)
    event = {
        "event_id": state["next_event_id"],
        "event_time_ms": ctx.now_ms if time_ms is None else time_ms,
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


def _running_or_none(ctx: Context, command: dict[str, Any]) -> State | None:
    """The run a command targets if it is running, else ``None``: for the outcomes
    workers and timers report, where a command about a closed or replaced run is
    stale and dropped without a reply."""
    state = ctx.state(command["workflow_id"])
    if state is None or state["status"] != "RUNNING":
        return None
    if command.get("run_id") and command["run_id"] != state["run_id"]:
        return None
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


def schedule_workflow_task(ctx: Context, state: State, *, eager: bool = False) -> bytes | None:
    """Dispatch a workflow task if the run needs one and none is outstanding or backing off.

    With ``eager``, a task dispatched now is not sent: its encoding is returned, for
    an eager start's reply (None when no task was dispatched)."""
    if state["status"] != "RUNNING" or state["workflow_task"] is not None:
        return None
    if not state["workflow_task_needed"] or ctx.now_ms < state["execution_time_ms"]:
        return None
    return _dispatch_new_task(ctx, state, attempt=1, eager=eager)


def _dispatch_new_task(
    ctx: Context,
    state: State,
    *,
    attempt: int,
    ran_at_ms: int | None = None,
    eager: bool = False,
) -> bytes | None:
    """Schedule and start a workflow task and send it to the task queue (with
    ``eager``, return its encoding instead); or, with ``ran_at_ms``, only record it,
    as a worker already ran it at that time (a continuation: its completion is
    applied next)."""
    timeout = task_timeout_ms(state["task_timeout_ms"], attempt)
    if attempt > 1 and ran_at_ms is None and not eager:
        # A retry after a failure or a timeout: transient, as in Temporal. Its events
        # go to the worker only, and into history once anything else is written.
        next_id = state["next_event_id"]
        state["workflow_task"] = {
            "scheduled_event_id": next_id,
            "started_event_id": next_id + 1,
            "attempt": attempt,
            "dispatched_time_ms": ctx.now_ms,
            "timeout_ms": timeout,
            "started_time_ms": None,
        }
        state["workflow_task_needed"] = False
        return _send_workflow_task(ctx, state)
    scheduled = emit(
        ctx,
        state,
        "WorkflowTaskScheduled",
        {
            "task_queue": state["task_queue"],
            "start_to_close_timeout_ms": timeout,
            "attempt": attempt,
        },
        time_ms=ran_at_ms,
    )
    emit(ctx, state, "WorkflowTaskStarted", {"scheduled_event_id": scheduled}, time_ms=ran_at_ms)
    if eager or ran_at_ms is not None:
        # Handed to a worker directly (or run by one already): taken, so its timeout
        # counts from now, and a lost eager task times out into the queue.
        state["workflow_task"]["started_time_ms"] = ctx.now_ms
    if ran_at_ms is None:
        return _send_workflow_task(ctx, state, eager=eager)
    return None


def task_timeout_ms(run_task_timeout_ms: int, attempt: int) -> int:
    """The start-to-close timeout of a workflow task's ``attempt``: the run's task
    timeout, doubled for each attempt after the first, up to 10 minutes (or the run's
    timeout when that is longer).

    A task times out only after a worker said it started it (``WorkflowTaskStarted``,
    sent once a task has run a moment): a very long replay, or a worker that hangs
    or died. Each attempt gets more time, so a task that needs longer than the
    run's timeout still gets through, and a worker that keeps failing it is not
    sent it every few seconds.

    Example:
        >>> [task_timeout_ms(10_000, n) // 1000 for n in (1, 2, 3, 7, 8, 20)]
        [10, 20, 40, 600, 600, 600]
    """
    if attempt <= 1:
        return run_task_timeout_ms
    grown = run_task_timeout_ms << min(attempt - 1, 16)
    return max(run_task_timeout_ms, min(grown, MAX_RETRY_TASK_TIMEOUT_MS))


def is_transient(state: State, task: dict[str, Any] | None) -> bool:
    """Whether ``task`` is a transient workflow task: a retry (attempt 2 on) whose
    ``WorkflowTaskScheduled`` and ``WorkflowTaskStarted`` are not in history yet.

    As in Temporal, a task that keeps failing or timing out writes its events once:
    its first attempt's, and its ``WorkflowTaskFailed`` or ``WorkflowTaskTimedOut``.
    Later attempts send their two events to the worker with the history, and write
    them when the task completes, or when another event must be written while it is
    out (a signal, say), since the worker holds their ids.
    """
    return task is not None and task["scheduled_event_id"] == state["next_event_id"]


def drop_transient_task(state: State) -> None:
    """A transient task failed or timed out: forget it, with nothing written (its first
    attempt's failure is in history), and the worker's cache with it, as the
    ``WorkflowTaskFailed`` and ``WorkflowTaskTimedOut`` appliers do."""
    state["workflow_task"] = None
    state["worker_seen_event_id"] = 0


def _transient_events(state: State, task: dict[str, Any]) -> list[Event]:
    """A transient task's ``WorkflowTaskScheduled`` and ``WorkflowTaskStarted``."""
    scheduled = task["scheduled_event_id"]
    common = {"workflow_id": state["workflow_id"], "run_id": state["run_id"]}
    at = task["dispatched_time_ms"]
    return [
        {
            **common,
            "event_id": scheduled,
            "event_time_ms": at,
            "attributes": (
                _H + "WorkflowTaskScheduled",
                {
                    "task_queue": state["task_queue"],
                    "start_to_close_timeout_ms": task["timeout_ms"],
                    "attempt": task["attempt"],
                },
            ),
        },
        {
            **common,
            "event_id": scheduled + 1,
            "event_time_ms": at,
            "attributes": (_H + "WorkflowTaskStarted", {"scheduled_event_id": scheduled}),
        },
    ]


def _write_transient_task(ctx: Context, state: State, task: dict[str, Any]) -> None:
    for event in _transient_events(state, task):
        apply(state, event)
        ctx.append(event)
    # Applying the events made a fresh task; it is still the one out with a worker.
    state["workflow_task"] = task


def _send_workflow_task(
    ctx: Context, state: State, *, full: bool = False, eager: bool = False
) -> bytes | None:
    task = state["workflow_task"]
    seen = 0 if full else state["worker_seen_event_id"]
    from_id = seen + 1 if seen else 1
    history = ctx.task_history(state["workflow_id"], state["run_id"], from_id)
    next_id = state["next_event_id"]
    if is_transient(state, task):
        history.extend(_transient_events(state, task))
        next_id += 2
    message = {
        "workflow_id": state["workflow_id"],
        "run_id": state["run_id"],
        "workflow_type": state["workflow_type"],
        "task_queue": state["task_queue"],
        "scheduled_event_id": task["scheduled_event_id"],
        "attempt": task["attempt"],
        "started_event_id": task["started_event_id"],
        "history_from_event_id": from_id,
        "history": history,
        "next_event_id": next_id,
        "query": None,
        "updates": [u["request"] for u in state["updates"].values() if u["stage"] == "ADMITTED"],
        "scheduled_time_ms": ctx.now_ms,
    }
    for update in state["updates"].values():
        update["delivered"] = True
    if eager:
        return ctx.encode_workflow_task(message)
    ctx.workflow_task(message)
    return None


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
        "started_time_ms": None,
    }


# -- activity dispatch and retry --------------------------------------------------------------


def _send_activity_task(ctx: Context, state: State, activity: dict[str, Any]) -> None:
    activity["dispatched"] = True
    activity["attempt_time_ms"] = ctx.now_ms
    activity["started_time_ms"] = None
    activity["eager"] = False
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
    if (
        info_name == "cadenza.common.ApplicationFailureInfo"
        and info is not None
        and info.get("next_retry_delay_ms")
    ):
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
        activity["eager"] = False
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
