"""A fake engine for the runtime tests: writes history as the real engine would.

``FakeEngine`` keeps a run's history, hands the new events to a
``WorkflowInstance`` task by task, and records each completed task's commands
as their history events. Every event and every command goes through the Avro
codec, so the dicts on both sides are proven wire-valid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cadenza import schemas
from cadenza.converter import DataConverter
from cadenza.workflow._definition import _Definition
from cadenza.workflow._runtime import ActivationResult, WorkflowInstance

T0_MS = 1_700_000_000_000
PC = DataConverter.default.payload_converter
FC = DataConverter.default.failure_converter

_E = "cadenza.history."
_C = "cadenza.command."

# What the engine records for each command.
_EVENT_OF = {
    "ScheduleActivityTask": "ActivityTaskScheduled",
    "RequestCancelActivityTask": "ActivityTaskCancelRequested",
    "StartTimer": "TimerStarted",
    "CancelTimer": "TimerCanceled",
    "CompleteWorkflowExecution": "WorkflowExecutionCompleted",
    "FailWorkflowExecution": "WorkflowExecutionFailed",
    "CancelWorkflowExecution": "WorkflowExecutionCanceled",
    "ContinueAsNewWorkflowExecution": "WorkflowExecutionContinuedAsNew",
    "StartChildWorkflowExecution": "StartChildWorkflowExecutionInitiated",
    "SignalExternalWorkflowExecution": "SignalExternalWorkflowExecutionInitiated",
    "RequestCancelExternalWorkflowExecution": "RequestCancelExternalWorkflowExecutionInitiated",
    "RecordMarker": "MarkerRecorded",
    "UpsertWorkflowSearchAttributes": "UpsertWorkflowSearchAttributes",
    "ModifyWorkflowProperties": "WorkflowPropertiesModified",
    "AcceptUpdate": "WorkflowExecutionUpdateAccepted",
    "CompleteUpdate": "WorkflowExecutionUpdateCompleted",
}


def wire_event(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` after an Avro round trip (defaults filled in, validated)."""
    return schemas.decode_as(schemas.encode(schemas.HISTORY_EVENT, event), schemas.HISTORY_EVENT)


