"""A non-deterministic change to workflow code, caught by a live worker (the workflow task
fails, the workflow stays running and completes once the right code is back) and by the
``Replayer`` from the history the client fetches."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from cadenza import Settings, activity, workflow
from cadenza.client import Client
from cadenza.common import WorkflowExecutionStatus
from cadenza.exceptions import NondeterminismError
from cadenza.worker import Replayer, Worker

from .sdk_support import attributes, event_name, run_scenario, wait_for_event

QUEUE = "sdk-determinism"
TIMEOUT = timedelta(seconds=5)


@activity.defn
async def step_a(label: str) -> str:
    return f"a:{label}"


@activity.defn
async def step_b(label: str) -> str:
    return f"b:{label}"


@workflow.defn(name="Evolving")
class EvolvingV1:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        first = await workflow.execute_activity(step_a, "one", start_to_close_timeout=TIMEOUT)
        await workflow.wait_condition(lambda: self.go)
        second = await workflow.execute_activity(step_a, "two", start_to_close_timeout=TIMEOUT)
        return f"{first} {second}"

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


@workflow.defn(name="Evolving")
class EvolvingV2:
    """The same workflow type, changed without a patch: its first activity differs."""

    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        first = await workflow.execute_activity(step_b, "one", start_to_close_timeout=TIMEOUT)
        await workflow.wait_condition(lambda: self.go)
        second = await workflow.execute_activity(step_a, "two", start_to_close_timeout=TIMEOUT)
        return f"{first} {second}"

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


def worker(client: Client, version: type) -> Worker:
    return Worker(
        client,
        task_queue=QUEUE,
        workflows=[version],
        activities=[step_a, step_b],
        max_cached_workflows=0,  # every task replays the whole history
    )


def test_live_worker_fails_the_task_on_a_nondeterministic_change(
    settings: Settings, tmp_path: Path
) -> None:
    async def scenario(client: Client) -> None:
        async with worker(client, EvolvingV1):
            handle = await client.start_workflow(EvolvingV1.run, id="evolving", task_queue=QUEUE)
            # Waiting for the signal: the task after the first activity's result completed.
            await wait_for_event(handle, "WorkflowTaskCompleted", count=2)

        async with worker(client, EvolvingV2):
            await handle.signal(EvolvingV1.proceed)
            events = await wait_for_event(handle, "WorkflowTaskFailed")
            description = await handle.describe()
        failed = [attributes(e) for e in events if event_name(e) == "WorkflowTaskFailed"]
        assert failed[0]["cause"] == "NON_DETERMINISTIC_ERROR"
        message = failed[0]["failure"]["message"]
        assert "Nondeterminism" in message and "step_a" in message and "step_b" in message, message
        assert description.status is WorkflowExecutionStatus.RUNNING
        # The changed code scheduled nothing: only the first activity is in history.
        assert [event_name(e) for e in events].count("ActivityTaskScheduled") == 1

        # It fails attempts 2 and 3 too (at once, then after 1 s), and as in Temporal
        # these retries are transient: history keeps the first failure only.
        async with worker(client, EvolvingV2):
            await asyncio.sleep(2.5)
            # Describe names the attempt history does not show.
            pending = (await handle.describe()).raw_description["pending_workflow_task"]
            assert pending is not None and pending["attempt"] >= 3, pending
        names = [event_name(e) for e in (await handle.fetch_history()).events]
        assert names.count("WorkflowTaskFailed") == 1, names
        assert names[-1] == "WorkflowTaskFailed", names

        # The original code is deployed again: the retried task passes and the run completes.
        async with worker(client, EvolvingV1):
            assert await handle.result() == "a:one a:two"
        assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED
        history = list((await handle.fetch_history()).events)
        names = [event_name(e) for e in history]
        assert names.count("WorkflowTaskFailed") == 1, names
        after = names.index("WorkflowTaskFailed") + 1
        assert names[after : after + 3] == [
            "WorkflowTaskScheduled",
            "WorkflowTaskStarted",
            "WorkflowTaskCompleted",
        ], names
        assert attributes(history[after])["attempt"] >= 3, "the attempt that passed, written"
        assert [e["event_id"] for e in history] == list(range(1, len(history) + 1))

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE], timeout=45)


def test_replayer_catches_the_change_from_fetched_history(
    settings: Settings, tmp_path: Path
) -> None:
    async def scenario(client: Client) -> None:
        async with worker(client, EvolvingV1):
            handle = await client.start_workflow(EvolvingV1.run, id="replayed", task_queue=QUEUE)
            await wait_for_event(handle, "WorkflowTaskCompleted", count=2)
            await handle.signal(EvolvingV1.proceed)
            assert await handle.result() == "a:one a:two"
        history = await handle.fetch_history()
        assert event_name(history.events[-1]) == "WorkflowExecutionCompleted"

        # The original code replays the history.
        result = await Replayer(workflows=[EvolvingV1]).replay_workflow(history)
        assert result.replay_failure is None

        # The changed code does not, and the error names what differs.
        with pytest.raises(NondeterminismError) as caught:
            await Replayer(workflows=[EvolvingV2]).replay_workflow(history)
        assert "step_a" in str(caught.value) and "step_b" in str(caught.value), caught.value
        outcome = await Replayer(workflows=[EvolvingV2]).replay_workflow(
            history, raise_on_replay_failure=False
        )
        assert isinstance(outcome.replay_failure, NondeterminismError)

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])
