"""Helpers for the worker's unit tests: wire-valid tasks, and a client that records what
the worker sends (every command and reply goes through the Avro codec)."""

from __future__ import annotations

import base64
import concurrent.futures
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cadenza import Settings, activity, schemas, workflow
from cadenza.converter import DataConverter, PayloadCodec
from cadenza.converter import Payload as PayloadDict
from cadenza.worker._activity_worker import ActivityWorker
from cadenza.worker._workflow_worker import WorkflowWorker

T0_MS = 1_700_000_000_000
PC = DataConverter.default.payload_converter
H = "cadenza.history."
C = "cadenza.command."
TIMEOUT = timedelta(seconds=10)


# -- workflows and activities --------------------------------------------------------------


@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}!"


@workflow.defn
class GreetingWorkflow:
    def __init__(self) -> None:
        self.status = "new"

    @workflow.run
    async def run(self, name: str) -> str:
        self.status = "greeting"
        result = await workflow.execute_activity(greet, name, start_to_close_timeout=TIMEOUT)
        self.status = "done"
        return result

    @workflow.query
    def current_status(self) -> str:
        return self.status


# -- records -------------------------------------------------------------------------------


def payload(value: Any) -> dict[str, Any]:
    return dict(PC.to_payload(value))


def value_of(payloads: Sequence[Any]) -> Any:
    return PC.from_payloads(list(payloads))[0]


def event(event_id: int, kind: str, attributes: dict[str, Any], **ids: str) -> dict[str, Any]:
    """A history event after an Avro round trip (defaults filled in, validated)."""
    datum = {
        "event_id": event_id,
        "event_time_ms": T0_MS + event_id,
        "workflow_id": ids.get("workflow_id", "wf-1"),
        "run_id": ids.get("run_id", "run-1"),
        "attributes": (H + kind, attributes),
    }
    return schemas.decode_as(schemas.encode(schemas.HISTORY_EVENT, datum), schemas.HISTORY_EVENT)


def first_history(
    workflow_type: str, *args: Any, task_queue: str = "q", **ids: str
) -> list[dict[str, Any]]:
    """WorkflowExecutionStarted, WorkflowTaskScheduled, WorkflowTaskStarted."""
    run_id = ids.get("run_id", "run-1")
    return [
        event(
            1,
            "WorkflowExecutionStarted",
            {
                "workflow_type": workflow_type,
                "task_queue": task_queue,
                "input": [payload(a) for a in args],
                "first_execution_run_id": run_id,
                "original_execution_run_id": run_id,
                "task_timeout_ms": 10_000,
            },
            **ids,
        ),
        event(
            2,
            "WorkflowTaskScheduled",
            {"task_queue": task_queue, "start_to_close_timeout_ms": 10_000, "attempt": 1},
            **ids,
        ),
        event(3, "WorkflowTaskStarted", {"scheduled_event_id": 2}, **ids),
    ]


def after_activity(
    schedule_command: dict[str, Any], result: Any, **ids: str
) -> list[dict[str, Any]]:
    """Events 4-9: the first task completed, the activity it scheduled ran, a new task."""
    scheduled = dict(schedule_command, workflow_task_completed_event_id=4)
    return [
        event(4, "WorkflowTaskCompleted", {"scheduled_event_id": 2, "started_event_id": 3}, **ids),
        event(5, "ActivityTaskScheduled", scheduled, **ids),
        event(6, "ActivityTaskStarted", {"scheduled_event_id": 5, "attempt": 1}, **ids),
        event(
            7,
            "ActivityTaskCompleted",
            {"result": [payload(result)], "scheduled_event_id": 5, "started_event_id": 6},
            **ids,
        ),
        event(
            8,
            "WorkflowTaskScheduled",
            {"task_queue": "q", "start_to_close_timeout_ms": 10_000, "attempt": 1},
            **ids,
        ),
        event(9, "WorkflowTaskStarted", {"scheduled_event_id": 8}, **ids),
    ]