def check_commands(commands: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Fail unless the commands encode in a ``WorkflowTaskCompleted`` and round-trip."""
    command = {
        "command_id": "c-1",
        "workflow_id": "wf",
        "sent_time_ms": T0_MS,
        "body": (
            _C + "WorkflowTaskCompleted",
            {"scheduled_event_id": 1, "attempt": 1, "commands": list(commands)},
        ),
    }
    decoded = schemas.decode_as(schemas.encode(schemas.COMMAND, command), schemas.COMMAND)
    assert len(decoded["body"][1]["commands"]) == len(commands)


def payload(value: Any) -> dict[str, Any]:
    return dict(PC.to_payload(value))


def value(payloads: Sequence[Mapping[str, Any]]) -> Any:
    return PC.from_payloads(list(payloads))[0]  # type: ignore[arg-type]


def short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


class FakeEngine:
    """One workflow run's history, written as the engine writes it."""

    def __init__(
        self,
        workflow: type,
        *args: Any,
        workflow_id: str = "wf-1",
        run_id: str = "run-1",
        task_queue: str = "q",
        memo: Mapping[str, Any] | None = None,
        instance: bool = True,
        always_replay: bool = True,
        interceptor_classes: Sequence[type] = (),
    ) -> None:
        self.definition = _Definition.must_from_class(workflow)
        self.interceptor_classes = tuple(interceptor_classes)
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.now_ms = T0_MS
        self.events: list[dict[str, Any]] = []
        self.delivered = 0
        self.activities: dict[str, int] = {}  # activity id -> scheduled event id
        self.timers: dict[str, int] = {}  # timer id -> started event id
        self.children: dict[str, int] = {}  # child workflow id -> initiated event id
        self.externals: list[int] = []  # initiated event ids of signal/cancel requests
        self.updates: dict[str, dict[str, Any]] = {}
        self.update_events: dict[str, int] = {}
        self.open_task: int | None = None
        self.closed: str | None = None
        self.add(
            "WorkflowExecutionStarted",
            {
                "workflow_type": self.definition.name or "Dynamic",
                "task_queue": task_queue,
                "input": [payload(a) for a in args],
                "memo": {k: payload(v) for k, v in (memo or {}).items()},
                "first_execution_run_id": run_id,
                "original_execution_run_id": run_id,
                "task_timeout_ms": 10_000,
            },
        )
        self.instance = self.new_instance() if instance else None
        self.always_replay = always_replay

    def new_instance(self) -> WorkflowInstance:
        return WorkflowInstance(
            self.definition,
            workflow_id=self.workflow_id,
            run_id=self.run_id,
            started_event=self.events[0],
            payload_converter=PC,
            failure_converter=FC,
            interceptor_classes=self.interceptor_classes,
        )

    # History.

    def add(self, kind: str, attributes: dict[str, Any]) -> dict[str, Any]:
        event = wire_event(
            {
                "event_id": len(self.events) + 1,
                "event_time_ms": self.now_ms,
                "workflow_id": self.workflow_id,
                "run_id": self.run_id,
                "attributes": (_E + kind, attributes),
            }
        )
        self.events.append(event)
        return event

    def advance(self, seconds: float) -> None:
        self.now_ms += round(seconds * 1000)

    def kinds(self) -> list[str]:
        return [short(e["attributes"][0]) for e in self.events]

    # Workflow tasks.

    def schedule_task(self) -> None:
        if self.open_task is None:
            event = self.add(
                "WorkflowTaskScheduled",
                {"task_queue": "q", "start_to_close_timeout_ms": 10_000, "attempt": 1},
            )
            self.open_task = event["event_id"]

    def run_task(
        self,
        *,
        updates: Sequence[dict[str, Any]] = (),
        signal_meanwhile: tuple[Any, ...] | None = None,
    ) -> ActivationResult:
        """Schedule a task, give the new events to the instance, record its answer.

        ``signal_meanwhile`` is a signal the engine writes while the worker
        holds the task (after its WorkflowTaskScheduled, before its completion).
        """
        assert self.instance is not None
        assert self.closed is None, f"workflow already closed ({self.closed})"
        self.schedule_task()
        new = self.events[self.delivered :]
        self.delivered = len(self.events)
        wire_updates = [self._update_request(u) for u in updates]
        result = self.instance.activate(new, updates=wire_updates)
        assert result.ran_live or result.failure is not None
        check_commands(result.commands)
        if signal_meanwhile is not None:
            self.signal(*signal_meanwhile)
        scheduled = self.open_task
        started = self.add("WorkflowTaskStarted", {"scheduled_event_id": scheduled})
        if result.failure is not None:
            self.add(
                "WorkflowTaskFailed",
                {
                    "scheduled_event_id": scheduled,
                    "started_event_id": started["event_id"],
                    "cause": result.failure.cause,
                    "failure": result.failure.failure,
                },
            )
        else:
            completed = self.add(
                "WorkflowTaskCompleted",
                {"scheduled_event_id": scheduled, "started_event_id": started["event_id"]},
            )
            for command in result.commands:
                self.record(command, completed["event_id"])
        self.open_task = None
        if self.always_replay and result.failure is None:
            self.check_replay()
        return result

    def check_replay(self) -> None:
        """A fresh instance replays the whole history so far without a mismatch."""
        fresh = self.new_instance()
        replayed = fresh.activate(self.events)
        assert replayed.failure is None, replayed.failure
        assert not replayed.ran_live and fresh.pending_commands() == []

    def record(self, command: tuple[str, dict[str, Any]], completed_id: int) -> None:
        name, record = short(command[0]), dict(command[1])
        if name == "RejectUpdate":
            return  # rejections leave no history, as in Temporal
        record["workflow_task_completed_event_id"] = completed_id
        if name == "CancelTimer":
            record["started_event_id"] = self.timers[record["timer_id"]]
        if name == "ContinueAsNewWorkflowExecution":
            record["new_execution_run_id"] = self.run_id + "-next"
        if name == "AcceptUpdate":
            record["accepted_request"] = self.updates[record["update_id"]]
            record["accepted_request_sequencing_event_id"] = completed_id
        if name == "CompleteUpdate":
            record["accepted_event_id"] = self.update_events[record["update_id"]]
        event = self.add(_EVENT_OF[name], record)
        event_id = event["event_id"]
        if name == "ScheduleActivityTask":
            self.activities[record["activity_id"]] = event_id
        elif name == "StartTimer":
            self.timers[record["timer_id"]] = event_id
        elif name == "StartChildWorkflowExecution":
            self.children[record["workflow_id"]] = event_id
        elif name in ("SignalExternalWorkflowExecution", "RequestCancelExternalWorkflowExecution"):
            self.externals.append(event_id)
        elif name == "AcceptUpdate":
            self.update_events[record["update_id"]] = event_id
        elif name in (
            "CompleteWorkflowExecution",
            "FailWorkflowExecution",
            "CancelWorkflowExecution",
            "ContinueAsNewWorkflowExecution",
        ):
            self.closed = name

    def _update_request(self, update: dict[str, Any]) -> dict[str, Any]:
        request = {
            "update_id": update["update_id"],
            "name": update["name"],
            "args": [payload(a) for a in update.get("args", ())],
        }
        self.updates[request["update_id"]] = request
        return request

    # Inputs.

    def complete_activity(self, activity_id: str, result: Any = None) -> None:
        scheduled = self.activities[activity_id]
        started = self.add("ActivityTaskStarted", {"scheduled_event_id": scheduled, "attempt": 1})
        self.add(
            "ActivityTaskCompleted",
            {
                "result": [payload(result)],
                "scheduled_event_id": scheduled,
                "started_event_id": started["event_id"],
            },
        )

    def fail_activity(self, activity_id: str, error: BaseException) -> None:
        scheduled = self.activities[activity_id]
        self.add(
            "ActivityTaskFailed",
            {
                "failure": FC.to_failure(error, PC),
                "scheduled_event_id": scheduled,
                "started_event_id": 0,
                "retry_state": "NON_RETRYABLE_FAILURE",
            },
        )

    def cancel_activity(self, activity_id: str) -> None:
        scheduled = self.activities[activity_id]
        self.add(
            "ActivityTaskCanceled",
            {
                "scheduled_event_id": scheduled,
                "started_event_id": 0,
                "latest_cancel_requested_event_id": 0,
            },
        )

    def fire_timer(self, timer_id: str) -> None:
        self.add("TimerFired", {"timer_id": timer_id, "started_event_id": self.timers[timer_id]})

    def signal(self, name: str, *args: Any, header: Mapping[str, Any] | None = None) -> None:
        self.add(
            "WorkflowExecutionSignaled",
            {"signal_name": name, "input": [payload(a) for a in args], "header": header or {}},
        )

    def request_cancel(self) -> None:
        self.add("WorkflowExecutionCancelRequested", {"reason": "test"})
