"""Workflows written against the Temporal-style API, run end to end on the real broker:
client -> engine -> worker, nothing faked."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from cadenza import Settings, activity, workflow
from cadenza.client import Client, WorkflowFailureError
from cadenza.common import RetryPolicy
from cadenza.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    TerminatedError,
)
from cadenza.topics import TopicAdmin
from cadenza.worker import Worker

from .engine_support import running_engine

ATTEMPTS: dict[str, int] = {}


@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}!"


@activity.defn
async def flaky(key: str) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] < 3:
        raise ApplicationError(f"attempt {ATTEMPTS[key]} failed")
    return f"ok after {ATTEMPTS[key]}"


@activity.defn
async def broken() -> str:
    raise ApplicationError("card declined", type="Declined", non_retryable=True)


@workflow.defn
class Hello:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            greet, name, start_to_close_timeout=timedelta(seconds=10)
        )


@workflow.defn
class Retrying:
    @workflow.run
    async def run(self, key: str) -> str:
        return await workflow.execute_activity(
            flaky,
            key,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )


@workflow.defn
class Failing:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(broken, start_to_close_timeout=timedelta(seconds=5))


@workflow.defn
class Approval:
    def __init__(self) -> None:
        self.approved_by: str | None = None

    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(0.2)
        await workflow.wait_condition(lambda: self.approved_by is not None, timeout=30)
        return f"approved by {self.approved_by}"

    @workflow.signal
    def approve(self, who: str) -> None:
        self.approved_by = who

    @workflow.query
    def status(self) -> str:
        return "approved" if self.approved_by else "waiting"


@workflow.defn
class Counter:
    @workflow.run
    async def run(self, n: int) -> int:
        if n < 3:
            workflow.continue_as_new(n + 1)
        return n


@workflow.defn
class Forever:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


@pytest.fixture
def engine(settings: Settings, tmp_path: Path) -> Iterator[None]:
    TopicAdmin(settings).create(task_queues=["e2e"])
    with running_engine(settings, str(tmp_path / "engine")):
        yield


def test_hello_activity(settings: Settings, engine: None) -> None:
    async def main() -> str:
        client = await Client.connect(settings=settings)
        async with Worker(
            client, task_queue="e2e", workflows=[Hello], activities=[greet]
        ) as worker:
            result = await client.execute_workflow(Hello.run, "Kafka", id="hello", task_queue="e2e")
            # The second task carried only the new events and ran on the cached instance.
            assert worker._workflow_worker is not None
            assert worker._workflow_worker.sticky_cache_misses == 0
        await client.close()
        return result

    assert asyncio.run(asyncio.wait_for(main(), 60)) == "Hello, Kafka!"


def test_a_burst_beyond_the_worker_capacity_completes(settings: Settings, engine: None) -> None:
    # 30 workflows on a worker with 2 workflow-task and 2 activity slots: the task
    # consumers hold what they fetched beyond the slots, pause once a capacity's worth
    # is held, resume as slots free, and lose nothing on the way.
    async def main() -> list[str]:
        client = await Client.connect(settings=settings)
        async with Worker(
            client,
            task_queue="burst",
            workflows=[Hello],
            activities=[greet],
            max_concurrent_workflow_tasks=2,
            max_concurrent_activities=2,
        ) as worker:
            handles = [
                await client.start_workflow(Hello.run, f"n{i}", id=f"burst-{i}", task_queue="burst")
                for i in range(30)
            ]
            results = list(await asyncio.gather(*(h.result() for h in handles)))
            assert worker._workflow_worker is not None
            assert worker._workflow_worker.sticky_cache_misses == 0
        await client.close()
        return results

    assert asyncio.run(asyncio.wait_for(main(), 90)) == [f"Hello, n{i}!" for i in range(30)]


def test_workflows_end_to_end(settings: Settings, engine: None) -> None:
    async def main() -> None:
        client = await Client.connect(settings=settings)
        async with Worker(
            client,
            task_queue="e2e",
            workflows=[Hello, Retrying, Failing, Approval, Counter, Forever],
            activities=[greet, flaky, broken],
        ):
            # Retries until the third attempt succeeds.
            got = await client.execute_workflow(Retrying.run, "r1", id="retry", task_queue="e2e")
            assert got == "ok after 3"

            # A non-retryable error fails the workflow with the cause chain.
            with pytest.raises(WorkflowFailureError) as failed:
                await client.execute_workflow(Failing.run, id="fail", task_queue="e2e")
            assert isinstance(failed.value.cause, ActivityError)
            assert isinstance(failed.value.cause.cause, ApplicationError)
            assert failed.value.cause.cause.type == "Declined"

            # Signal + wait_condition, a durable timer, and queries before and after.
            handle = await client.start_workflow(Approval.run, id="approve", task_queue="e2e")
            assert await handle.query(Approval.status) == "waiting"
            await handle.signal(Approval.approve, "ops")
            assert await handle.result() == "approved by ops"
            assert await handle.query(Approval.status) == "approved"

            # Continue-as-new carries state into new runs; result follows the chain.
            assert await client.execute_workflow(Counter.run, 0, id="count", task_queue="e2e") == 3

            # Cancel and terminate.
            cancelled = await client.start_workflow(Forever.run, id="cancel-me", task_queue="e2e")
            await cancelled.cancel(reason="not needed any more")
            with pytest.raises(WorkflowFailureError) as err:
                await cancelled.result()
            assert isinstance(err.value.cause, CancelledError)
            requested = [
                e["attributes"][1]
                for e in (await cancelled.fetch_history()).events
                if e["attributes"][0].endswith("WorkflowExecutionCancelRequested")
            ]
            assert [r["reason"] for r in requested] == ["not needed any more"]
            terminated = await client.start_workflow(Forever.run, id="end-me", task_queue="e2e")
            await terminated.terminate(reason="done here")
            with pytest.raises(WorkflowFailureError) as err:
                await terminated.result()
            assert isinstance(err.value.cause, TerminatedError)

            description = await handle.describe()
            assert description.status.name == "COMPLETED"
            history = await handle.fetch_history()
            assert history.events[-1]["attributes"][0].endswith("WorkflowExecutionCompleted")
        await client.close()

    asyncio.run(asyncio.wait_for(main(), 120))


@workflow.defn
class Child:
    @workflow.run
    async def run(self, n: int) -> int:
        if n < 0:
            raise ApplicationError("negative", non_retryable=True)
        return n * 2


@workflow.defn
class Parent:
    @workflow.run
    async def run(self, n: int) -> list[int]:
        ok = await workflow.execute_child_workflow(
            Child.run, n, id=f"{workflow.info().workflow_id}-c1"
        )
        try:
            await workflow.execute_child_workflow(
                Child.run, -1, id=f"{workflow.info().workflow_id}-c2"
            )
        except ChildWorkflowError as err:
            assert isinstance(err.cause, ApplicationError)
            return [ok, -1]
        return [ok]


@workflow.defn
class Receiver:
    def __init__(self) -> None:
        self.got: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: len(self.got) >= 1)
        return self.got

    @workflow.signal
    def hello(self, text: str) -> None:
        self.got.append(text)


@workflow.defn
class Sender:
    @workflow.run
    async def run(self, target: str) -> None:
        await workflow.get_external_workflow_handle(target).signal(Receiver.hello, "from sender")


@workflow.defn
class Abandoning:
    @workflow.run
    async def run(self, policy: str) -> str:
        handle = await workflow.start_child_workflow(
            Forever.run,
            id=f"{workflow.info().workflow_id}-child",
            parent_close_policy=workflow.ParentClosePolicy[policy],
        )
        return handle.id


def test_children_external_signals_and_parent_close_policy(
    settings: Settings, engine: None
) -> None:
    async def main() -> None:
        client = await Client.connect(settings=settings)
        async with Worker(
            client,
            task_queue="e2e",
            workflows=[Parent, Child, Receiver, Sender, Abandoning, Forever],
            activities=[greet],
        ):
            assert await client.execute_workflow(Parent.run, 21, id="p", task_queue="e2e") == [
                42,
                -1,
            ]

            receiver = await client.start_workflow(Receiver.run, id="rx", task_queue="e2e")
            await client.execute_workflow(Sender.run, "rx", id="tx", task_queue="e2e")
            assert await receiver.result() == ["from sender"]

            # TERMINATE (the default): the child ends with its parent; ABANDON: it runs on.
            child_id = await client.execute_workflow(
                Abandoning.run, "TERMINATE", id="pcp-t", task_queue="e2e"
            )
            with pytest.raises(WorkflowFailureError) as err:
                await client.get_workflow_handle(child_id).result()
            assert isinstance(err.value.cause, TerminatedError)
            child_id = await client.execute_workflow(
                Abandoning.run, "ABANDON", id="pcp-a", task_queue="e2e"
            )
            description = await client.get_workflow_handle(child_id).describe()
            assert description.status.name == "RUNNING"
            await client.get_workflow_handle(child_id).terminate()
        await client.close()

    asyncio.run(asyncio.wait_for(main(), 120))


RUNS: list[int] = []


@workflow.defn
class Flaky:
    @workflow.run
    async def run(self) -> int:
        attempt = workflow.info().attempt
        if attempt < 3:
            raise ApplicationError(f"run attempt {attempt} failed")
        return attempt


@workflow.defn
class Nightly:
    @workflow.run
    async def run(self) -> int:
        RUNS.append(workflow.info().attempt)
        return len(RUNS)


def test_workflow_retry_policy_and_cron(settings: Settings, engine: None) -> None:
    async def main() -> None:
        client = await Client.connect(settings=settings)
        async with Worker(client, task_queue="e2e", workflows=[Flaky, Nightly]):
            # A failing run is retried as a new run; result() follows the chain.
            got = await client.execute_workflow(
                Flaky.run,
                id="flaky-wf",
                task_queue="e2e",
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
            )
            assert got == 3
            # Without a retry policy the first failure is final.
            with pytest.raises(WorkflowFailureError):
                await client.execute_workflow(Flaky.run, id="flaky-once", task_queue="e2e")

            # A cron workflow runs on schedule until it is stopped.
            handle = await client.start_workflow(
                Nightly.run, id="cron-wf", task_queue="e2e", cron_schedule="@every 1s"
            )
            for _ in range(100):
                if len(RUNS) >= 2:
                    break
                await asyncio.sleep(0.1)
            assert len(RUNS) >= 2
            await handle.terminate(reason="enough")
        await client.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_signal_with_start_start_delay_and_timeouts(settings: Settings, engine: None) -> None:
    async def main() -> None:
        client = await Client.connect(settings=settings)
        async with Worker(client, task_queue="e2e", workflows=[Approval, Forever]):
            # Signal-with-start: the signal is in history before the first workflow task.
            handle = await client.start_workflow(
                Approval.run,
                id="sws",
                task_queue="e2e",
                start_signal="approve",
                start_signal_args=["starter"],
            )
            assert await handle.result() == "approved by starter"
            # The same call against the running workflow signals it instead of failing.
            again = await client.start_workflow(
                Forever.run, id="sws-2", task_queue="e2e", start_signal="nothing"
            )
            twice = await client.start_workflow(
                Forever.run, id="sws-2", task_queue="e2e", start_signal="nothing"
            )
            assert twice.result_run_id == again.result_run_id
            await again.terminate()

            # A start delay holds the first workflow task back.
            loop = asyncio.get_running_loop()
            began = loop.time()
            delayed = await client.start_workflow(
                Approval.run,
                id="delayed",
                task_queue="e2e",
                start_delay=timedelta(seconds=1.5),
                start_signal="approve",
                start_signal_args=["later"],
            )
            assert await delayed.result() == "approved by later"
            assert loop.time() - began >= 1.4

            # Execution timeout: the run times out and result() says so.
            timed = await client.start_workflow(
                Forever.run, id="timed", task_queue="e2e", execution_timeout=timedelta(seconds=1)
            )
            with pytest.raises(WorkflowFailureError) as err:
                await timed.result()
            assert type(err.value.cause).__name__ == "TimeoutError"
        await client.close()

    asyncio.run(asyncio.wait_for(main(), 60))


@workflow.defn
class Patient:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.wait_condition(lambda: False, timeout=timedelta(milliseconds=300))
        except TimeoutError:
            return "gave up waiting"
        return "impossible"


def test_wait_condition_timeout(settings: Settings, engine: None) -> None:
    async def main() -> str:
        client = await Client.connect(settings=settings)
        async with Worker(client, task_queue="e2e", workflows=[Patient]):
            result = await client.execute_workflow(Patient.run, id="patient", task_queue="e2e")
        await client.close()
        return result

    assert asyncio.run(asyncio.wait_for(main(), 60)) == "gave up waiting"
