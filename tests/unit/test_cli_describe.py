"""``cadenza workflow describe``'s text: the pending workflow task's attempt shows there,
since attempts after the first are not in history."""

from __future__ import annotations

from typing import Any

from cadenza.cli._workflow import _describe_lines

_VIEW: dict[str, Any] = {
    "workflowId": "w",
    "runId": "r",
    "type": "W",
    "taskQueue": "q",
    "status": "RUNNING",
    "startTime": "2026-12-07T10:00:00Z",
    "executionTime": "2026-12-07T10:00:00Z",
    "closeTime": None,
    "historyLength": 4,
    "pendingActivities": [],
    "pendingChildren": [],
}


def test_a_retried_workflow_task_shows_its_attempt() -> None:
    task = {"state": "STARTED", "attempt": 7, "scheduled_time_ms": 1, "started_time_ms": 2}
    lines = _describe_lines({**_VIEW, "pendingWorkflowTask": task})
    at = lines.index("Pending Workflow Task: STARTED, attempt 7")
    assert "earlier attempts failed or timed out" in lines[at + 1]


def test_a_first_attempt_shows_without_the_note_and_none_shows_nothing() -> None:
    task = {"state": "SCHEDULED", "attempt": 1, "scheduled_time_ms": 1, "started_time_ms": None}
    lines = _describe_lines({**_VIEW, "pendingWorkflowTask": task})
    assert lines[-1] == "Pending Workflow Task: SCHEDULED, attempt 1"
    lines = _describe_lines({**_VIEW, "pendingWorkflowTask": None})
    assert not any("Pending Workflow Task" in line for line in lines)
