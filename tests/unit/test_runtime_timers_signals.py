"""The workflow runtime: durable timers, signals, queries, wait_condition, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import pytest
from test_runtime_support import PC, FakeEngine, payload, short, value

from cadenza import workflow
from cadenza.common import RawValue
from cadenza.exceptions import ActivityError, is_cancelled_exception
from cadenza.workflow._exceptions import ReadOnlyContextError

TIMEOUT = timedelta(seconds=30)


@workflow.defn
class SleepWorkflow:
    @workflow.run
    async def run(self, how: str) -> float:
        start = workflow.time()
        if how == "workflow.sleep":
            await workflow.sleep(timedelta(minutes=5))
        elif how == "asyncio.sleep":
            await asyncio.sleep(300)
        return workflow.time() - start


@workflow.defn
class WaitForWorkflow:
    @workflow.run
    async def run(self) -> str:
        try:
            await asyncio.wait_for(
                workflow.execute_activity("slow", start_to_close_timeout=TIMEOUT), timeout=10
            )
        except ActivityError as err:
            # As with Temporal, a cancelled activity raises ActivityError (cause
            # CancelledError), which wait_for passes on instead of TimeoutError.
            return "timed out" if is_cancelled_exception(err) else "failed"
        return "finished"


@workflow.defn
class TimeoutBlockWorkflow:
    @workflow.run
    async def run(self) -> str:
        try:
            async with asyncio.timeout(2):
                await asyncio.sleep(100)
        except TimeoutError:
            return "timed out"
        return "finished"


@workflow.defn
class SignalWorkflow:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.done = False

    @workflow.run
    async def run(self) -> list[str]:
        try:
            await workflow.wait_condition(lambda: self.done, timeout=60)
        except TimeoutError:
            self.items.append("timeout")
        return self.items

    @workflow.signal
    def add(self, item: str) -> None:
        self.items.append(item)

    @workflow.signal
    async def finish(self) -> None:
        self.done = True

    @workflow.query
    def count(self) -> int:
        return len(self.items)

    @workflow.query
    def bad(self) -> None:
        workflow.start_activity("x", start_to_close_timeout=TIMEOUT)


@workflow.defn
class DynamicSignalWorkflow:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: len(self.seen) >= 3)
        return self.seen

    @workflow.signal(dynamic=True)
    def anything(self, name: str, args: Sequence[RawValue]) -> None:
        self.seen.append(f"{name}={workflow.payload_converter().from_payload(args[0].payload)}")


@workflow.defn
class LateHandlerWorkflow:
    def __init__(self) -> None:
        self.got: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.sleep(1)
        workflow.set_signal_handler("late", self.got.append)
        await workflow.wait_condition(lambda: len(self.got) >= 2)
        return self.got


@workflow.defn
class CancellableWorkflow:
    @workflow.run
    async def run(self, swallow: bool) -> str:
        try:
            await workflow.execute_activity("long", start_to_close_timeout=TIMEOUT)
        except ActivityError:
            if swallow:
                await workflow.execute_activity("cleanup", start_to_close_timeout=TIMEOUT)
                return "cleaned up"
            raise
        except asyncio.CancelledError:
            if swallow:
                return "cleaned up"
            raise
        return "finished"


@workflow.defn
class SleepCancelWorkflow:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.sleep(100)
        except asyncio.CancelledError:
            return "woken"
        return "slept"


@pytest.mark.parametrize("how", ["workflow.sleep", "asyncio.sleep"])
def test_durable_sleep(how: str) -> None:
    engine = FakeEngine(SleepWorkflow, how)
    result = engine.run_task()
    assert result.commands == [
        (
            "cadenza.command.StartTimer",
            {"timer_id": "1", "start_to_fire_timeout_ms": 300_000},
        )
    ]
    engine.advance(300)
    engine.fire_timer("1")
    result = engine.run_task()
    assert value(result.commands[0][1]["result"]) == 300.0


def test_asyncio_wait_for_timeout_is_a_timer() -> None:
    engine = FakeEngine(WaitForWorkflow)
    result = engine.run_task()
    # wait_for starts its timer, then the activity's task takes its first step.
    assert [short(n) for n, _ in result.commands] == ["StartTimer", "ScheduleActivityTask"]
    assert result.commands[0][1]["start_to_fire_timeout_ms"] == 10_000
    engine.advance(10)
    engine.fire_timer("1")
    result = engine.run_task()
    # The activity is cancelled (TRY_CANCEL), then the workflow returns.
    names = [short(n) for n, _ in result.commands]
    assert names == ["RequestCancelActivityTask", "CompleteWorkflowExecution"]
    assert value(result.commands[-1][1]["result"]) == "timed out"


def test_asyncio_wait_for_finishing_first_cancels_the_timer() -> None:
    engine = FakeEngine(WaitForWorkflow)
    engine.run_task()
    engine.complete_activity("1")
    result = engine.run_task()
    names = [short(n) for n, _ in result.commands]
    assert names == ["CancelTimer", "CompleteWorkflowExecution"]
    assert value(result.commands[-1][1]["result"]) == "finished"


def test_asyncio_timeout_block() -> None:
    engine = FakeEngine(TimeoutBlockWorkflow)
    result = engine.run_task()
    assert [r["start_to_fire_timeout_ms"] for _, r in result.commands] == [2_000, 100_000]
    engine.advance(2)
    engine.fire_timer("1")
    result = engine.run_task()
    assert result.commands[0] == ("cadenza.command.CancelTimer", {"timer_id": "2"})
    assert value(result.commands[-1][1]["result"]) == "timed out"


def test_signals_wait_condition_and_queries() -> None:
    engine = FakeEngine(SignalWorkflow)
    result = engine.run_task()
    assert [short(n) for n, _ in result.commands] == ["StartTimer"]  # the condition's timeout
    engine.signal("add", "a")
    engine.signal("add", "b")
    assert engine.run_task().commands == []
    assert engine.instance is not None
    assert value(engine.instance.query("count", [])) == 2
    with pytest.raises(ReadOnlyContextError):
        engine.instance.query("bad", [])
    with pytest.raises(LookupError, match="count"):
        engine.instance.query("nope", [])
    engine.signal("finish")
    result = engine.run_task()
    names = [short(n) for n, _ in result.commands]
    assert names == ["CancelTimer", "CompleteWorkflowExecution"]
    assert value(result.commands[-1][1]["result"]) == ["a", "b"]


def test_wait_condition_timeout() -> None:
    engine = FakeEngine(SignalWorkflow)
    engine.run_task()
    engine.signal("add", "a")
    engine.advance(60)
    engine.fire_timer("1")
    result = engine.run_task()
    assert value(result.commands[-1][1]["result"]) == ["a", "timeout"]


def test_signal_before_start_is_handled_before_run() -> None:
    engine = FakeEngine(SignalWorkflow)
    engine.signal("add", "early")
    engine.signal("finish")
    result = engine.run_task()
    # The condition is already true: no timer is needed... but asyncio.wait_for
    # still starts and cancels it in the same task, which sends nothing.
    assert [short(n) for n, _ in result.commands] == ["CompleteWorkflowExecution"]
    assert value(result.commands[-1][1]["result"]) == ["early"]


def test_dynamic_signal_handler() -> None:
    engine = FakeEngine(DynamicSignalWorkflow)
    engine.run_task()
    for name, arg in (("x", 1), ("y", 2), ("z", 3)):
        engine.signal(name, arg)
    result = engine.run_task()
    assert value(result.commands[-1][1]["result"]) == ["x=1", "y=2", "z=3"]


def test_signals_without_handler_are_buffered() -> None:
    engine = FakeEngine(LateHandlerWorkflow)
    engine.run_task()
    engine.signal("late", "one")
    engine.signal("late", "two")
    assert engine.run_task().commands == []
    engine.fire_timer("1")
    result = engine.run_task()
    assert value(result.commands[-1][1]["result"]) == ["one", "two"]


def test_cancellation_reraised_cancels_the_workflow() -> None:
    engine = FakeEngine(CancellableWorkflow, False)
    engine.run_task()
    engine.request_cancel()
    result = engine.run_task()
    names = [short(n) for n, _ in result.commands]
    assert names == ["RequestCancelActivityTask", "CancelWorkflowExecution"]
    assert engine.kinds()[-1] == "WorkflowExecutionCanceled"


def test_cancellation_caught_and_completed() -> None:
    engine = FakeEngine(CancellableWorkflow, True)
    engine.run_task()
    engine.request_cancel()
    result = engine.run_task()
    names = [short(n) for n, _ in result.commands]
    assert names == ["RequestCancelActivityTask", "ScheduleActivityTask"]
    assert result.commands[1][1]["activity_type"] == "cleanup"
    engine.complete_activity("2")
    result = engine.run_task()
    assert value(result.commands[-1][1]["result"]) == "cleaned up"


def test_cancelling_a_sleep() -> None:
    engine = FakeEngine(SleepCancelWorkflow)
    engine.run_task()
    engine.request_cancel()
    result = engine.run_task()
    names = [short(n) for n, _ in result.commands]
    assert names == ["CancelTimer", "CompleteWorkflowExecution"]
    assert value(result.commands[-1][1]["result"]) == "woken"


def test_query_payload_arguments() -> None:
    engine = FakeEngine(SignalWorkflow)
    engine.run_task()
    assert engine.instance is not None
    assert PC.from_payloads(engine.instance.query("count", [])) == [0]
    assert payload(1)["data"] == b"1"


def test_stack_trace_query() -> None:
    engine = FakeEngine(SignalWorkflow)
    engine.run_task()
    assert engine.instance is not None
    trace = value(engine.instance.query("__stack_trace", []))
    assert "wait_condition" in trace


def test_a_signal_written_while_a_task_is_out_goes_to_the_next_task() -> None:
    engine = FakeEngine(SignalWorkflow)
    engine.run_task(signal_meanwhile=("add", "late"))
    # History: Scheduled(2), Signaled(3), Started(4), Completed(5), TimerStarted(6).
    assert engine.kinds()[1:6] == [
        "WorkflowTaskScheduled",
        "WorkflowExecutionSignaled",
        "WorkflowTaskStarted",
        "WorkflowTaskCompleted",
        "TimerStarted",
    ]
    assert engine.instance is not None
    assert value(engine.instance.query("count", [])) == 0
    engine.run_task(signal_meanwhile=("finish",))
    assert value(engine.instance.query("count", [])) == 1
    result = engine.run_task()
    assert value(result.commands[-1][1]["result"]) == ["late"]
    # Replay sees each signal where the live run did.
    replay = engine.new_instance()
    assert replay.activate(engine.events).failure is None
    assert replay.pending_commands() == []


@workflow.defn
class WaitForSleep:
    @workflow.run
    async def run(self) -> str:
        try:
            await asyncio.wait_for(asyncio.sleep(100), timeout=5)
        except TimeoutError:
            return "timed out"
        return "slept"


def test_asyncio_wait_for_raises_timeout_error() -> None:
    engine = FakeEngine(WaitForSleep)
    result = engine.run_task()
    assert [r["start_to_fire_timeout_ms"] for _, r in result.commands] == [5_000, 100_000]
    engine.advance(5)
    engine.fire_timer("1")
    result = engine.run_task()
    assert result.commands[0] == ("cadenza.command.CancelTimer", {"timer_id": "2"})
    assert value(result.commands[-1][1]["result"]) == "timed out"
