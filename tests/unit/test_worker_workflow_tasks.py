"""The workflow half of the worker, without Kafka: tasks in, commands and replies out."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest
from test_worker_support import (
    Base64Codec,
    C,
    FakeClient,
    after_activity,
    first_history,
    make_workflow_worker,
    payload,
    query_request,
    value_of,
    workflow_task,
)

from cadenza import workflow
from cadenza.converter import DataConverter
from cadenza.worker import _workflow_worker
from cadenza.worker._workflow_worker import STICKY_CACHE_MISS_CAUSE, WorkflowWorker


def run(worker: WorkflowWorker, *tasks: dict[str, Any]) -> None:
    async def scenario() -> None:
        for task in tasks:
            await worker._process(task)

    asyncio.run(scenario())


def test_first_task_schedules_the_activity_and_caches_the_run() -> None:
    client = FakeClient()
    worker = make_workflow_worker(client)
    run(worker, workflow_task(first_history("GreetingWorkflow", "Ada")))
    [sent] = client.transport.commands
    assert (sent.name, sent.workflow_id, sent.run_id) == (
        C + "WorkflowTaskCompleted",
        "wf-1",
        "run-1",
    )
    assert sent.body["scheduled_event_id"] == 2 and sent.body["attempt"] == 1
    assert sent.body["identity"] == "test-worker" and sent.body["sticky"] is True
    [(name, command)] = sent.body["commands"]
    assert name == C + "ScheduleActivityTask"
    assert command["activity_type"] == "greet" and value_of(command["input"]) == "Ada"
    assert worker.cache.run_ids() == ["run-1"]


def test_sticky_task_completes_the_workflow_and_evicts_it() -> None:
    client = FakeClient()
    worker = make_workflow_worker(client)
    run(worker, workflow_task(first_history("GreetingWorkflow", "Ada")))
    schedule = client.transport.commands[0].body["commands"][0][1]
    run(worker, workflow_task(after_activity(schedule, "Hello, Ada!")))
    done = client.transport.commands[1]
    assert done.body["scheduled_event_id"] == 8
    [(name, command)] = done.body["commands"]
    assert name == C + "CompleteWorkflowExecution"
    assert value_of(command["result"]) == "Hello, Ada!"
    assert done.body["sticky"] is False  # the run is over: not kept
    assert len(worker.cache) == 0


def test_sticky_cache_miss_then_full_history() -> None:
    client = FakeClient()
    first = make_workflow_worker(client)
    run(first, workflow_task(first_history("GreetingWorkflow", "Ada")))
    schedule = client.transport.commands[0].body["commands"][0][1]

    # Another worker (empty cache) gets only the new events: it asks for everything.
    other_client = FakeClient()
    other = make_workflow_worker(other_client)
    new_events = after_activity(schedule, "Hello, Ada!")
    run(other, workflow_task(new_events))
    [miss] = other_client.transport.commands
    assert miss.name == C + "WorkflowTaskFailed"
    assert miss.body["cause"] == STICKY_CACHE_MISS_CAUSE
    assert miss.body["scheduled_event_id"] == 8
    assert "not in this worker's cache" in miss.body["failure"]["message"]

    # The engine sends the same task with the whole history: it replays and completes.
    full = first_history("GreetingWorkflow", "Ada") + new_events
    run(other, workflow_task(full))
    done = other_client.transport.commands[1]
    assert done.name == C + "WorkflowTaskCompleted"
    assert done.body["commands"][0][0] == C + "CompleteWorkflowExecution"


def test_no_cache_means_not_sticky() -> None:
    client = FakeClient()
    worker = make_workflow_worker(client, max_cached_workflows=0)
    run(worker, workflow_task(first_history("GreetingWorkflow", "Ada")))
    assert client.transport.commands[0].body["sticky"] is False
    assert len(worker.cache) == 0


def test_lru_eviction_across_runs() -> None:
    client = FakeClient()
    worker = make_workflow_worker(client, max_cached_workflows=1)
    ids_a = {"workflow_id": "wf-a", "run_id": "run-a"}
    ids_b = {"workflow_id": "wf-b", "run_id": "run-b"}
    run(worker, workflow_task(first_history("GreetingWorkflow", "A", **ids_a), **ids_a))
    run(worker, workflow_task(first_history("GreetingWorkflow", "B", **ids_b), **ids_b))
    assert worker.cache.run_ids() == ["run-b"]
    # run-a was evicted: its next sticky task is a cache miss.
    schedule = client.transport.commands[0].body["commands"][0][1]
    run(worker, workflow_task(after_activity(schedule, "x", **ids_a), **ids_a))
    assert client.transport.commands[-1].body["cause"] == STICKY_CACHE_MISS_CAUSE


def test_a_stale_cached_instance_is_replaced_by_a_full_replay() -> None:
    client = FakeClient()
    worker = make_workflow_worker(client)
    history = first_history("GreetingWorkflow", "Ada")
    run(worker, workflow_task(history))
    # The completion was not accepted: the task timed out and was retried.
    timed_out = workflow_task(
        [
            *history,
            *[
                e
                for e in _events(
                    (
                        4,
                        "WorkflowTaskTimedOut",
                        {
                            "scheduled_event_id": 2,
                            "started_event_id": 3,
                            "timeout_type": "START_TO_CLOSE",
                        },
                    ),
                    (5, "WorkflowTaskScheduled", _scheduled(2)),
                    (6, "WorkflowTaskStarted", {"scheduled_event_id": 5}),
                )
            ],
        ]
    )
    run(worker, timed_out)
    retried = client.transport.commands[1]
    assert retried.name == C + "WorkflowTaskCompleted"
    assert retried.body["scheduled_event_id"] == 5
    assert retried.body["commands"][0][0] == C + "ScheduleActivityTask"


def _scheduled(attempt: int) -> dict[str, Any]:
    return {"task_queue": "q", "start_to_close_timeout_ms": 10_000, "attempt": attempt}


def _events(*specs: tuple[int, str, dict[str, Any]]) -> list[dict[str, Any]]:
    from test_worker_support import event

    return [event(event_id, kind, attributes) for event_id, kind, attributes in specs]


def test_unknown_workflow_type_fails_the_task() -> None:
    client = FakeClient()
    worker = make_workflow_worker(client)
    run(worker, workflow_task(first_history("Nope"), workflow_type="Nope"))
    [failed] = client.transport.commands
    assert failed.name == C + "WorkflowTaskFailed"
    assert failed.body["cause"] == "WORKFLOW_WORKER_UNHANDLED_FAILURE"
    message = failed.body["failure"]["message"]
    assert "Nope is not registered on this worker" in message and "GreetingWorkflow" in message
    assert failed.body["failure"]["info"][1]["type"] == "NotFoundError"


@workflow.defn
class BrokenWorkflow:
    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("bug in workflow code")


def test_task_failure_drops_the_instance() -> None:
    client = FakeClient()
    worker = make_workflow_worker(client, [BrokenWorkflow])
    run(worker, workflow_task(first_history("BrokenWorkflow"), workflow_type="BrokenWorkflow"))
    [failed] = client.transport.commands
    assert failed.name == C + "WorkflowTaskFailed"
    assert failed.body["cause"] == "WORKFLOW_WORKER_UNHANDLED_FAILURE"
    assert "bug in workflow code" in failed.body["failure"]["message"]
    assert len(worker.cache) == 0


@workflow.defn
class SleepyWorkflow:
    @workflow.run
    async def run(self) -> None:
        time.sleep(0.5)  # blocking: not allowed in workflow code


def test_deadlock_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_workflow_worker, "DEADLOCK_TIMEOUT_SECONDS", 0.1)
    client = FakeClient()
    worker = make_workflow_worker(client, [SleepyWorkflow])
    run(worker, workflow_task(first_history("SleepyWorkflow"), workflow_type="SleepyWorkflow"))
    [failed] = client.transport.commands
    assert failed.name == C + "WorkflowTaskFailed"
    assert "[TMPRL1101] Potential deadlock detected" in failed.body["failure"]["message"]
    # debug_mode waits as long as it takes.
    debug_client = FakeClient()
    debug = make_workflow_worker(debug_client, [SleepyWorkflow], debug_mode=True)
    run(debug, workflow_task(first_history("SleepyWorkflow"), workflow_type="SleepyWorkflow"))
    assert debug_client.transport.commands[0].name == C + "WorkflowTaskCompleted"


def test_query_task_replays_the_history() -> None:
    client = FakeClient()
    worker = make_workflow_worker(client)
    query = query_request("current_status")
    run(worker, workflow_task(first_history("GreetingWorkflow", "Ada"), query=query))
    assert client.transport.commands == []  # a query task sends no command
    [(reply_to, reply)] = client.transport.replies
    assert reply_to == query["reply_to"]
    assert reply["request_id"] == query["reply_to"]["request_id"]
    name, body = reply["body"]
    assert name == "cadenza.reply.QueryResult" and body["failure"] is None
    assert body["query_id"] == query["query_id"]
    assert value_of(body["result"]) == "greeting"
    assert len(worker.cache) == 0  # a query's replay is not cached


def test_query_task_uses_an_up_to_date_cached_instance() -> None:
    client = FakeClient()
    worker = make_workflow_worker(client)
    history = first_history("GreetingWorkflow", "Ada")
    run(worker, workflow_task(history))
    cached = worker.cache.peek("run-1")
    assert cached is not None
    run(worker, workflow_task(history, query=query_request("current_status")))
    assert value_of(client.transport.replies[0][1]["body"][1]["result"]) == "greeting"
    assert worker.cache.peek("run-1") is cached


def test_failed_query_answers_with_a_failure() -> None:
    client = FakeClient()
    worker = make_workflow_worker(client)
    run(
        worker,
        workflow_task(first_history("GreetingWorkflow", "Ada"), query=query_request("nope")),
    )
    [(_, reply)] = client.transport.replies
    body = reply["body"][1]
    assert body["result"] == [] and body["failure"] is not None
    assert "nope" in body["failure"]["message"]


def test_codec_decodes_history_and_encodes_commands() -> None:
    codec = Base64Codec()
    converter = dataclasses.replace(DataConverter.default, payload_codec=codec)
    client = FakeClient(data_converter=converter)
    worker = make_workflow_worker(client)
    history = first_history("GreetingWorkflow", "Ada")
    # Encode the start input as a client with this codec would have.
    encoded = asyncio.run(codec.encode([payload("Ada")]))
    started = dict(history[0])
    attributes = dict(started["attributes"][1], input=encoded)
    started["attributes"] = (started["attributes"][0], attributes)
    run(worker, workflow_task([started, *history[1:]]))
    command = client.transport.commands[0].body["commands"][0][1]
    assert command["input"][0]["metadata"]["encoding"] == b"binary/b64"
    assert value_of(asyncio.run(codec.decode(command["input"]))) == "Ada"


def test_a_redelivered_task_is_not_answered_twice() -> None:
    client = FakeClient()
    worker = make_workflow_worker(client)
    task = workflow_task(first_history("GreetingWorkflow", "Ada"))
    run(worker, task, task)
    assert len(client.transport.commands) == 1


def _kind_events(*kinds: str, first_id: int = 1) -> list[dict[str, Any]]:
    return [
        {"event_id": first_id + n, "attributes": (f"cadenza.history.{kind}", {})}
        for n, kind in enumerate(kinds)
    ]


@pytest.mark.parametrize(
    ("kinds", "seen", "answer"),
    [
        # The instance saw events 1-3 (its task's WorkflowTaskStarted is event 3).
        (["WorkflowTaskCompleted"], 3, True),
        (["WorkflowTaskCompleted", "TimerStarted", "ActivityTaskScheduled"], 3, True),
        ([], 3, True),  # nothing new
        (["WorkflowTaskCompleted", "WorkflowExecutionSignaled"], 3, False),
        (["WorkflowTaskCompleted", "TimerStarted", "WorkflowTaskScheduled"], 3, False),
        (["TimerStarted"], 3, False),  # not after this instance's completion
        (["WorkflowTaskFailed"], 3, False),
    ],
)
def test_a_query_reads_the_cached_instance_only_after_its_own_completion(
    kinds: list[str], seen: int, answer: bool
) -> None:
    start = ["WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted"]
    history = _kind_events(*start, *kinds)
    assert _workflow_worker._only_its_own_completion(history, seen) is answer


def test_a_query_replays_when_the_history_does_not_reach_back_to_the_instance() -> None:
    history = _kind_events("WorkflowTaskCompleted", "TimerStarted", first_id=10)
    assert _workflow_worker._only_its_own_completion(history, 3) is False
    # An instance ahead of the history (it ran a continuation): its state is newer.
    assert _workflow_worker._only_its_own_completion(history, 11) is True
    assert _workflow_worker._only_its_own_completion(history, 20) is True
