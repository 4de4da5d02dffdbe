"""The workflow runtime: activities, completion, failure, replay, non-determinism."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from test_runtime_support import FC, PC, FakeEngine, short, value

from cadenza import activity, workflow
from cadenza.exceptions import ActivityError, ApplicationError, CancelledError, TimeoutType
from cadenza.exceptions import TimeoutError as CadenzaTimeoutError
from cadenza.workflow._definition import _Definition
from cadenza.workflow._runtime import NONDETERMINISM_CAUSE, UNHANDLED_FAILURE_CAUSE

TIMEOUT = timedelta(seconds=30)


@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}!"


@workflow.defn
class HelloWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(greet, name, start_to_close_timeout=TIMEOUT)


@workflow.defn
class GatherWorkflow:
    @workflow.run
    async def run(self) -> list[str]:
        first = workflow.execute_activity("one", start_to_close_timeout=TIMEOUT, result_type=str)
        second = workflow.execute_activity("two", start_to_close_timeout=TIMEOUT, result_type=str)
        return list(await asyncio.gather(first, second))


@workflow.defn
class CatchingWorkflow:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.execute_activity("charge", start_to_close_timeout=TIMEOUT)
        except ActivityError as err:
            assert isinstance(err.cause, ApplicationError)
            return f"caught {err.cause.type}: {err.cause.message} ({err.activity_type})"
        return "not reached"


@workflow.defn
class FailingWorkflow:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity("charge", start_to_close_timeout=TIMEOUT)


@workflow.defn
class BuggyWorkflow:
    @workflow.run
    async def run(self) -> None:
        raise KeyError("a bug")


@workflow.defn
class BadActivityWorkflow:
    """The same type name as HelloWorkflow's history but schedules another activity."""

    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity("farewell", name, start_to_close_timeout=TIMEOUT)


@workflow.defn
class InfoWorkflow:
    @workflow.run
    async def run(self) -> dict[str, object]:
        first = workflow.now()
        rnd = workflow.random().random()
        uid = str(workflow.uuid4())
        await workflow.execute_activity("tick", start_to_close_timeout=TIMEOUT)
        return {
            "elapsed": (workflow.now() - first).total_seconds(),
            "rnd": rnd,
            "uid": uid,
            "id": workflow.info().workflow_id,
            "type": workflow.info().workflow_type,
        }


@workflow.defn
class CancelActivityWorkflow:
    @workflow.run
    async def run(self, kind: int) -> str:
        handle = workflow.start_activity(
            "slow",
            start_to_close_timeout=TIMEOUT,
            cancellation_type=workflow.ActivityCancellationType(kind),
        )
        await workflow.sleep(1)
        handle.cancel()
        try:
            await handle
        except ActivityError as err:
            assert isinstance(err.cause, CancelledError)
            return "cancelled"
        return "done"


def test_hello_activity() -> None:
    engine = FakeEngine(HelloWorkflow, "Ada")
    result = engine.run_task()
    assert [short(n) for n, _ in result.commands] == ["ScheduleActivityTask"]
    record = result.commands[0][1]
    assert record["activity_type"] == "greet" and record["activity_id"] == "1"
    assert record["task_queue"] == "q" and record["start_to_close_timeout_ms"] == 30_000
    assert value(record["input"]) == "Ada"

    engine.complete_activity("1", "Hello, Ada!")
    result = engine.run_task()
    assert [short(n) for n, _ in result.commands] == ["CompleteWorkflowExecution"]
    assert value(result.commands[0][1]["result"]) == "Hello, Ada!"
    assert result.completed
    assert engine.kinds()[-1] == "WorkflowExecutionCompleted"


def test_two_activities_with_gather() -> None:
    engine = FakeEngine(GatherWorkflow)
    result = engine.run_task()
    assert [r["activity_id"] for _, r in result.commands] == ["1", "2"]
    assert [r["activity_type"] for _, r in result.commands] == ["one", "two"]
    engine.complete_activity("2", "b")
    assert engine.run_task().commands == []
    engine.complete_activity("1", "a")
    result = engine.run_task()
    assert value(result.commands[0][1]["result"]) == ["a", "b"]


def test_activity_failure_is_caught() -> None:
    engine = FakeEngine(CatchingWorkflow)
    engine.run_task()
    engine.fail_activity("1", ApplicationError("declined", type="CardError", non_retryable=True))
    result = engine.run_task()
    assert value(result.commands[0][1]["result"]) == "caught CardError: declined (charge)"


def test_activity_failure_fails_the_workflow_with_the_cause_chain() -> None:
    engine = FakeEngine(FailingWorkflow)
    engine.run_task()
    engine.fail_activity("1", ApplicationError("declined", type="CardError"))
    result = engine.run_task()
    name, record = result.commands[0]
    assert short(name) == "FailWorkflowExecution"
    error = FC.from_failure(record["failure"], PC)
    assert isinstance(error, ActivityError) and error.activity_id == "1"
    assert isinstance(error.cause, ApplicationError) and error.cause.type == "CardError"
    assert engine.kinds()[-1] == "WorkflowExecutionFailed"


def test_other_exceptions_fail_the_task_not_the_workflow() -> None:
    engine = FakeEngine(BuggyWorkflow)
    result = engine.run_task()
    assert result.commands == [] and result.failure is not None
    assert result.failure.cause == UNHANDLED_FAILURE_CAUSE
    assert isinstance(result.failure.error, KeyError)
    assert engine.kinds()[-1] == "WorkflowTaskFailed"


