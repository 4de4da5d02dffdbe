"""``list_workflows`` and ``count_workflows`` end to end: client -> engine -> history ->
visibility processor -> replies, on the real broker."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cadenza import Settings, workflow
from cadenza.client import (
    CadenzaServiceError,
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from cadenza.exceptions import ApplicationError
from cadenza.processors.visibility import Visibility
from cadenza.processors.visibility._store import VisibilityStore
from cadenza.topics import TopicAdmin
from cadenza.worker import Worker

from .engine_support import running_engine

QUEUE = "visibility"


@contextmanager
def running_visibility(settings: Settings, data_dir: str) -> Iterator[Visibility]:
    visibility = Visibility(settings, data_dir=data_dir)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            visibility.run()
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield visibility
    finally:
        visibility.stop()
        thread.join(30)
        if errors:
            raise errors[0]


class _Ends:
    def __init__(self) -> None:
        self.released = False

    async def finish(self, end: str) -> str:
        if end == "fail":
            raise ApplicationError("asked to fail", non_retryable=True)
        if end == "wait":
            await workflow.wait_condition(lambda: self.released)
        return end

    @workflow.signal
    def release(self) -> None:
        self.released = True


@workflow.defn(name="A")
class WorkflowA(_Ends):
    @workflow.run
    async def run(self, end: str) -> str:
        return await self.finish(end)


@workflow.defn(name="B")
class WorkflowB(_Ends):
    @workflow.run
    async def run(self, end: str) -> str:
        return await self.finish(end)


async def _eventually_count(client: Client, query: str, expected: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        count = (await client.count_workflows(query)).count
        if count == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"count_workflows({query!r}) is {count}, expected {expected}")


def test_list_and_count_workflows(settings: Settings, tmp_path: Path) -> None:
    TopicAdmin(settings).create(task_queues=[QUEUE])

    async def scenario() -> None:
        client = await Client.connect(settings=settings)
        try:
            async with Worker(client, task_queue=QUEUE, workflows=[WorkflowA, WorkflowB]):
                plan = [
                    (WorkflowA, "a-1", "done"),
                    (WorkflowA, "a-2", "done"),
                    (WorkflowA, "a-3", "done"),
                    (WorkflowA, "a-fail", "fail"),
                    (WorkflowA, "a-wait", "wait"),
                    (WorkflowB, "b-1", "done"),
                    (WorkflowB, "b-wait", "wait"),
                ]
                handles = {}
                for cls, workflow_id, end in plan:
                    handles[workflow_id] = await client.start_workflow(
                        cls.run, end, id=workflow_id, task_queue=QUEUE
                    )
                    await asyncio.sleep(0.01)  # distinct start times, for the order
                for workflow_id in ("a-1", "a-2", "a-3", "b-1"):
                    assert await handles[workflow_id].result() == "done"
                with pytest.raises(WorkflowFailureError):
                    await handles["a-fail"].result()

                await _eventually_count(client, "WorkflowType = 'A'", 5)
                await _eventually_count(
                    client, "WorkflowType = 'A' AND ExecutionStatus = 'Completed'", 3
                )
                await _eventually_count(client, "ExecutionStatus = 'Failed'", 1)
                assert (await client.count_workflows()).count == 7

                running = [e async for e in client.list_workflows("ExecutionStatus = 'Running'")]
                # Newest first by default.
                assert [e.id for e in running] == ["b-wait", "a-wait"]
                assert all(e.status is WorkflowExecutionStatus.RUNNING for e in running)
                assert all(e.close_time is None and e.task_queue == QUEUE for e in running)
                assert [e.workflow_type for e in running] == ["B", "A"]

                completed = [
                    e
                    async for e in client.list_workflows(
                        "WorkflowType = 'A' AND ExecutionStatus = 'Completed' "
                        "ORDER BY StartTime ASC"
                    )
                ]
                assert [e.id for e in completed] == ["a-1", "a-2", "a-3"]
                for e in completed:
                    assert e.status is WorkflowExecutionStatus.COMPLETED
                    assert e.close_time is not None and e.close_time >= e.start_time
                    assert e.run_id == handles[e.id].result_run_id
                    assert e.history_length >= 5

                # Pages of two: 5 runs of A come in three requests, each once.
                pages = client.list_workflows("WorkflowType = 'A'", page_size=2)
                await pages.fetch_next_page()
                assert pages.current_page is not None and len(pages.current_page) == 2
                assert pages.next_page_token
                ids = [e.id async for e in client.list_workflows("WorkflowType = 'A'", page_size=2)]
                assert sorted(ids) == ["a-1", "a-2", "a-3", "a-fail", "a-wait"]
                assert ids[0] == "a-wait"  # newest first
                limited = [e.id async for e in client.list_workflows(page_size=2, limit=3)]
                assert len(limited) == 3

                with pytest.raises(CadenzaServiceError) as invalid:
                    await client.count_workflows("WorkflowType = ")
                assert invalid.value.code == "INVALID_ARGUMENT"
                assert "expected a value for WorkflowType =" in invalid.value.message
                with pytest.raises(CadenzaServiceError, match="is not an ExecutionStatus"):
                    _ = [e async for e in client.list_workflows("ExecutionStatus = 'Asleep'")]

                await handles["a-wait"].signal(WorkflowA.release)
                assert await handles["a-wait"].result() == "wait"
                await _eventually_count(client, "ExecutionStatus = 'Running'", 1)
        finally:
            await client.close()

    with (
        running_engine(settings, str(tmp_path / "engine")),
        running_visibility(settings, str(tmp_path / "visibility")),
    ):
        asyncio.run(asyncio.wait_for(scenario(), 90))


def test_the_projection_resumes_from_its_stored_offsets(settings: Settings, tmp_path: Path) -> None:
    """A restarted processor keeps what it folded and reads only what is new."""
    TopicAdmin(settings).create(task_queues=[QUEUE])
    data_dir = str(tmp_path / "visibility")

    async def start_and_count(ids: list[str], expected: int) -> None:
        client = await Client.connect(settings=settings)
        try:
            async with Worker(client, task_queue=QUEUE, workflows=[WorkflowA]):
                for workflow_id in ids:
                    handle = await client.start_workflow(
                        WorkflowA.run, "done", id=workflow_id, task_queue=QUEUE
                    )
                    await handle.result()
                await _eventually_count(client, "ExecutionStatus = 'Completed'", expected)
        finally:
            await client.close()

    with running_engine(settings, str(tmp_path / "engine")):
        with running_visibility(settings, data_dir) as first:
            asyncio.run(asyncio.wait_for(start_and_count(["r-1", "r-2"], 2), 60))
        store = VisibilityStore(first.store.path)  # closed by stop(); look inside
        try:
            folded = store.offsets()
            r1_key = next(store.keys(b"rr-1\x00"))
            r1 = store.info(r1_key)
            runs = len(list(store.keys(b"r")))
        finally:
            store.close()
        assert runs == 2 and sum(folded.values()) >= 2 * 5
        with running_visibility(settings, data_dir) as second:
            asyncio.run(asyncio.wait_for(start_and_count(["r-3"], 3), 60))
            assert second.store.info(r1_key) == r1
            later = second.store.offsets()
            assert all(later[p] >= o for p, o in folded.items())
            assert sum(later.values()) > sum(folded.values())
