"""Replayer and WorkflowHistory: whole histories through the current code."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta

import pytest
from test_runtime_support import FakeEngine
from test_worker_support import Base64Codec

from cadenza import workflow
from cadenza.converter import DataConverter
from cadenza.exceptions import ApplicationError, NondeterminismError
from cadenza.worker import Replayer, WorkflowHistory, WorkflowReplayResult
from cadenza.worker._codec import encode_in

TIMEOUT = timedelta(seconds=30)


@workflow.defn(name="Order")
class OrderV1:
    def __init__(self) -> None:
        self.approved = False

    @workflow.run
    async def run(self, order: str) -> str:
        await workflow.execute_activity("reserve", order, start_to_close_timeout=TIMEOUT)
        await workflow.wait_condition(lambda: self.approved)
        await workflow.sleep(10)
        try:
            await workflow.execute_activity("charge", order, start_to_close_timeout=TIMEOUT)
        except Exception:
            return "charge failed"
        return "done"

    @workflow.signal
    def approve(self) -> None:
        self.approved = True


@workflow.defn(name="Order")
class OrderV2:
    """Changed: sleeps before waiting for approval."""

    def __init__(self) -> None:
        self.approved = False

    @workflow.run
    async def run(self, order: str) -> str:
        await workflow.execute_activity("reserve", order, start_to_close_timeout=TIMEOUT)
        await workflow.sleep(10)
        await workflow.wait_condition(lambda: self.approved)
        await workflow.execute_activity("charge", order, start_to_close_timeout=TIMEOUT)
        return "done"

    @workflow.signal
    def approve(self) -> None:
        self.approved = True


@workflow.defn(name="Order")
class OrderV3:
    """Changed: completes without charging."""

    @workflow.run
    async def run(self, order: str) -> str:
        await workflow.execute_activity("reserve", order, start_to_close_timeout=TIMEOUT)
        await asyncio.sleep(0)
        return "done"


def completed_history() -> WorkflowHistory:
    engine = FakeEngine(OrderV1, "o-1", workflow_id="order-1")
    engine.run_task()
    engine.complete_activity("1")
    engine.run_task()
    engine.signal("approve")
    engine.signal("approve")
    engine.run_task()
    engine.advance(10)
    engine.fire_timer("1")
    engine.run_task()
    engine.fail_activity("2", ApplicationError("card declined", {"code": 51}, type="Declined"))
    engine.run_task()
    assert engine.kinds()[-1] == "WorkflowExecutionCompleted"
    return WorkflowHistory("order-1", engine.events)


def test_replaying_a_completed_history_passes() -> None:
    history = completed_history()
    result = asyncio.run(Replayer(workflows=[OrderV1]).replay_workflow(history))
    assert isinstance(result, WorkflowReplayResult) and result.replay_failure is None


def test_a_replayer_decodes_payloads_with_its_codec() -> None:
    """A history written by a client and workers with a payload codec replays with
    the same codec, as a worker's task does; without it, the workflow code fails on
    the payloads it cannot read."""
    plain = completed_history()
    codec = Base64Codec()
    history = WorkflowHistory(plain.workflow_id, asyncio.run(encode_in(list(plain.events), codec)))
    started = history.events[0]["attributes"][1]["input"][0]
    assert started["metadata"]["encoding"] == b"binary/b64"
    converter = dataclasses.replace(DataConverter.default, payload_codec=codec)
    replayer = Replayer(workflows=[OrderV1], data_converter=converter)
    result = asyncio.run(replayer.replay_workflow(history))
    assert result.replay_failure is None and result.history is history
    failed = asyncio.run(
        Replayer(workflows=[OrderV1]).replay_workflow(history, raise_on_replay_failure=False)
    )
    assert failed.replay_failure is not None


def test_a_changed_workflow_fails_replay() -> None:
    history = completed_history()
    with pytest.raises(NondeterminismError) as info:
        asyncio.run(Replayer(workflows=[OrderV2]).replay_workflow(history))
    assert str(info.value) == (
        "Nondeterminism: the workflow code produced StartTimer(timer_id='1') but history "
        "continues with #11 WorkflowExecutionSignaled() instead of the event recording it"
    )
    # Without raising, the failure is in the result.
    result = asyncio.run(
        Replayer(workflows=[OrderV2]).replay_workflow(history, raise_on_replay_failure=False)
    )
    assert isinstance(result.replay_failure, NondeterminismError)


def test_missing_commands_fail_replay() -> None:
    history = completed_history()
    with pytest.raises(NondeterminismError, match=r"produced CompleteWorkflowExecution\(\) but"):
        asyncio.run(Replayer(workflows=[OrderV3]).replay_workflow(history))


def test_replay_workflows_collects_failures() -> None:
    good = completed_history()
    results = asyncio.run(
        Replayer(workflows=[OrderV2]).replay_workflows([good], raise_on_replay_failure=False)
    )
    assert list(results.replay_failures) == ["run-1"]
    results = asyncio.run(Replayer(workflows=[OrderV1]).replay_workflows([good]))
    assert results.replay_failures == {}


def test_unknown_workflow_type() -> None:
    with pytest.raises(ValueError, match="Order"):
        asyncio.run(Replayer(workflows=[]).replay_workflow(completed_history()))


def test_history_json_round_trip() -> None:
    history = completed_history()
    text = history.to_json()
    data = json.loads(text)
    first = data["events"][0]
    assert first["attributes"]["type"] == "cadenza.history.WorkflowExecutionStarted"
    assert first["attributes"]["value"]["input"][0]["data"] == "Im8tMSI="  # base64 of "o-1"
    again = WorkflowHistory.from_json("order-1", text)
    assert again == history
    assert WorkflowHistory.from_json("order-1", data).to_json() == text
    result = asyncio.run(Replayer(workflows=[OrderV1]).replay_workflow(again))
    assert result.replay_failure is None