def test_workflow_time_random_and_ids_are_deterministic() -> None:
    engine = FakeEngine(InfoWorkflow)
    engine.run_task()
    engine.advance(5)
    engine.complete_activity("1")
    result = engine.run_task()
    answer = value(result.commands[0][1]["result"])
    assert answer["elapsed"] == 5.0 and answer["id"] == "wf-1" and answer["type"] == "InfoWorkflow"

    # A fresh instance replaying the same history computes the same values.
    replay = engine.new_instance()
    replay.activate(engine.events)
    assert replay.pending_commands() == []
    again = FakeEngine(InfoWorkflow)
    again.run_task()
    again.complete_activity("1")
    other = value(again.run_task().commands[0][1]["result"])
    assert (other["rnd"], other["uid"]) == (answer["rnd"], answer["uid"])


def test_replay_in_a_new_instance_continues_live() -> None:
    engine = FakeEngine(HelloWorkflow, "Ada")
    engine.run_task()
    engine.complete_activity("1", "Hello, Ada!")
    engine.schedule_task()
    # The worker lost its cache: a new instance gets the whole history.
    engine.instance = engine.new_instance()
    engine.delivered = 0
    result = engine.run_task()
    assert [short(n) for n, _ in result.commands] == ["CompleteWorkflowExecution"]


def test_a_changed_activity_is_a_nondeterminism_error() -> None:
    engine = FakeEngine(HelloWorkflow, "Ada")
    engine.run_task()
    engine.complete_activity("1", "Hello, Ada!")
    engine.schedule_task()
    engine.definition = _Definition.must_from_class(BadActivityWorkflow)
    engine.instance = engine.new_instance()
    engine.delivered = 0
    result = engine.run_task()
    assert result.failure is not None and result.failure.cause == NONDETERMINISM_CAUSE
    message = str(result.failure.error)
    assert "event 5" in message
    assert "ActivityTaskScheduled(activity_id='1', activity_type='greet')" in message
    assert "ScheduleActivityTask(activity_id='1', activity_type='farewell')" in message


@pytest.mark.parametrize(
    ("kind", "commands_after_cancel", "needs_event"),
    [
        (workflow.ActivityCancellationType.TRY_CANCEL, ["RequestCancelActivityTask"], False),
        (
            workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            ["RequestCancelActivityTask"],
            True,
        ),
        (workflow.ActivityCancellationType.ABANDON, [], False),
    ],
)
def test_activity_cancellation_types(
    kind: workflow.ActivityCancellationType, commands_after_cancel: list[str], needs_event: bool
) -> None:
    engine = FakeEngine(CancelActivityWorkflow, int(kind))
    result = engine.run_task()
    assert [short(n) for n, _ in result.commands] == ["ScheduleActivityTask", "StartTimer"]
    engine.fire_timer("1")
    result = engine.run_task()
    names = [short(n) for n, _ in result.commands]
    if needs_event:
        assert names == commands_after_cancel
        engine.cancel_activity("1")
        result = engine.run_task()
        names = [short(n) for n, _ in result.commands]
        assert names == ["CompleteWorkflowExecution"]
    else:
        assert names == [*commands_after_cancel, "CompleteWorkflowExecution"]
    assert value(result.commands[-1][1]["result"]) == "cancelled"


@workflow.defn(failure_exception_types=[ValueError])
class InitWorkflow:
    @workflow.init
    def __init__(self, x: int) -> None:
        self.x = x

    @workflow.run
    async def run(self, x: int) -> None:
        raise ValueError(f"bad {self.x + x}")


def test_init_arguments_and_failure_exception_types() -> None:
    engine = FakeEngine(InitWorkflow, 2)
    result = engine.run_task()
    name, record = result.commands[0]
    assert short(name) == "FailWorkflowExecution"
    error = FC.from_failure(record["failure"], PC)
    assert isinstance(error, ApplicationError)
    assert (error.type, error.message) == ("ValueError", "bad 4")


def test_activity_timeout() -> None:
    engine = FakeEngine(FailingWorkflow)
    engine.run_task()
    timeout = CadenzaTimeoutError(
        "activity timed out", type=TimeoutType.START_TO_CLOSE, last_heartbeat_details=[]
    )
    engine.add(
        "ActivityTaskTimedOut",
        {
            "failure": FC.to_failure(timeout, PC),
            "scheduled_event_id": engine.activities["1"],
            "started_event_id": 0,
            "retry_state": "TIMEOUT",
        },
    )
    result = engine.run_task()
    error = FC.from_failure(result.commands[0][1]["failure"], PC)
    assert isinstance(error, ActivityError) and error.message == "Activity task timed out"
    assert isinstance(error.cause, CadenzaTimeoutError)
    assert error.cause.type is TimeoutType.START_TO_CLOSE


@workflow.defn
class CancelAtOnce:
    @workflow.run
    async def run(self) -> str:
        handle = workflow.start_activity("never", start_to_close_timeout=TIMEOUT)
        handle.cancel()
        try:
            await handle
        except asyncio.CancelledError:
            return "cancelled"
        return "done"


def test_cancelling_an_activity_before_it_is_sent_drops_it() -> None:
    engine = FakeEngine(CancelAtOnce)
    result = engine.run_task()
    assert [short(n) for n, _ in result.commands] == ["CompleteWorkflowExecution"]
    assert value(result.commands[0][1]["result"]) == "cancelled"
