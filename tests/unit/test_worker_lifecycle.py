"""Worker start, run, shutdown and fatal errors, with the Kafka pieces replaced."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_worker_support import FakeClient, GreetingWorkflow, greet

from cadenza.worker import Worker, _worker
from cadenza.worker._consumer import TaskConsumer

ENSURED: list[str] = []


class FakeAdmin:
    def __init__(self, settings: Any) -> None:
        pass

    def ensure_task_queue(self, task_queue: str) -> None:
        ENSURED.append(task_queue)


@pytest.fixture(autouse=True)
def no_kafka(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    ENSURED.clear()
    started: list[str] = []
    monkeypatch.setattr(_worker, "TopicAdmin", FakeAdmin)
    monkeypatch.setattr(TaskConsumer, "start", lambda self: started.append(self.group_id))

    async def close(self: TaskConsumer) -> None:
        started.remove(self.group_id)

    monkeypatch.setattr(TaskConsumer, "close", close)
    return started


def test_async_with_starts_both_halves_and_shuts_them_down(no_kafka: list[str]) -> None:
    async def scenario() -> Worker:
        worker = Worker(
            FakeClient(), task_queue="q", workflows=[GreetingWorkflow], activities=[greet]
        )
        async with worker:
            assert worker.is_running and not worker.is_shutdown
            assert sorted(no_kafka) == ["cadenza.activity-worker.q", "cadenza.workflow-worker.q"]
            with pytest.raises(RuntimeError, match="Already started"):
                await worker.run()
        return worker

    worker = asyncio.run(scenario())
    assert ENSURED == ["q"]
    assert no_kafka == []  # both consumers closed
    assert worker.is_shutdown and not worker.is_running


def test_no_remote_activities_consumes_only_workflow_tasks(no_kafka: list[str]) -> None:
    async def scenario() -> None:
        worker = Worker(
            FakeClient(),
            task_queue="q",
            workflows=[GreetingWorkflow],
            activities=[greet],
            no_remote_activities=True,
        )
        async with worker:
            assert no_kafka == ["cadenza.workflow-worker.q"]

    asyncio.run(scenario())


def test_run_returns_after_shutdown() -> None:
    async def scenario() -> None:
        worker = Worker(FakeClient(), task_queue="q", activities=[greet])
        runner = asyncio.get_running_loop().create_task(worker.run())
        await asyncio.sleep(0.05)
        assert worker.is_running
        await worker.shutdown()
        await asyncio.wait_for(runner, 5)
        assert worker.is_shutdown

    asyncio.run(scenario())


def test_cancelling_run_shuts_down() -> None:
    async def scenario() -> Worker:
        worker = Worker(FakeClient(), task_queue="q", activities=[greet])
        runner = asyncio.get_running_loop().create_task(worker.run())
        await asyncio.sleep(0.05)
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
        return worker

    assert asyncio.run(scenario()).is_shutdown


def test_a_fatal_error_stops_run_and_is_raised() -> None:
    seen: list[BaseException] = []

    async def on_fatal(error: BaseException) -> None:
        seen.append(error)

    async def scenario() -> None:
        worker = Worker(FakeClient(), task_queue="q", activities=[greet], on_fatal_error=on_fatal)
        runner = asyncio.get_running_loop().create_task(worker.run())
        await asyncio.sleep(0.05)
        worker._on_fatal(ConnectionError("Kafka is gone"))
        with pytest.raises(RuntimeError, match="Worker failed: Kafka is gone") as caught:
            await asyncio.wait_for(runner, 5)
        assert isinstance(caught.value.__cause__, ConnectionError)
        assert worker.is_shutdown

    asyncio.run(scenario())
    assert [str(e) for e in seen] == ["Kafka is gone"]


def test_a_fatal_error_is_raised_by_async_with() -> None:
    async def scenario() -> None:
        worker = Worker(FakeClient(), task_queue="q", activities=[greet])
        with pytest.raises(RuntimeError, match="Worker failed"):
            async with worker:
                worker._on_fatal(ConnectionError("Kafka is gone"))
                await asyncio.sleep(0.05)

    asyncio.run(scenario())


def test_a_failed_start_cleans_up(monkeypatch: pytest.MonkeyPatch) -> None:
    class BrokenAdmin(FakeAdmin):
        def ensure_task_queue(self, task_queue: str) -> None:
            raise OSError("cannot create topics")

    monkeypatch.setattr(_worker, "TopicAdmin", BrokenAdmin)

    async def scenario() -> Worker:
        worker = Worker(FakeClient(), task_queue="q", activities=[greet])
        with pytest.raises(OSError, match="cannot create topics"):
            async with worker:
                pass
        return worker

    worker = asyncio.run(scenario())
    assert worker.is_shutdown and not worker.is_running


def test_a_killed_worker_leaves_its_group_within_seconds() -> None:
    # librdkafka's default session timeout (45 s) held a killed worker's tasks that long
    # (tests/integration/test_sdk_worker_kill.py); the broker's minimum is 6 s.
    consumer = TaskConsumer(
        settings=FakeClient().settings,
        topic="t",
        group_id="g",
        capacity=1,
        loop=asyncio.new_event_loop(),
        on_record=lambda record: None,
        on_fatal=lambda error: None,
        client_id="c",
    )
    consumer._loop.close()
    assert consumer._config["session.timeout.ms"] == 6000
    assert consumer._config["heartbeat.interval.ms"] == 1000
