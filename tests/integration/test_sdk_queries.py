"""Queries end to end (client -> engine -> worker on the real broker): answered from the
worker's cached instance when its state is the history's, replayed otherwise."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cadenza import Settings, workflow
from cadenza.client import Client
from cadenza.worker import Worker

from .sdk_support import run_scenario, wait_for_event

QUEUE = "sdk-queries"

MADE: list[str] = []
"""One workflow id per instance a worker built (the first task, or a replay)."""


@workflow.defn
class Tally:
    def __init__(self) -> None:
        MADE.append(workflow.info().workflow_id)
        self.notes: list[str] = []
        self.finish = False

    @workflow.run
    async def run(self) -> list[str]:
        # A timer in the first task: its completion records TimerStarted after
        # WorkflowTaskCompleted, events the cached instance has not seen.
        nap = asyncio.ensure_future(workflow.sleep(3600))
        await workflow.wait_condition(lambda: self.finish)
        nap.cancel()
        return self.notes

    @workflow.signal
    def note(self, text: str) -> None:
        self.notes.append(text)

    @workflow.signal
    def done(self) -> None:
        self.finish = True

    @workflow.query
    def so_far(self) -> list[str]:
        return list(self.notes)


def test_queries_read_the_cached_instance_and_replay_without_one(
    settings: Settings, tmp_path: Path
) -> None:
    wid = "tally"

    async def scenario(client: Client) -> tuple[list[list[str]], int, list[str], int, list[str]]:
        async with Worker(client, task_queue=QUEUE, workflows=[Tally]):
            handle = await client.start_workflow(Tally.run, id=wid, task_queue=QUEUE)
            await wait_for_event(handle, "TimerStarted")
            answers = [await handle.query(Tally.so_far) for _ in range(3)]
            await handle.signal(Tally.note, "a")
            answers.append(await handle.query(Tally.so_far))  # the signal's task may be pending
            await wait_for_event(handle, "WorkflowTaskCompleted", count=2)
            answers += [await handle.query(Tally.so_far) for _ in range(3)]
            built_while_cached = MADE.count(wid)
        async with Worker(client, task_queue=QUEUE, workflows=[Tally]):  # nothing cached
            replayed = await handle.query(Tally.so_far)
            built_after_replay = MADE.count(wid) - built_while_cached
            await handle.signal(Tally.done)
            result = await handle.result()
        return answers, built_while_cached, replayed, built_after_replay, result

    answers, built_while_cached, replayed, built_after_replay, result = run_scenario(
        settings, tmp_path, scenario, task_queues=[QUEUE]
    )
    assert answers[:3] == [[], [], []]
    assert answers[3] == ["a"]  # a signal recorded but not yet run: a replay takes it in
    assert answers[4:] == [["a"]] * 3
    # The first task's instance, plus at most the replay for the query that may have
    # found the signal's task pending: the six others read the cached instance.
    assert built_while_cached <= 2, built_while_cached
    assert replayed == ["a"] and built_after_replay >= 1
    assert result == ["a"]