def workflow_task(
    history: Sequence[dict[str, Any]],
    *,
    workflow_type: str = "GreetingWorkflow",
    scheduled_event_id: int | None = None,
    query: dict[str, Any] | None = None,
    workflow_id: str = "wf-1",
    run_id: str = "run-1",
    task_queue: str = "q",
) -> dict[str, Any]:
    """A ``WorkflowTask`` datum (round-tripped) carrying ``history``."""
    last = int(history[-1]["event_id"])
    if scheduled_event_id is None:
        scheduled_event_id = 0 if query is not None else last - 1
    datum = {
        "workflow_id": workflow_id,
        "run_id": run_id,
        "workflow_type": workflow_type,
        "task_queue": task_queue,
        "scheduled_event_id": scheduled_event_id,
        "attempt": 1,
        "started_event_id": 0 if query is not None else last,
        "history_from_event_id": int(history[0]["event_id"]),
        "history": list(history),
        "next_event_id": last + 1,
        "query": query,
        "scheduled_time_ms": T0_MS,
    }
    return schemas.decode_as(schemas.encode(schemas.WORKFLOW_TASK, datum), schemas.WORKFLOW_TASK)


def query_request(query_type: str, *args: Any, reply_partition: int = 0) -> dict[str, Any]:
    return {
        "query_id": str(uuid.uuid4()),
        "query_type": query_type,
        "args": [payload(a) for a in args],
        "reply_to": {
            "client_id": "client-1",
            "partition": reply_partition,
            "request_id": str(uuid.uuid4()),
        },
    }


def activity_task(
    activity_type: str,
    *args: Any,
    activity_id: str = "1",
    attempt: int = 1,
    heartbeat_timeout_ms: int | None = None,
    heartbeat_details: Sequence[Any] = (),
    workflow_id: str = "wf-1",
    run_id: str = "run-1",
    task_queue: str = "q",
) -> dict[str, Any]:
    """An ``ActivityTask`` datum (round-tripped)."""
    datum = {
        "workflow_id": workflow_id,
        "run_id": run_id,
        "workflow_type": "GreetingWorkflow",
        "activity_id": activity_id,
        "activity_type": activity_type,
        "task_queue": task_queue,
        "scheduled_event_id": 5,
        "attempt": attempt,
        "input": [payload(a) for a in args],
        "heartbeat_details": [payload(d) for d in heartbeat_details],
        "scheduled_time_ms": T0_MS,
        "current_attempt_scheduled_time_ms": T0_MS + 1000,
        "start_to_close_timeout_ms": 10_000,
        "heartbeat_timeout_ms": heartbeat_timeout_ms,
    }
    return schemas.decode_as(schemas.encode(schemas.ACTIVITY_TASK, datum), schemas.ACTIVITY_TASK)


# -- a client that records -----------------------------------------------------------------


@dataclass
class Sent:
    workflow_id: str
    run_id: str | None
    name: str
    body: dict[str, Any]


