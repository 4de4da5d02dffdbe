"""The workflow runtime: patches, continue-as-new, updates, search attributes and memo."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from test_runtime_support import FC, PC, FakeEngine, short, value

from cadenza import workflow
from cadenza.common import SearchAttributeKey
from cadenza.exceptions import ApplicationError, NondeterminismError
from cadenza.worker import Replayer, WorkflowHistory

TIMEOUT = timedelta(seconds=30)


@workflow.defn(name="Patchy")
class PatchOld:
    @workflow.run
    async def run(self) -> str:
        await workflow.execute_activity("old", start_to_close_timeout=TIMEOUT)
        return "old"


@workflow.defn(name="Patchy")
class PatchNew:
    @workflow.run
    async def run(self) -> str:
        if workflow.patched("v2"):
            await workflow.execute_activity("new", start_to_close_timeout=TIMEOUT)
            return "new"
        await workflow.execute_activity("old", start_to_close_timeout=TIMEOUT)
        return "old"


@workflow.defn(name="Patchy")
class PatchDeprecated:
    @workflow.run
    async def run(self) -> str:
        workflow.deprecate_patch("v2")
        await workflow.execute_activity("new", start_to_close_timeout=TIMEOUT)
        return "new"


@workflow.defn(name="Patchy")
class PatchRemoved:
    @workflow.run
    async def run(self) -> str:
        await workflow.execute_activity("new", start_to_close_timeout=TIMEOUT)
        return "new"


@workflow.defn
class Looper:
    @workflow.run
    async def run(self, n: int) -> int:
        if n < 3:
            workflow.continue_as_new(n + 1)
        return n


@workflow.defn
class Counter:
    def __init__(self) -> None:
        self.value = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.value

    @workflow.update
    async def add(self, n: int) -> int:
        await workflow.sleep(1)
        self.value += n
        return self.value

    @add.validator
    def validate_add(self, n: int) -> None:
        if n < 0:
            raise ValueError("negative")

    @workflow.update
    def fail(self) -> None:
        raise ApplicationError("no way")

    @workflow.signal
    def finish(self) -> None:
        self.done = True


CUSTOMER = SearchAttributeKey.for_keyword("CustomerId")


@workflow.defn
class Attributes:
    @workflow.run
    async def run(self) -> dict[str, object]:
        workflow.upsert_search_attributes([CUSTOMER.value_set("c-42")])
        workflow.upsert_memo({"note": "hi", "gone": None})
        return {
            "customer": workflow.info().typed_search_attributes.get(CUSTOMER),
            "memo": dict(workflow.memo()),
        }


def run_to_end(engine: FakeEngine, activity_result: object = None) -> list[str]:
    names = [short(n) for n, _ in engine.run_task().commands]
    engine.complete_activity("1", activity_result)
    names += [short(n) for n, _ in engine.run_task().commands]
    return names


def replay(workflow_cls: type, engine: FakeEngine) -> None:
    history = WorkflowHistory(engine.workflow_id, engine.events)
    asyncio.run(Replayer(workflows=[workflow_cls]).replay_workflow(history))


def test_patched_takes_the_old_path_for_old_histories() -> None:
    engine = FakeEngine(PatchOld)
    engine.run_task()
    engine.complete_activity("1")
    engine.schedule_task()
    # Deploy the patched code: the run replays into the old branch.
    engine.definition = FakeEngine(PatchNew, instance=False).definition
    engine.instance = engine.new_instance()
    engine.delivered = 0
    result = engine.run_task()
    assert value(result.commands[-1][1]["result"]) == "old"


def test_patched_records_a_marker_for_new_runs() -> None:
    engine = FakeEngine(PatchNew)
    result = engine.run_task()
    assert [short(n) for n, _ in result.commands] == ["RecordMarker", "ScheduleActivityTask"]
    marker = result.commands[0][1]
    assert marker["marker_name"] == "core_patch"
    assert value(marker["details"]["patch_id"]) == "v2"
    assert value(marker["details"]["deprecated"]) is False
    engine.complete_activity("1")
    assert value(engine.run_task().commands[-1][1]["result"]) == "new"
    replay(PatchNew, engine)
    replay(PatchDeprecated, engine)
    with pytest.raises(NondeterminismError, match="core_patch"):
        replay(PatchRemoved, engine)
    with pytest.raises(NondeterminismError):
        replay(PatchOld, engine)


def test_deprecated_patch_markers_may_be_removed() -> None:
    engine = FakeEngine(PatchDeprecated)
    assert run_to_end(engine) == [
        "RecordMarker",
        "ScheduleActivityTask",
        "CompleteWorkflowExecution",
    ]
    replay(PatchDeprecated, engine)
    replay(PatchRemoved, engine)


def test_continue_as_new() -> None:
    engine = FakeEngine(Looper, 1)
    result = engine.run_task()
    name, record = result.commands[0]
    assert short(name) == "ContinueAsNewWorkflowExecution"
    assert record["workflow_type"] == "Looper" and record["task_queue"] == "q"
    assert value(record["input"]) == 2
    assert record["task_timeout_ms"] == 10_000
    assert engine.kinds()[-1] == "WorkflowExecutionContinuedAsNew"
    replay(Looper, engine)
    last = FakeEngine(Looper, 3)
    assert value(last.run_task().commands[0][1]["result"]) == 3


def test_updates_validate_accept_complete_and_replay() -> None:
    engine = FakeEngine(Counter)
    engine.run_task()
    result = engine.run_task(updates=[{"update_id": "u1", "name": "add", "args": [-1]}])
    assert [short(n) for n, _ in result.commands] == ["RejectUpdate"]
    rejection = FC.from_failure(result.commands[0][1]["failure"], PC)
    assert isinstance(rejection, ApplicationError) and "negative" in rejection.message

    result = engine.run_task(updates=[{"update_id": "u2", "name": "add", "args": [5]}])
    assert [short(n) for n, _ in result.commands] == ["AcceptUpdate", "StartTimer"]
    engine.signal("finish")
    assert engine.run_task().commands == []  # the update handler still runs
    engine.fire_timer("1")
    result = engine.run_task()
    assert [short(n) for n, _ in result.commands] == ["CompleteUpdate", "CompleteWorkflowExecution"]
    outcome = result.commands[0][1]["outcome"]
    assert value(outcome["success"]) == 5 and outcome["failure"] is None
    assert value(result.commands[1][1]["result"]) == 5
    replay(Counter, engine)


def test_update_failures_and_unknown_updates() -> None:
    engine = FakeEngine(Counter)
    engine.run_task()
    result = engine.run_task(
        updates=[
            {"update_id": "u1", "name": "fail"},
            {"update_id": "u2", "name": "nope"},
        ]
    )
    names = [short(n) for n, _ in result.commands]
    assert names == ["AcceptUpdate", "RejectUpdate", "CompleteUpdate"]
    assert "nope" in result.commands[1][1]["failure"]["message"]
    failure = result.commands[2][1]["outcome"]["failure"]
    assert failure["message"] == "no way"
    replay(Counter, engine)


def test_search_attributes_and_memo() -> None:
    engine = FakeEngine(Attributes)
    result = engine.run_task()
    names = [short(n) for n, _ in result.commands]
    assert names == [
        "UpsertWorkflowSearchAttributes",
        "ModifyWorkflowProperties",
        "CompleteWorkflowExecution",
    ]
    attributes = result.commands[0][1]["search_attributes"]
    assert attributes["CustomerId"]["metadata"]["type"] == b"Keyword"
    assert value([attributes["CustomerId"]]) == "c-42"
    assert value(result.commands[-1][1]["result"]) == {"customer": "c-42", "memo": {"note": "hi"}}
    replay(Attributes, engine)
