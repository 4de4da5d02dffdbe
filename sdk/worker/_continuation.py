"""Continuing a workflow right after an eager activity: the history its next task would have.

A workflow task whose only command schedules an activity that the same worker
runs eagerly (one activity after another, the commonest shape of workflow) is
followed by exactly one history, if nothing else happens to the run meanwhile::

    W+1  WorkflowTaskCompleted   (the task that scheduled the activity, started at W)
    W+2  ActivityTaskScheduled   (eager)
    W+3  ActivityTaskStarted
    W+4  ActivityTaskCompleted   (the attempt's result)
    W+5  WorkflowTaskScheduled
    W+6  WorkflowTaskStarted

So the worker, once the attempt succeeds, runs that next task itself on these
events and sends its completion with the result (``WorkflowTaskContinuation``),
instead of sending the result and waiting for the engine to dispatch the task:
one engine transaction and one task round trip less per activity. The engine
applies the continuation only if the run's history is exactly that; otherwise
it dispatches the task as usual, and the worker, whose instance ran ahead, finds
out from the task's history and replays (see ``WorkflowWorker``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..common._payload import Payload
from ..workflow._history import (
    ACTIVITY_TASK_COMPLETED,
    ACTIVITY_TASK_SCHEDULED,
    ACTIVITY_TASK_STARTED,
    WORKFLOW_TASK_COMPLETED,
    WORKFLOW_TASK_SCHEDULED,
    WORKFLOW_TASK_STARTED,
)


def continuation_history(
    task: Mapping[str, Any],
    schedule: Mapping[str, Any],
    result: list[Payload],
    *,
    time_ms: int,
    identity: str,
    build_id: str,
) -> list[dict[str, Any]]:
    """The events from the completion of ``task`` (which scheduled the activity
    ``schedule``, a ``ScheduleActivityTask`` as sent) to the start of the task its
    eager attempt's ``result`` wakes, as the engine records them; times are
    ``time_ms``, the continued task's time. Payloads as on the wire (encoded)."""
    completed = int(task["started_event_id"]) + 1
    scheduled = completed + 1
    started = scheduled + 1

    def event(event_id: int, name: str, attributes: dict[str, Any]) -> dict[str, Any]:
        return {
            "event_id": event_id,
            "event_time_ms": time_ms,
            "workflow_id": task["workflow_id"],
            "run_id": task["run_id"],
            "attributes": (name, attributes),
        }

    activity = {k: v for k, v in schedule.items() if k != "request_eager_execution"}
    task_scheduled = started + 2  # after the attempt's ActivityTaskCompleted
    return [
        event(
            completed,
            WORKFLOW_TASK_COMPLETED,
            {
                "scheduled_event_id": task["scheduled_event_id"],
                "started_event_id": task["started_event_id"],
                "identity": identity,
                "binary_checksum": build_id,
            },
        ),
        event(
            scheduled,
            ACTIVITY_TASK_SCHEDULED,
            {**activity, "workflow_task_completed_event_id": completed, "eager_execution": True},
        ),
        event(
            started,
            ACTIVITY_TASK_STARTED,
            {"scheduled_event_id": scheduled, "attempt": 1, "identity": identity},
        ),
        event(
            started + 1,
            ACTIVITY_TASK_COMPLETED,
            {
                "result": result,
                "scheduled_event_id": scheduled,
                "started_event_id": started,
                "identity": identity,
            },
        ),
        event(
            task_scheduled,
            WORKFLOW_TASK_SCHEDULED,
            {"task_queue": task["task_queue"], "attempt": 1},
        ),
        event(task_scheduled + 1, WORKFLOW_TASK_STARTED, {"scheduled_event_id": task_scheduled}),
    ]
