"""The workflow runtime: what a workflow worker uses to run workflow code.

Workflow code never imports this; the worker does::

    from cadenza.workflow._runtime import WorkflowInstance

    instance = WorkflowInstance(
        definition, workflow_id=..., run_id=..., started_event=events[0],
        payload_converter=..., failure_converter=...,
    )
    result = instance.activate(events)           # every event so far
    ...
    result = instance.activate(new_events, updates=task["updates"])
    answer = instance.query("status", args)      # list of payloads
"""

from ._history import Command, HistoryEvent
from ._instance import (
    NONDETERMINISM_CAUSE,
    UNHANDLED_FAILURE_CAUSE,
    ActivationFailure,
    ActivationResult,
    StaleInstanceError,
    WorkflowInstance,
)

__all__ = [
    "NONDETERMINISM_CAUSE",
    "UNHANDLED_FAILURE_CAUSE",
    "ActivationFailure",
    "ActivationResult",
    "Command",
    "HistoryEvent",
    "StaleInstanceError",
    "WorkflowInstance",
]