@dataclass
class FakeTransport:
    """Records commands and replies after an Avro round trip; answers heartbeats."""

    commands: list[Sent] = field(default_factory=list)
    replies: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    heartbeat_reply: Callable[[Sent], tuple[str, dict[str, Any]]] = lambda sent: (
        "cadenza.reply.HeartbeatResponse",
        {"cancel_requested": False},
    )
    fail_with: BaseException | None = None

    async def send_command(
        self,
        workflow_id: str,
        body: tuple[str, dict[str, Any]],
        *,
        run_id: str | None = None,
        want_reply: bool = False,
        timeout: float | None = None,
    ) -> dict[str, Any] | None:
        if self.fail_with is not None:
            raise self.fail_with
        command = {
            "command_id": str(uuid.uuid4()),
            "workflow_id": workflow_id,
            "run_id": run_id,
            "sent_time_ms": T0_MS,
            "body": body,
        }
        wire = schemas.decode_as(schemas.encode(schemas.COMMAND, command), schemas.COMMAND)
        name, record = wire["body"]
        sent = Sent(workflow_id, run_id, name, record)
        self.commands.append(sent)
        if not want_reply:
            return None
        return {
            "request_id": "r-1",
            "workflow_id": workflow_id,
            "run_id": run_id,
            "body": self.heartbeat_reply(sent),
        }

    async def send_reply(
        self,
        reply_to: dict[str, Any],
        *,
        workflow_id: str,
        run_id: str | None,
        body: tuple[str, dict[str, Any]],
    ) -> None:
        reply = {
            "request_id": reply_to["request_id"],
            "workflow_id": workflow_id,
            "run_id": run_id,
            "body": body,
        }
        wire = schemas.decode_as(schemas.encode(schemas.REPLY, reply), schemas.REPLY)
        self.replies.append((reply_to, wire))

    def named(self, short: str) -> list[Sent]:
        return [s for s in self.commands if s.name == C + short]


@dataclass
class FakeClient:
    transport: FakeTransport = field(default_factory=FakeTransport)
    data_converter: DataConverter = DataConverter.default
    settings: Settings = field(default_factory=Settings.defaults)
    namespace: str = "default"
    identity: str = "test-worker"


class Base64Codec(PayloadCodec):
    """Wraps each payload in a ``binary/b64`` payload (to see the codec applied)."""

    async def encode(self, payloads: Sequence[PayloadDict]) -> list[PayloadDict]:
        return [
            {
                "metadata": {"encoding": b"binary/b64", "inner": p["metadata"]["encoding"]},
                "data": base64.b64encode(p["data"]),
            }
            for p in payloads
        ]

    async def decode(self, payloads: Sequence[PayloadDict]) -> list[PayloadDict]:
        decoded: list[PayloadDict] = []
        for p in payloads:
            if p["metadata"].get("encoding") != b"binary/b64":
                decoded.append(p)
                continue
            decoded.append(
                {
                    "metadata": {"encoding": p["metadata"]["inner"]},
                    "data": base64.b64decode(p["data"]),
                }
            )
        return decoded


def make_workflow_worker(
    client: FakeClient,
    workflows: Sequence[type] = (GreetingWorkflow,),
    *,
    max_cached_workflows: int = 1000,
    debug_mode: bool = False,
) -> WorkflowWorker:
    from cadenza.workflow._definition import _Definition

    definitions = {d.name: d for d in (_Definition.must_from_class(w) for w in workflows)}
    return WorkflowWorker(
        client=client,
        task_queue="q",
        workflows=definitions,
        max_cached_workflows=max_cached_workflows,
        max_concurrent_workflow_tasks=10,
        executor=concurrent.futures.ThreadPoolExecutor(4),
        failure_exception_types=(),
        debug_mode=debug_mode,
        identity=client.identity,
        build_id="",
        on_fatal=lambda exc: None,
    )


def make_activity_worker(
    client: FakeClient,
    activities: Sequence[Callable[..., Any]],
    *,
    executor: concurrent.futures.Executor | None = None,
    default_heartbeat_throttle_interval: timedelta = timedelta(seconds=30),
) -> ActivityWorker:
    import asyncio

    from cadenza.activity._definition import _Definition

    definitions = {d.name: d for d in (_Definition.must_from_callable(a) for a in activities)}
    worker = ActivityWorker(
        client=client,
        task_queue="q",
        activities=definitions,
        activity_executor=executor,
        max_concurrent_activities=10,
        max_heartbeat_throttle_interval=timedelta(seconds=60),
        default_heartbeat_throttle_interval=default_heartbeat_throttle_interval,
        identity=client.identity,
        on_fatal=lambda exc: None,
    )
    worker.bind(asyncio.get_running_loop())
    return worker
