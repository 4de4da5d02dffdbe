"""History events and workflow commands as the runtime sees them: names, kinds, matching.

Events are ``cadenza.history.HistoryEvent`` dicts whose ``attributes`` is a
``(full name, record)`` tuple; commands are ``(full name, record)`` tuples as
they go into ``WorkflowTaskCompleted.commands``. Replay matches each command
the code produces against the event history recorded for it; this module
says which event answers which command and which fields must agree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..exceptions import NondeterminismError

HistoryEvent = Mapping[str, Any]
"""A ``cadenza.history.HistoryEvent`` dict."""

Command = tuple[str, dict[str, Any]]
"""A workflow command: ``("cadenza.command.<Name>", record)``."""

_E = "cadenza.history."
_C = "cadenza.command."

# Workflow task events: they delimit the groups replay works in.
WORKFLOW_TASK_SCHEDULED = _E + "WorkflowTaskScheduled"
WORKFLOW_TASK_STARTED = _E + "WorkflowTaskStarted"
WORKFLOW_TASK_COMPLETED = _E + "WorkflowTaskCompleted"
WORKFLOW_TASK_FAILED = _E + "WorkflowTaskFailed"
WORKFLOW_TASK_TIMED_OUT = _E + "WorkflowTaskTimedOut"

# Input events: what the code reacts to.
WORKFLOW_EXECUTION_STARTED = _E + "WorkflowExecutionStarted"
WORKFLOW_EXECUTION_SIGNALED = _E + "WorkflowExecutionSignaled"
WORKFLOW_EXECUTION_CANCEL_REQUESTED = _E + "WorkflowExecutionCancelRequested"
WORKFLOW_EXECUTION_UPDATE_ADMITTED = _E + "WorkflowExecutionUpdateAdmitted"
ACTIVITY_TASK_STARTED = _E + "ActivityTaskStarted"
ACTIVITY_TASK_COMPLETED = _E + "ActivityTaskCompleted"
ACTIVITY_TASK_FAILED = _E + "ActivityTaskFailed"
ACTIVITY_TASK_TIMED_OUT = _E + "ActivityTaskTimedOut"
ACTIVITY_TASK_CANCELED = _E + "ActivityTaskCanceled"
TIMER_FIRED = _E + "TimerFired"
CHILD_WORKFLOW_EXECUTION_STARTED = _E + "ChildWorkflowExecutionStarted"
START_CHILD_WORKFLOW_EXECUTION_FAILED = _E + "StartChildWorkflowExecutionFailed"
CHILD_WORKFLOW_EXECUTION_COMPLETED = _E + "ChildWorkflowExecutionCompleted"
CHILD_WORKFLOW_EXECUTION_FAILED = _E + "ChildWorkflowExecutionFailed"
CHILD_WORKFLOW_EXECUTION_CANCELED = _E + "ChildWorkflowExecutionCanceled"
CHILD_WORKFLOW_EXECUTION_TIMED_OUT = _E + "ChildWorkflowExecutionTimedOut"
CHILD_WORKFLOW_EXECUTION_TERMINATED = _E + "ChildWorkflowExecutionTerminated"
EXTERNAL_WORKFLOW_EXECUTION_SIGNALED = _E + "ExternalWorkflowExecutionSignaled"
SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED = _E + "SignalExternalWorkflowExecutionFailed"
EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED = _E + "ExternalWorkflowExecutionCancelRequested"
REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED = (
    _E + "RequestCancelExternalWorkflowExecutionFailed"
)

# Command events, and the command each answers.
MARKER_RECORDED = _E + "MarkerRecorded"
ACTIVITY_TASK_SCHEDULED = _E + "ActivityTaskScheduled"
WORKFLOW_EXECUTION_UPDATE_ACCEPTED = _E + "WorkflowExecutionUpdateAccepted"
WORKFLOW_EXECUTION_UPDATE_REJECTED = _E + "WorkflowExecutionUpdateRejected"

SCHEDULE_ACTIVITY_TASK = _C + "ScheduleActivityTask"
REQUEST_CANCEL_ACTIVITY_TASK = _C + "RequestCancelActivityTask"
START_TIMER = _C + "StartTimer"
CANCEL_TIMER = _C + "CancelTimer"
COMPLETE_WORKFLOW_EXECUTION = _C + "CompleteWorkflowExecution"
FAIL_WORKFLOW_EXECUTION = _C + "FailWorkflowExecution"
CANCEL_WORKFLOW_EXECUTION = _C + "CancelWorkflowExecution"
CONTINUE_AS_NEW_WORKFLOW_EXECUTION = _C + "ContinueAsNewWorkflowExecution"
START_CHILD_WORKFLOW_EXECUTION = _C + "StartChildWorkflowExecution"
SIGNAL_EXTERNAL_WORKFLOW_EXECUTION = _C + "SignalExternalWorkflowExecution"
REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION = _C + "RequestCancelExternalWorkflowExecution"
RECORD_MARKER = _C + "RecordMarker"
UPSERT_WORKFLOW_SEARCH_ATTRIBUTES = _C + "UpsertWorkflowSearchAttributes"
MODIFY_WORKFLOW_PROPERTIES = _C + "ModifyWorkflowProperties"
ACCEPT_UPDATE = _C + "AcceptUpdate"
REJECT_UPDATE = _C + "RejectUpdate"
COMPLETE_UPDATE = _C + "CompleteUpdate"

TERMINAL_COMMANDS = frozenset(
    {
        COMPLETE_WORKFLOW_EXECUTION,
        FAIL_WORKFLOW_EXECUTION,
        CANCEL_WORKFLOW_EXECUTION,
        CONTINUE_AS_NEW_WORKFLOW_EXECUTION,
    }
)

PATCH_MARKER = "core_patch"
"""``marker_name`` of the markers ``workflow.patched`` records (Temporal's name)."""

# Command -> (the event recording it, the fields that must agree).
_MATCHES: dict[str, tuple[str, tuple[str, ...]]] = {
    SCHEDULE_ACTIVITY_TASK: (ACTIVITY_TASK_SCHEDULED, ("activity_id", "activity_type")),
    REQUEST_CANCEL_ACTIVITY_TASK: (_E + "ActivityTaskCancelRequested", ("scheduled_event_id",)),
    START_TIMER: (_E + "TimerStarted", ("timer_id",)),
    CANCEL_TIMER: (_E + "TimerCanceled", ("timer_id",)),
    COMPLETE_WORKFLOW_EXECUTION: (_E + "WorkflowExecutionCompleted", ()),
    FAIL_WORKFLOW_EXECUTION: (_E + "WorkflowExecutionFailed", ()),
    CANCEL_WORKFLOW_EXECUTION: (_E + "WorkflowExecutionCanceled", ()),
    CONTINUE_AS_NEW_WORKFLOW_EXECUTION: (_E + "WorkflowExecutionContinuedAsNew", ()),
    START_CHILD_WORKFLOW_EXECUTION: (
        _E + "StartChildWorkflowExecutionInitiated",
        ("workflow_id", "workflow_type"),
    ),
    SIGNAL_EXTERNAL_WORKFLOW_EXECUTION: (
        _E + "SignalExternalWorkflowExecutionInitiated",
        ("workflow_id", "signal_name"),
    ),
    REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION: (
        _E + "RequestCancelExternalWorkflowExecutionInitiated",
        ("workflow_id",),
    ),
    RECORD_MARKER: (MARKER_RECORDED, ("marker_name",)),
    UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: (_E + "UpsertWorkflowSearchAttributes", ()),
    MODIFY_WORKFLOW_PROPERTIES: (_E + "WorkflowPropertiesModified", ()),
    ACCEPT_UPDATE: (WORKFLOW_EXECUTION_UPDATE_ACCEPTED, ("update_id",)),
    REJECT_UPDATE: (WORKFLOW_EXECUTION_UPDATE_REJECTED, ("update_id",)),
    COMPLETE_UPDATE: (_E + "WorkflowExecutionUpdateCompleted", ("update_id",)),
}

COMMAND_EVENTS = frozenset(event for event, _ in _MATCHES.values())
"""Events the engine writes for a command of a completed workflow task."""

WORKFLOW_TASK_EVENTS = frozenset(
    {
        WORKFLOW_TASK_SCHEDULED,
        WORKFLOW_TASK_STARTED,
        WORKFLOW_TASK_COMPLETED,
        WORKFLOW_TASK_FAILED,
        WORKFLOW_TASK_TIMED_OUT,
    }
)


def short(name: str) -> str:
    """``cadenza.history.TimerFired`` -> ``TimerFired``."""
    return name.rsplit(".", 1)[-1]


def event_kind(event: HistoryEvent) -> str:
    """The full name of an event's attributes record."""
    return str(event["attributes"][0])


def event_attributes(event: HistoryEvent) -> Mapping[str, Any]:
    """An event's attributes record."""
    attributes: Mapping[str, Any] = event["attributes"][1]
    return attributes


_EVENT_FIELDS = {event: fields for event, fields in _MATCHES.values()}


def _key_fields(name: str, record: Mapping[str, Any]) -> str:
    if name in (RECORD_MARKER, MARKER_RECORDED) and record.get("marker_name") == PATCH_MARKER:
        patch_id = patch_id_of(record)
        if patch_id is not None:
            return f"(marker_name='{PATCH_MARKER}', patch_id={patch_id!r})"
    fields = _MATCHES[name][1] if name in _MATCHES else _EVENT_FIELDS.get(name, ())
    return "(" + ", ".join(f"{f}={record.get(f)!r}" for f in fields) + ")"


def describe_event(event: HistoryEvent) -> str:
    """``#5 ActivityTaskScheduled(activity_id='1', activity_type='charge')``."""
    name = event_kind(event)
    return f"#{event['event_id']} {short(name)}{_key_fields(name, event_attributes(event))}"


def describe_command(command: Command) -> str:
    """``ScheduleActivityTask(activity_id='1', activity_type='refund')``."""
    name, record = command
    return f"{short(name)}{_key_fields(name, record)}"


def patch_id_of(record: Mapping[str, Any]) -> str | None:
    """The patch id of a ``core_patch`` marker (command or event), if readable."""
    payloads = (record.get("details") or {}).get("patch_id") or []
    if not payloads:
        return None
    data = payloads[0].get("data", b"")
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def patch_deprecated(record: Mapping[str, Any]) -> bool:
    """Whether a ``core_patch`` marker event says the patch is deprecated."""
    payloads = (record.get("details") or {}).get("deprecated") or []
    return bool(payloads) and payloads[0].get("data", b"") == b"true"


def check_match(command: Command, event: HistoryEvent) -> None:
    """Raise :class:`NondeterminismError` unless ``event`` records ``command``."""
    name, record = command
    expected_event, fields = _MATCHES[name]
    attributes = event_attributes(event)
    same = event_kind(event) == expected_event and all(
        record.get(f) == attributes.get(f) for f in fields
    )
    if same and name == RECORD_MARKER and record.get("marker_name") == PATCH_MARKER:
        same = patch_id_of(record) == patch_id_of(attributes)
    if not same:
        raise NondeterminismError(
            f"Nondeterminism at history event {event['event_id']}: history has "
            f"{describe_event(event)} but the workflow code produced {describe_command(command)}"
        )


def missing_event_error(command: Command, next_event: HistoryEvent | None) -> NondeterminismError:
    """The code produced ``command`` but history has no event for it."""
    where = (
        f"history continues with {describe_event(next_event)}"
        if next_event is not None
        else "history ends there"
    )
    return NondeterminismError(
        f"Nondeterminism: the workflow code produced {describe_command(command)} "
        f"but {where} instead of the event recording it"
    )


def extra_event_error(event: HistoryEvent) -> NondeterminismError:
    """History has a command event the code did not produce a command for."""
    return NondeterminismError(
        f"Nondeterminism at history event {event['event_id']}: history has "
        f"{describe_event(event)} but the workflow code produced no command for it"
    )
