"""Command handlers: validate a command against state, then emit events and tasks.

``decide(ctx, command)`` is called once per command, in partition order. It
never changes state directly except through ``emit`` (which runs the event's
applier) and the scheduling fields the appliers do not own (see ``_apply``).
Duplicates and stale commands are recognised by state and rejected: a
completion for an attempt that is not pending, a timer that already fired, a
signal id already seen, a workflow task that is not the current one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._common import _C, Context, Rejected, _log, _reply
from ._outcomes import (
    _activity_canceled,
    _activity_completed,
    _activity_failed,
    _activity_started,
    _child_closed,
    _child_start_failed,
    _child_started,
    _external_result,
    _heartbeat,
    _timeout_fired,
    _timer_fired,
)
from ._runs import (
    _describe,
    _get_result,
    _query,
    _request_cancel,
    _signal,
    _start,
    _terminate,
    _update,
)
from ._workflow_task import _reset_sticky, _task_completed, _task_failed, _task_started_by_worker

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
    _C + "WorkflowTaskStarted": _task_started_by_worker,
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
    _C + "ResetStickyTaskQueue": _reset_sticky,
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
