"""The deterministic event loop under asyncio's own primitives, and the worker contract."""

from __future__ import annotations

import asyncio
import contextlib
import doctest
import importlib
import pkgutil
import warnings
from datetime import timedelta

import pytest
from test_runtime_support import FakeEngine, payload, short, value

import cadenza.worker
from cadenza import workflow
from cadenza.workflow._runtime import StaleInstanceError

TIMEOUT = timedelta(seconds=30)


@workflow.defn
class Primitives:
    @workflow.run
    async def run(self) -> list[object]:
        loop = asyncio.get_running_loop()
        out: list[object] = [loop.time() == workflow.time()]

        async def tick(n: int) -> int:
            await asyncio.sleep(0)
            return n

        out.append(await asyncio.gather(tick(1), tick(2), tick(3)))
        out.append(await asyncio.shield(asyncio.ensure_future(tick(4))))
        tasks = [asyncio.create_task(tick(5)), asyncio.create_task(tick(6))]
        done, _ = await asyncio.wait(tasks)
        out.append(sorted(t.result() for t in done))
        async with asyncio.TaskGroup() as group:
            grouped = group.create_task(tick(7))
        out.append(grouped.result())
        done_list, pending = await workflow.wait(
            [asyncio.create_task(workflow.sleep(50))], timeout=5
        )
        out.append((len(done_list), len(pending)))
        for task in pending:
            task.cancel()
        return out


@workflow.defn
class Order:
    """Callbacks and tasks run in the order they were scheduled."""

    @workflow.run
    async def run(self) -> list[str]:
        seen: list[str] = []

        async def worker(name: str) -> None:
            for i in range(2):
                seen.append(f"{name}{i}")
                await asyncio.sleep(0)

        await asyncio.gather(*(worker(n) for n in "abc"))
        return seen


@workflow.defn
class Admitted:
    def __init__(self) -> None:
        self.total = 0

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.total >= 3)
        return self.total

    @workflow.update
    def add(self, n: int) -> int:
        self.total += n
        return self.total


@workflow.defn
class Abandoning:
    @workflow.run
    async def run(self) -> None:
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: False, timeout=1)

    @workflow.update
    async def hang(self) -> None:
        await workflow.wait_condition(lambda: False)


def test_asyncio_primitives_on_the_workflow_loop() -> None:
    engine = FakeEngine(Primitives)
    result = engine.run_task()
    # workflow.wait's timeout and the sleep are two durable timers.
    assert [r["start_to_fire_timeout_ms"] for _, r in result.commands] == [5_000, 50_000]
    engine.advance(5)
    engine.fire_timer("1")
    result = engine.run_task()
    # The sleep's cancellation runs after the workflow returned: nothing follows the close.
    assert [short(n) for n, _ in result.commands] == ["CompleteWorkflowExecution"]
    assert value(result.commands[-1][1]["result"]) == [True, [1, 2, 3], 4, [5, 6], 7, [0, 1]]


def test_ready_callbacks_run_in_fifo_order() -> None:
    engine = FakeEngine(Order)
    result = engine.run_task()
    assert value(result.commands[-1][1]["result"]) == ["a0", "b0", "c0", "a1", "b1", "c1"]


def test_update_admitted_by_a_history_event() -> None:
    engine = FakeEngine(Admitted)
    engine.run_task()
    engine.add(
        "WorkflowExecutionUpdateAdmitted",
        {"request": {"update_id": "u1", "name": "add", "args": [payload(3)]}},
    )
    engine.updates["u1"] = {"update_id": "u1", "name": "add", "args": [payload(3)]}
    result = engine.run_task()
    names = [short(n) for n, _ in result.commands]
    assert names == ["AcceptUpdate", "CompleteUpdate", "CompleteWorkflowExecution"]
    # Replayed from scratch: the admission event delivers it once, without a second accept.
    replay = engine.new_instance()
    assert replay.activate(engine.events).failure is None
    assert replay.pending_commands() == []


def test_unfinished_update_handlers_warn() -> None:
    engine = FakeEngine(Abandoning)
    engine.run_task()
    engine.run_task(updates=[{"update_id": "u1", "name": "hang"}])
    engine.fire_timer("1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = engine.run_task()
    assert [short(n) for n, _ in result.commands] == ["CompleteWorkflowExecution"]
    assert any(issubclass(w.category, workflow.UnfinishedUpdateHandlersWarning) for w in caught)


def test_a_rejected_completion_makes_the_instance_stale() -> None:
    engine = FakeEngine(Admitted)
    engine.schedule_task()
    assert engine.instance is not None
    engine.instance.activate(engine.events)
    # The engine timed the task out instead of accepting the completion.
    engine.add("WorkflowTaskStarted", {"scheduled_event_id": 2})
    engine.add(
        "WorkflowTaskTimedOut",
        {"scheduled_event_id": 2, "started_event_id": 3, "timeout_type": "START_TO_CLOSE"},
    )
    with pytest.raises(StaleInstanceError, match="not accepted"):
        engine.instance.activate(engine.events[2:])


def test_worker_package_exports_and_examples() -> None:
    interception = {
        "ActivityInboundInterceptor",
        "ActivityOutboundInterceptor",
        "ContinueAsNewInput",
        "ExecuteActivityInput",
        "ExecuteWorkflowInput",
        "HandleQueryInput",
        "HandleSignalInput",
        "HandleUpdateInput",
        "Interceptor",
        "SignalChildWorkflowInput",
        "SignalExternalWorkflowInput",
        "StartActivityInput",
        "StartChildWorkflowInput",
        "StartLocalActivityInput",
        "WorkflowInboundInterceptor",
        "WorkflowInterceptorClassInput",
        "WorkflowOutboundInterceptor",
        "SandboxedWorkflowRunner",
        "UnsandboxedWorkflowRunner",
        "WorkflowRunner",
    }
    assert set(cadenza.worker.__all__) == interception | {
        "Replayer",
        "Worker",
        "WorkerClient",
        "WorkerConfig",
        "WorkflowHistory",
        "WorkflowReplayResult",
        "WorkflowReplayResults",
    }
    names = ["cadenza.worker"] + [
        f"cadenza.worker.{m.name}" for m in pkgutil.iter_modules(cadenza.worker.__path__)
    ]
    names += ["cadenza.workflow._runtime", "cadenza.workflow._instance"]
    for name in names:
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, name


def test_events_already_seen_are_skipped_and_a_gap_makes_the_instance_stale() -> None:
    engine = FakeEngine(Admitted)
    engine.run_task()
    assert engine.instance is not None
    result = engine.instance.activate(engine.events)  # the whole history again
    assert result.failure is None and not result.ran_live
    assert engine.instance.history_length == len(engine.events) == 4
    later = dict(engine.events[-1], event_id=10)
    with pytest.raises(StaleInstanceError, match="jumps from event 4 to 10"):
        engine.instance.activate([later])
