"""workflow.patched on the real broker: a run started before the patch keeps the old path,
a run started after it takes the new one, and both replay."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from cadenza import Settings, activity, workflow
from cadenza.client import Client
from cadenza.worker import Replayer, Worker

from .sdk_support import event_names, run_scenario

QUEUE = "patching"


@activity.defn
async def old_step() -> str:
    return "old"


@activity.defn
async def new_step() -> str:
    return "new"


@workflow.defn(name="Patched")
class Before:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        first = await workflow.execute_activity(
            old_step, start_to_close_timeout=timedelta(seconds=5)
        )
        await workflow.wait_condition(lambda: self.go)
        return first

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


@workflow.defn(name="Patched")
class After:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        if workflow.patched("use-new-step"):
            first = await workflow.execute_activity(
                new_step, start_to_close_timeout=timedelta(seconds=5)
            )
        else:
            first = await workflow.execute_activity(
                old_step, start_to_close_timeout=timedelta(seconds=5)
            )
        await workflow.wait_condition(lambda: self.go)
        return first

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


def test_patched_with_an_old_and_a_new_history(settings: Settings, tmp_path: Path) -> None:
    async def scenario(client: Client) -> None:
        # An old run: started and waiting under the code before the patch.
        async with Worker(
            client,
            task_queue=QUEUE,
            workflows=[Before],
            activities=[old_step, new_step],
            max_cached_workflows=0,
        ):
            old = await client.start_workflow(Before.run, id="old-run", task_queue=QUEUE)
            for _ in range(100):
                if "ActivityTaskCompleted" in await event_names(old):
                    break
                await asyncio.sleep(0.1)
        # Deploy the patched code: the old run replays down the old branch, a new run
        # takes the new one and records the patch marker.
        async with Worker(
            client,
            task_queue=QUEUE,
            workflows=[After],
            activities=[old_step, new_step],
            max_cached_workflows=0,
        ):
            new = await client.start_workflow(After.run, id="new-run", task_queue=QUEUE)
            await old.signal(After.proceed)
            await new.signal(After.proceed)
            assert await old.result() == "old"
            assert await new.result() == "new"
        assert "MarkerRecorded" not in await event_names(old)
        assert "MarkerRecorded" in await event_names(new)
        replayer = Replayer(workflows=[After])
        await replayer.replay_workflow(await old.fetch_history())
        await replayer.replay_workflow(await new.fetch_history())

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE], timeout=60)
