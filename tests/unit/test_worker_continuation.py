"""Continuing a workflow after an eager activity, without Kafka: the worker's side (the
history it assumes, what it sends, what it does when the engine did not take it). The
engine's side, including that it records the history assumed here, is in
``test_engine_decide.py``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from test_worker_support import (
    TIMEOUT,
    C,
    FakeClient,
    event,
    first_history,
    greet,
    make_workflow_worker,
    payload,
    value_of,
    workflow_task,
)

from cadenza import schemas, workflow
from cadenza.worker._workflow_worker import STICKY_CACHE_MISS_CAUSE, WorkflowWorker, _FollowUp

_TASK = {"task_queue": "q", "start_to_close_timeout_ms": 10_000, "attempt": 1}


@workflow.defn
class TwoGreetings:
    @workflow.run
    async def run(self, name: str) -> list[str]:
        first = await workflow.execute_activity(greet, name, start_to_close_timeout=TIMEOUT)
        second = await workflow.execute_activity(greet, first, start_to_close_timeout=TIMEOUT)
        return [first, second]


def _first_task(worker: WorkflowWorker, client: FakeClient) -> tuple[dict[str, Any], Any]:
    task = workflow_task(first_history("TwoGreetings", "Ada"), workflow_type="TwoGreetings")
    asyncio.run(worker._process(task))
    [(name, schedule)] = client.transport.commands[-1].body["commands"]
    assert name == C + "ScheduleActivityTask"
    return task, schedule


def _continue(worker: WorkflowWorker, task: dict[str, Any], schedule: Any, result: str) -> Any:
    async def go() -> Any:
        return await worker._continue(_FollowUp(task, schedule, [payload(result)]))

    return asyncio.run(go())


def _signalled(schedule: Any) -> list[dict[str, Any]]:
    """Events 4-8 when a signal arrives while the first task's activity runs."""
    scheduled = dict(schedule, workflow_task_completed_event_id=4, eager_execution=True)
    return [
        event(4, "WorkflowTaskCompleted", {"scheduled_event_id": 2, "started_event_id": 3}),
        event(5, "ActivityTaskScheduled", scheduled),
        event(6, "WorkflowExecutionSignaled", {"signal_name": "unknown", "input": []}),
        event(7, "WorkflowTaskScheduled", _TASK),
        event(8, "WorkflowTaskStarted", {"scheduled_event_id": 7}),
    ]


def test_a_continuation_runs_the_next_task_on_the_history_it_would_have() -> None:
    client = FakeClient()
    worker = make_workflow_worker(client, [TwoGreetings])
    task, schedule = _first_task(worker, client)
    before = int(time.time() * 1000)
    continuation = _continue(worker, task, schedule, "Hello, Ada!")
    body = continuation.body
    # Task 3 was started at event 3: 4 completed it, 5 scheduled the activity, 6-7 its
    # attempt, so the continued task is scheduled at 8 and started at 9.
    assert body["completion"]["scheduled_event_id"] == 8
    assert body["completion"]["attempt"] == 1 and body["completion"]["sticky"] is True
    assert before <= body["task_time_ms"] <= int(time.time() * 1000)
    [(name, command)] = body["completion"]["commands"]
    assert name == C + "ScheduleActivityTask"
    assert value_of(command["input"]) == "Hello, Ada!"
    # It fits the wire: the activity worker sends it inside ActivityTaskCompleted.
    answer = {"scheduled_event_id": 0, "attempt": 1, "activity_id": "1", "continuation": body}
    schemas.encode(
        schemas.COMMAND,
        {
            "command_id": "c",
            "workflow_id": "wf-1",
            "run_id": "run-1",
            "sent_time_ms": 0,
            "body": (C + "ActivityTaskCompleted", answer),
        },
    )
    # The engine took it: the next task starts after event 9, the instance goes on.
    scheduled = dict(command, workflow_task_completed_event_id=10, eager_execution=False)
    after = [
        event(10, "WorkflowTaskCompleted", {"scheduled_event_id": 8, "started_event_id": 9}),
        event(11, "ActivityTaskScheduled", scheduled),
        event(12, "ActivityTaskStarted", {"scheduled_event_id": 11, "attempt": 1}),
        event(
            13,
            "ActivityTaskCompleted",
            {
                "result": [payload("Hello, Hello, Ada!!")],
                "scheduled_event_id": 11,
                "started_event_id": 12,
            },
        ),
        event(14, "WorkflowTaskScheduled", _TASK),
        event(15, "WorkflowTaskStarted", {"scheduled_event_id": 14}),
    ]
    asyncio.run(worker._process(workflow_task(after, workflow_type="TwoGreetings")))
    done = client.transport.commands[-1]
    assert done.name == C + "WorkflowTaskCompleted"
    [(name, command)] = done.body["commands"]
    assert name == C + "CompleteWorkflowExecution"
    assert value_of(command["result"]) == ["Hello, Ada!", "Hello, Hello, Ada!!"]
    assert worker.sticky_cache_misses == 0


def test_a_continuation_the_engine_did_not_take_is_replayed() -> None:
    client = FakeClient()
    worker = make_workflow_worker(client, [TwoGreetings])
    task, schedule = _first_task(worker, client)
    assert _continue(worker, task, schedule, "Hello, Ada!") is not None
    # A signal reached the engine first: it recorded the signal and dispatched a task
    # with the events since the first task (4 on), which the instance has run past.
    signalled = _signalled(schedule)
    asyncio.run(worker._process(workflow_task(signalled, workflow_type="TwoGreetings")))
    miss = client.transport.commands[-1]
    assert miss.name == C + "WorkflowTaskFailed"
    assert miss.body["cause"] == STICKY_CACHE_MISS_CAUSE
    # The whole history replays into a new instance: the activity is still open.
    full = first_history("TwoGreetings", "Ada") + signalled
    asyncio.run(worker._process(workflow_task(full, workflow_type="TwoGreetings")))
    done = client.transport.commands[-1]
    assert done.name == C + "WorkflowTaskCompleted" and done.body["commands"] == []


def test_no_continuation_once_the_run_has_moved_on() -> None:
    """A task of the run ran while the activity did (a signal's): the result goes alone."""
    client = FakeClient()
    worker = make_workflow_worker(client, [TwoGreetings])
    task, schedule = _first_task(worker, client)
    signalled = _signalled(schedule)
    asyncio.run(worker._process(workflow_task(signalled, workflow_type="TwoGreetings")))
    assert _continue(worker, task, schedule, "Hello, Ada!") is None
    assert worker.cache.run_ids() == ["run-1"]  # left as it was


def test_a_bug_while_continuing_lets_the_result_go_alone(monkeypatch: Any) -> None:
    """The activity waits on the follow-up's answer: a worker bug must answer None."""
    client = FakeClient()
    worker = make_workflow_worker(client, [TwoGreetings])
    task, schedule = _first_task(worker, client)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr("cadenza.worker._workflow_worker.continuation_history", broken)

    async def go() -> Any:
        item = _FollowUp(task, schedule, [payload("Hello, Ada!")])
        return await worker._continue_or_none(item)  # what the run's queue answers with

    assert asyncio.run(go()) is None
