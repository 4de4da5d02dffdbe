"""Worker interceptors inside a workflow instance (temporalio's API): the inbound chain
runs the workflow and its handlers, the outbound chain sees what the code asks for,
and headers set on the way out reach the commands."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, NoReturn

import pytest
from test_runtime_support import FakeEngine, payload, short, value

from cadenza import workflow
from cadenza.worker import (
    ContinueAsNewInput,
    ExecuteWorkflowInput,
    HandleQueryInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    SignalExternalWorkflowInput,
    StartActivityInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from cadenza.workflow import ActivityHandle, Info

CALLS: list[str] = []
TRACE = payload("trace-1")


class _Outbound(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> ActivityHandle[Any]:
        CALLS.append(f"start_activity {input.activity}")
        input.headers = {**input.headers, "trace": TRACE}
        return self.next.start_activity(input)

    async def signal_external_workflow(self, input: SignalExternalWorkflowInput) -> None:
        CALLS.append(f"signal_external {input.workflow_id} {input.signal}")
        input.headers = {**input.headers, "trace": TRACE}
        await self.next.signal_external_workflow(input)

    def continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        CALLS.append("continue_as_new")
        input.headers = {"trace": TRACE}
        self.next.continue_as_new(input)

    def info(self) -> Info:
        CALLS.append("info")
        return self.next.info()


class _Inbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_Outbound(outbound))

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        CALLS.append(f"execute {input.type.__name__} {list(input.args)}")
        return ["intercepted", await self.next.execute_workflow(input)]

    async def handle_signal(self, input: HandleSignalInput) -> None:
        CALLS.append(f"signal {input.signal} {list(input.args)} {sorted(input.headers)}")
        await self.next.handle_signal(input)

    async def handle_query(self, input: HandleQueryInput) -> Any:
        CALLS.append(f"query {input.id} {input.query}")
        return f"<{await self.next.handle_query(input)}>"

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        CALLS.append(f"validate {input.update} {list(input.args)}")
        if input.args == ["no"]:
            raise ValueError("refused by the interceptor")
        self.next.handle_update_validator(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        CALLS.append(f"update {input.id}")
        return await self.next.handle_update_handler(input)


class _Tracing(Interceptor):
    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _Inbound


@workflow.defn
class Traced:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self, name: str) -> str:
        workflow.info()
        got = await workflow.execute_activity(
            "greet", name, start_to_close_timeout=timedelta(seconds=5)
        )
        await workflow.wait_condition(lambda: self.go)
        await workflow.get_external_workflow_handle("other").signal("ping", "hi")
        return str(got)

    @workflow.signal
    def proceed(self, how: str) -> None:
        self.go = how == "now"

    @workflow.query
    def status(self) -> str:
        return "waiting" if not self.go else "going"

    @workflow.update
    def rename(self, name: str) -> str:
        return name.upper()


def _engine() -> FakeEngine:
    CALLS.clear()
    return FakeEngine(Traced, "ada", interceptor_classes=[_Inbound])


def test_the_chain_runs_the_workflow_and_sees_what_it_asks_for() -> None:
    engine = _engine()
    result = engine.run_task()
    [(name, record)] = result.commands
    assert short(name) == "ScheduleActivityTask"
    assert record["header"] == {"trace": TRACE}
    # (and again: each task is also replayed, through the chain, by a fresh instance)
    assert CALLS[:3] == ["execute Traced ['ada']", "info", "start_activity greet"]

    engine.complete_activity("1", "hello ada")
    engine.run_task()
    assert engine.instance is not None
    asked = engine.instance.query("status", [], query_id="q-1")
    assert value(asked) == "<waiting>"

    engine.signal("proceed", "now", header={"trace": TRACE})
    result = engine.run_task()
    assert "signal proceed ['now'] ['trace']" in CALLS
    commands = {short(name): record for name, record in result.commands}
    external = commands["SignalExternalWorkflowExecution"]
    assert external["header"] == {"trace": TRACE}
    assert "signal_external other ping" in CALLS
    assert CALLS.count("query q-1 status") == 1


def test_the_chain_is_replayed_with_the_workflow() -> None:
    engine = _engine()
    engine.run_task()
    engine.complete_activity("1", "hello ada")
    engine.run_task()
    engine.signal("proceed", "now")
    engine.run_task()  # each run_task also replays the whole history through the chain
    CALLS.clear()
    fresh = engine.new_instance()
    assert fresh.activate(engine.events).failure is None
    assert CALLS[0] == "execute Traced ['ada']" and "start_activity greet" in CALLS


def test_update_validators_and_handlers_go_through_the_chain() -> None:
    engine = _engine()
    result = engine.run_task(
        updates=[
            {"update_id": "u-1", "name": "rename", "args": ["bob"]},
            {"update_id": "u-2", "name": "rename", "args": ["no"]},
        ]
    )
    kinds = [short(name) for name, _ in result.commands]
    assert "AcceptUpdate" in kinds and "RejectUpdate" in kinds
    [done] = [r for name, r in result.commands if short(name) == "CompleteUpdate"]
    assert value(done["outcome"]["success"]) == "BOB"
    [refused] = [r for name, r in result.commands if short(name) == "RejectUpdate"]
    assert refused["update_id"] == "u-2"
    assert "refused by the interceptor" in refused["failure"]["message"]
    assert "validate rename ['bob']" in CALLS and "update u-1" in CALLS


@workflow.defn
class Continues:
    @workflow.run
    async def run(self) -> None:
        workflow.continue_as_new(args=[])


def test_continue_as_new_carries_the_outbound_headers() -> None:
    CALLS.clear()
    engine = FakeEngine(Continues, interceptor_classes=[_Inbound])
    result = engine.run_task()
    [(name, record)] = result.commands
    assert short(name) == "ContinueAsNewWorkflowExecution"
    assert record["header"] == {"trace": TRACE}
    assert "continue_as_new" in CALLS


class _WaitsInQuery(WorkflowInboundInterceptor):
    async def handle_query(self, input: HandleQueryInput) -> Any:
        await asyncio.sleep(0)
        return await self.next.handle_query(input)


def test_a_query_interceptor_that_waits_gets_a_clear_error() -> None:
    engine = FakeEngine(Traced, "ada", interceptor_classes=[_WaitsInQuery])
    engine.run_task()
    assert engine.instance is not None
    with pytest.raises(RuntimeError, match="a query must answer at once"):
        engine.instance.query("status", [])


def test_without_interceptors_nothing_is_in_the_way() -> None:
    engine = FakeEngine(Traced, "ada")
    result = engine.run_task()
    [(_, record)] = result.commands
    assert record["header"] == {}
    assert engine.instance is not None and engine.instance._interception is None


@workflow.defn
class Local:
    @workflow.run
    async def run(self) -> str:
        got = await workflow.execute_local_activity(
            "lookup", "k", start_to_close_timeout=timedelta(seconds=2)
        )
        return str(got)


class _SeesLocal(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_LocalOutbound(outbound))


class _LocalOutbound(WorkflowOutboundInterceptor):
    def start_local_activity(self, input: StartLocalActivityInput) -> ActivityHandle[Any]:
        CALLS.append(f"local {input.activity} {list(input.args)}")
        input.headers = {"trace": TRACE}
        return self.next.start_local_activity(input)


def test_a_local_activity_is_an_activity_of_the_workflows_own_queue() -> None:
    """Run by the worker at once (eagerly); recorded as an activity."""
    CALLS.clear()
    engine = FakeEngine(Local, task_queue="orders", interceptor_classes=[_SeesLocal])
    result = engine.run_task()
    [(name, record)] = result.commands
    assert short(name) == "ScheduleActivityTask"
    assert record["activity_type"] == "lookup" and record["task_queue"] == "orders"
    assert record["header"] == {"trace": TRACE}
    assert CALLS[0] == "local lookup ['k']"
    engine.complete_activity("1", "v")
    result = engine.run_task()
    [(name, record)] = result.commands
    assert short(name) == "CompleteWorkflowExecution" and value(record["result"]) == "v"
