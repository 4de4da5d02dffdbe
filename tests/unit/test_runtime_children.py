"""The workflow runtime: child workflows, external signals and cancellation, task retries."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from test_runtime_support import FC, PC, FakeEngine, payload, short, value

from cadenza import workflow
from cadenza.exceptions import (
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)
from cadenza.worker import Replayer, WorkflowHistory
from cadenza.workflow._runtime import StaleInstanceError

TIMEOUT = timedelta(seconds=30)


@workflow.defn
class Child:
    @workflow.run
    async def run(self, x: int) -> int:
        return x * 2


@workflow.defn
class Parent:
    @workflow.run
    async def run(self) -> str:
        handle = await workflow.start_child_workflow(Child.run, 21, id="child-1")
        await handle.signal("poke", "hi")
        try:
            return f"child said {await handle}"
        except ChildWorkflowError as err:
            return f"child failed: {type(err.cause).__name__}: {err.cause}"


@workflow.defn
class DuplicateParent:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.start_child_workflow("Child", 1, id="taken")
        except WorkflowAlreadyStartedError as err:
            return f"already started: {err.workflow_id}"
        return "started"


@workflow.defn
class CancelChildParent:
    @workflow.run
    async def run(self) -> str:
        handle = await workflow.start_child_workflow("Child", 1, id="child-1")
        handle.cancel()
        try:
            await handle
        except ChildWorkflowError as err:
            return f"cancelled: {isinstance(err.cause, CancelledError)}"
        return "finished"


@workflow.defn
class Messenger:
    @workflow.run
    async def run(self) -> str:
        other = workflow.get_external_workflow_handle("other-wf")
        await other.signal("hello", "there")
        try:
            await other.cancel()
        except ApplicationError as err:
            return f"cancel failed: {err.type}"
        return "sent"


@workflow.defn
class Flaky:
    attempts = 0

    @workflow.run
    async def run(self) -> str:
        workflow.logger.info("running")
        Flaky.attempts += 1
        if Flaky.attempts == 1:
            raise RuntimeError("transient bug")
        await workflow.execute_activity("work", start_to_close_timeout=TIMEOUT)
        return f"replaying={workflow.unsafe.is_replaying()}"


def child_started(engine: FakeEngine, workflow_id: str, run_id: str = "child-run") -> None:
    engine.add(
        "ChildWorkflowExecutionStarted",
        {
            "workflow_id": workflow_id,
            "run_id": run_id,
            "workflow_type": "Child",
            "initiated_event_id": engine.children[workflow_id],
        },
    )


def child_closed(engine: FakeEngine, kind: str, workflow_id: str, **extra: object) -> None:
    engine.add(
        kind,
        {
            "workflow_id": workflow_id,
            "run_id": "child-run",
            "workflow_type": "Child",
            "initiated_event_id": engine.children[workflow_id],
            "started_event_id": 0,
            **extra,
        },
    )


def test_child_workflow_start_signal_and_result() -> None:
    engine = FakeEngine(Parent)
    result = engine.run_task()
    name, record = result.commands[0]
    assert short(name) == "StartChildWorkflowExecution"
    assert (record["workflow_id"], record["workflow_type"]) == ("child-1", "Child")
    assert record["parent_close_policy"] == "TERMINATE" and value(record["input"]) == 21
    child_started(engine, "child-1")
    result = engine.run_task()
    name, record = result.commands[0]
    assert short(name) == "SignalExternalWorkflowExecution"
    assert record["child_workflow_only"] and record["signal_name"] == "poke"
    engine.add(
        "ExternalWorkflowExecutionSignaled",
        {"initiated_event_id": engine.externals[0], "workflow_id": "child-1"},
    )
    assert engine.run_task().commands == []
    child_closed(engine, "ChildWorkflowExecutionCompleted", "child-1", result=[payload(42)])
    result = engine.run_task()
    assert value(result.commands[-1][1]["result"]) == "child said 42"
    asyncio.run(
        Replayer(workflows=[Parent]).replay_workflow(WorkflowHistory("wf-1", engine.events))
    )


def test_child_workflow_failure() -> None:
    engine = FakeEngine(Parent)
    engine.run_task()
    child_started(engine, "child-1")
    engine.run_task()
    engine.add(
        "ExternalWorkflowExecutionSignaled",
        {"initiated_event_id": engine.externals[0], "workflow_id": "child-1"},
    )
    failure = FC.to_failure(ApplicationError("boom", type="Boom"), PC)
    child_closed(engine, "ChildWorkflowExecutionFailed", "child-1", failure=failure)
    result = engine.run_task()
    assert value(result.commands[-1][1]["result"]) == "child failed: ApplicationError: Boom: boom"


def test_child_workflow_already_started() -> None:
    engine = FakeEngine(DuplicateParent)
    engine.run_task()
    engine.add(
        "StartChildWorkflowExecutionFailed",
        {
            "workflow_id": "taken",
            "workflow_type": "Child",
            "cause": "WORKFLOW_ALREADY_EXISTS",
            "initiated_event_id": engine.children["taken"],
            "workflow_task_completed_event_id": 4,
        },
    )
    result = engine.run_task()
    assert value(result.commands[-1][1]["result"]) == "already started: taken"


def test_cancelling_a_child_waits_for_it_to_close() -> None:
    engine = FakeEngine(CancelChildParent)
    engine.run_task()
    child_started(engine, "child-1")
    result = engine.run_task()
    name, record = result.commands[0]
    assert short(name) == "RequestCancelExternalWorkflowExecution"
    assert record["workflow_id"] == "child-1" and record["child_workflow_only"]
    engine.add(
        "ExternalWorkflowExecutionCancelRequested",
        {"initiated_event_id": engine.externals[0], "workflow_id": "child-1"},
    )
    assert engine.run_task().commands == []
    child_closed(engine, "ChildWorkflowExecutionCanceled", "child-1")
    result = engine.run_task()
    assert value(result.commands[-1][1]["result"]) == "cancelled: True"


def test_external_signal_and_failed_cancel() -> None:
    engine = FakeEngine(Messenger)
    result = engine.run_task()
    assert [short(n) for n, _ in result.commands] == ["SignalExternalWorkflowExecution"]
    engine.add(
        "ExternalWorkflowExecutionSignaled",
        {"initiated_event_id": engine.externals[0], "workflow_id": "other-wf"},
    )
    result = engine.run_task()
    assert [short(n) for n, _ in result.commands] == ["RequestCancelExternalWorkflowExecution"]
    engine.add(
        "RequestCancelExternalWorkflowExecutionFailed",
        {
            "cause": "EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND",
            "initiated_event_id": engine.externals[1],
            "workflow_id": "other-wf",
            "workflow_task_completed_event_id": 0,
        },
    )
    result = engine.run_task()
    assert value(result.commands[-1][1]["result"]) == (
        "cancel failed: ExternalWorkflowExecutionNotFound"
    )


def test_failed_task_is_retried_by_a_new_instance(caplog: pytest.LogCaptureFixture) -> None:
    Flaky.attempts = 0
    engine = FakeEngine(Flaky, always_replay=False)
    caplog.set_level(logging.INFO, logger="cadenza.workflow")
    result = engine.run_task()
    assert result.failure is not None and "transient bug" in str(result.failure.error)
    assert engine.instance is not None
    with pytest.raises(StaleInstanceError):
        engine.instance.activate([])
    # The engine schedules another attempt; the worker replays into a new instance.
    engine.instance = engine.new_instance()
    engine.delivered = 0
    result = engine.run_task()
    assert [short(n) for n, _ in result.commands] == ["ScheduleActivityTask"]
    engine.complete_activity("1")
    result = engine.run_task()
    assert value(result.commands[-1][1]["result"]) == "replaying=False"
    assert len([r for r in caplog.records if r.getMessage().startswith("running")]) == 2

    # Replayed from scratch, the logger stays silent and is_replaying() is true.
    caplog.clear()
    asyncio.run(Replayer(workflows=[Flaky]).replay_workflow(WorkflowHistory("wf-1", engine.events)))
    assert [r for r in caplog.records if r.getMessage().startswith("running")] == []


@pytest.mark.parametrize(
    ("kind", "cause"),
    [
        ("ChildWorkflowExecutionTimedOut", "TimeoutError"),
        ("ChildWorkflowExecutionTerminated", "TerminatedError"),
        ("ChildWorkflowExecutionCanceled", "CancelledError"),
    ],
)
def test_child_workflow_closing_without_a_result(kind: str, cause: str) -> None:
    engine = FakeEngine(Parent)
    engine.run_task()
    child_started(engine, "child-1")
    engine.run_task()
    engine.add(
        "ExternalWorkflowExecutionSignaled",
        {"initiated_event_id": engine.externals[0], "workflow_id": "child-1"},
    )
    child_closed(engine, kind, "child-1")
    result = engine.run_task()
    text = value(result.commands[-1][1]["result"])
    assert text.startswith(f"child failed: {cause}: ")
