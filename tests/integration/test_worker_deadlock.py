"""The deadlock detector end to end (client -> engine -> worker on the real broker).

Workflow code runs in threads that share the GIL with the event loop, the other
workflow tasks and whatever else the process does. Time a task's code spends
waiting for the GIL is the process's, not the workflow's: only code that does not
yield (it blocks, or it computes for longer than the timeout) is failed with
TMPRL1101. A failed task is recorded in history and retried with the whole history.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
import time
from pathlib import Path

import pytest

from cadenza import Settings, workflow
from cadenza.client import Client
from cadenza.exceptions import WorkflowQueryFailedError
from cadenza.worker import Worker, _workflow_worker

from .sdk_support import attributes, event_name, event_names, run_scenario

QUEUE = "deadlock"
TIMEOUT = 0.5
"""The deadlock timeout of these tests (2 s in production)."""

_libc = ctypes.PyDLL(None)
"""libc called *with* the GIL held (a ``PyDLL``): ``usleep`` stands for any long
stretch of the GIL held elsewhere (a C extension, a garbage collection of a big heap)."""

_code_running = threading.Event()
_gil_taken = threading.Event()


@pytest.fixture(autouse=True)
def short_deadlock_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_workflow_worker, "DEADLOCK_TIMEOUT_SECONDS", TIMEOUT)


def _hold_the_gil(seconds: float) -> None:
    """Once workflow code runs, take the GIL from it and keep it ``seconds``."""
    _code_running.wait()
    _gil_taken.set()
    _libc.usleep(int(seconds * 1_000_000))


def _compute(seconds: float) -> None:
    """Busy CPU work (no yield) of ``seconds`` of this thread's own CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


@workflow.defn
class Interrupted:
    """Its code yields after some 100 ms of CPU, but another thread takes the GIL from it
    on the way."""

    @workflow.run
    async def run(self) -> str:
        _code_running.set()
        while not _gil_taken.is_set():
            pass  # until the other thread holds the GIL: then this thread waits for it
        _compute(0.1)
        return "done"


@workflow.defn
class Busy:
    """50 ms of CPU in its first task: many at once queue for the GIL."""

    @workflow.run
    async def run(self) -> str:
        _compute(0.05)
        await workflow.sleep(0.01)
        return "done"


BLOCKED: list[str] = []
"""Workflow ids whose code has blocked once."""


@workflow.defn
class BlocksOnce:
    """A real deadlock in its first attempt: a blocking call, then (replayed) it goes on."""

    @workflow.run
    async def run(self, how: str) -> str:
        if workflow.info().workflow_id not in BLOCKED:
            BLOCKED.append(workflow.info().workflow_id)
            if how == "sleep":
                time.sleep(3 * TIMEOUT)  # blocking: not allowed in workflow code
            else:
                _compute(3 * TIMEOUT)  # never yields for longer than the timeout
        return "done"


def test_code_waiting_for_the_gil_held_elsewhere_is_not_a_deadlock(
    settings: Settings, tmp_path: Path
) -> None:
    _code_running.clear()
    _gil_taken.clear()

    async def scenario(client: Client) -> list[str]:
        async with Worker(client, task_queue=QUEUE, workflows=[Interrupted]):
            hog = threading.Thread(target=_hold_the_gil, args=(3 * TIMEOUT,), daemon=True)
            hog.start()
            handle = await client.start_workflow(
                Interrupted.run, id="interrupted", task_queue=QUEUE
            )
            assert await handle.result() == "done"
            hog.join()
            return await event_names(handle)

    names = run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])
    assert "WorkflowTaskFailed" not in names, names


def test_tasks_queued_for_the_gil_are_not_deadlocks(settings: Settings, tmp_path: Path) -> None:
    count = 40

    async def scenario(client: Client) -> list[list[str]]:
        # Started before the worker, so its first poll takes all their tasks at once.
        handles = await asyncio.gather(
            *(
                client.start_workflow(Busy.run, id=f"busy-{n}", task_queue=QUEUE)
                for n in range(count)
            )
        )
        async with Worker(client, task_queue=QUEUE, workflows=[Busy]):
            assert await asyncio.gather(*(h.result() for h in handles)) == ["done"] * count
            return list(await asyncio.gather(*(event_names(h) for h in handles)))

    histories = run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE], timeout=60)
    failed = [names for names in histories if "WorkflowTaskFailed" in names]
    assert not failed, f"{len(failed)} of {count} runs had a task failed: {failed[0]}"


@pytest.mark.parametrize("how", ["sleep", "compute"])
def test_a_real_deadlock_is_recorded_and_the_task_retried(
    settings: Settings, tmp_path: Path, how: str
) -> None:
    async def scenario(client: Client) -> list[str]:
        async with Worker(client, task_queue=QUEUE, workflows=[BlocksOnce]):
            handle = await client.start_workflow(
                BlocksOnce.run, how, id=f"blocks-{how}", task_queue=QUEUE
            )
            assert await handle.result() == "done"
            history = await handle.fetch_history()
            [failed] = [e for e in history.events if event_name(e) == "WorkflowTaskFailed"]
            message = attributes(failed)["failure"]["message"]
            assert "[TMPRL1101] Potential deadlock detected" in message, message
            return await event_names(handle)

    names = run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])
    # The failed task is in history; its retry ran the workflow to the end.
    assert names[names.index("WorkflowTaskFailed") + 1 :][:3] == [
        "WorkflowTaskScheduled",
        "WorkflowTaskStarted",
        "WorkflowTaskCompleted",
    ], names
    assert names[-1] == "WorkflowExecutionCompleted"


@workflow.defn
class QueriedWhileWaiting:
    """Waits for a signal; its ``stuck`` query blocks (a blocking call in a handler)."""

    def __init__(self) -> None:
        self._finish = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self._finish)
        return "finished"

    @workflow.signal
    def finish(self) -> None:
        self._finish = True

    @workflow.query
    def state(self) -> str:
        return "finished" if self._finish else "waiting"

    @workflow.query
    def stuck(self) -> str:
        time.sleep(3 * TIMEOUT)  # blocking: not allowed in workflow code
        return "never seen"


def test_a_query_that_deadlocks_fails_and_the_run_goes_on(
    settings: Settings, tmp_path: Path
) -> None:
    """A query handler that blocks fails its query with TMPRL1101; the thread stuck in
    it keeps its instance, and the run's next query and task go on without it."""

    async def scenario(client: Client) -> tuple[str, str, str]:
        async with Worker(client, task_queue=QUEUE, workflows=[QueriedWhileWaiting]):
            handle = await client.start_workflow(
                QueriedWhileWaiting.run, id="queried", task_queue=QUEUE
            )
            assert await handle.query(QueriedWhileWaiting.state) == "waiting"
            with pytest.raises(WorkflowQueryFailedError) as failed:
                await handle.query(QueriedWhileWaiting.stuck)
            waiting = await handle.query(QueriedWhileWaiting.state)
            await handle.signal(QueriedWhileWaiting.finish)
            return str(failed.value), waiting, await handle.result()

    message, waiting, result = run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])
    assert "[TMPRL1101] Potential deadlock detected" in message, message
    assert (waiting, result) == ("waiting", "finished")
