"""The engine on the real broker, driven by plain Kafka records (no Cadenza client code)."""

from __future__ import annotations

from pathlib import Path

from cadenza import Settings

from .engine_support import (
    PAYLOAD,
    Wire,
    complete_task,
    running_engine,
    schedule_activity,
    start_body,
)


def test_one_activity_workflow_runs_to_completion(settings: Settings, tmp_path: Path) -> None:
    wire = Wire(settings, "q1")
    with running_engine(settings, str(tmp_path)):
        request = wire.send("wf-1", start_body("Greeting", "q1"), reply=True)
        started = wire.reply(request)
        assert started["body"][0] == "cadenza.reply.WorkflowStarted"
        run_id = started["body"][1]["run_id"]

        task = wire.workflow_task("wf-1")
        assert task["run_id"] == run_id and task["history_from_event_id"] == 1
        kinds = [e["attributes"][0].rsplit(".", 1)[1] for e in task["history"]]
        assert kinds == ["WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted"]

        wire.send("wf-1", complete_task(task, schedule_activity("1", "greet", "q1")), run_id=run_id)
        activity = wire.activity_task("wf-1")
        assert activity["activity_type"] == "greet" and activity["attempt"] == 1

        wire.send(
            "wf-1",
            (
                "cadenza.command.ActivityTaskCompleted",
                {
                    "scheduled_event_id": activity["scheduled_event_id"],
                    "attempt": 1,
                    "result": [PAYLOAD],
                },
            ),
            run_id=run_id,
        )
        task2 = wire.workflow_task("wf-1", timeout=20)
        # Sticky: exactly what the worker has not seen, from the event after the
        # first task's WorkflowTaskStarted (its WorkflowTaskCompleted) on.
        assert task2["history_from_event_id"] == task["started_event_id"] + 1
        kinds = [e["attributes"][0].rsplit(".", 1)[1] for e in task2["history"]]
        assert kinds == [
            "WorkflowTaskCompleted",
            "ActivityTaskScheduled",
            "ActivityTaskStarted",
            "ActivityTaskCompleted",
            "WorkflowTaskScheduled",
            "WorkflowTaskStarted",
        ]
        wire.send(
            "wf-1",
            complete_task(
                task2, ("cadenza.command.CompleteWorkflowExecution", {"result": [PAYLOAD]})
            ),
            run_id=run_id,
        )
        request = wire.send("wf-1", ("cadenza.command.GetWorkflowResult", {}), reply=True)
        result = wire.reply(request)
        assert result["body"][0] == "cadenza.reply.WorkflowResult"
        assert result["body"][1]["status"] == "COMPLETED"
        assert result["body"][1]["result"] == [PAYLOAD]

        events = wire.history("wf-1", "cadenza.history.WorkflowExecutionCompleted")
        assert [e["event_id"] for e in events] == list(range(1, len(events) + 1))
    wire.close()
