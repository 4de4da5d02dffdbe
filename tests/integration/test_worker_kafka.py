"""The Worker on a real broker, without the engine.

Tasks are produced by hand to ``workflow-tasks.<q>`` and ``activity-tasks.<q>``
as the engine would write them; the worker's answers are read back from
``commands`` (and, for queries, from the ``replies`` partition the task names).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from cadenza import Settings, activity, schemas
from cadenza.client import Client
from cadenza.exceptions import ApplicationError
from cadenza.topics import (
    TopicAdmin,
    activity_tasks_topic,
    commands_topic,
    consumer_group,
    replies_topic,
    workflow_tasks_topic,
)
from cadenza.worker import Worker
from tests.unit.test_worker_support import (
    GreetingWorkflow,
    activity_task,
    after_activity,
    first_history,
    greet,
    query_request,
    value_of,
    workflow_task,
)

QUEUE = "orders"
C = "cadenza.command."
WAIT = 30.0


@activity.defn
async def decline(order: str) -> None:
    raise ApplicationError(f"card declined for {order}", {"code": 51}, type="Declined")


@activity.defn
def sync_total(prices: list[int]) -> int:
    assert threading.current_thread().name.startswith("sync-acts")
    return sum(prices)


# -- plumbing ------------------------------------------------------------------------------


class Reader:
    """Reads every partition of a topic from the beginning, in a thread."""

    def __init__(self, settings: Settings, topic: str, partitions: list[int] | None = None):
        self._consumer = Consumer(
            {
                **settings.kafka_config(),
                "group.id": f"reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
            }
        )
        if partitions is None:
            metadata = self._consumer.list_topics(topic, timeout=10).topics[topic]
            partitions = list(metadata.partitions)
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        self.records: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._consumer.poll(0.05)
            if msg is None or msg.error() is not None:
                continue
            value = msg.value()
            assert isinstance(value, bytes)
            _, datum = schemas.decode(value)
            with self._cond:
                self.records.append(datum)
                self._cond.notify_all()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = WAIT
    ) -> dict[str, Any]:
        def find() -> dict[str, Any]:
            with self._cond:
                found: list[dict[str, Any]] = []

                def match() -> bool:
                    found[:] = [r for r in self.records if predicate(r)]
                    return bool(found)

                if not self._cond.wait_for(match, timeout):
                    raise AssertionError(f"no matching record in {timeout}s: {self.records}")
                return found[0]

        return await asyncio.to_thread(find)


def commands_named(name: str, workflow_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda c: c["workflow_id"] == workflow_id and c["body"][0] == C + name


@pytest.fixture
def topics(settings: Settings) -> Iterator[Settings]:
    TopicAdmin(settings).create(task_queues=[QUEUE])
    yield settings


@pytest.fixture
def commands(topics: Settings) -> Iterator[Reader]:
    reader = Reader(topics, commands_topic(topics))
    yield reader
    reader.close()


class Tasks:
    """Produces tasks as the engine does."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer = Producer(settings.producer_config())

    def workflow(self, task: dict[str, Any]) -> None:
        self._produce(
            workflow_tasks_topic(self.settings, QUEUE),
            task["workflow_id"],
            schemas.encode(schemas.WORKFLOW_TASK, task),
        )

    def activity(self, task: dict[str, Any]) -> None:
        self._produce(
            activity_tasks_topic(self.settings, QUEUE),
            f"{task['workflow_id']}/{task['activity_id']}",
            schemas.encode(schemas.ACTIVITY_TASK, task),
        )

    def _produce(self, topic: str, key: str, value: bytes) -> None:
        self._producer.produce(topic, value, key.encode())
        assert self._producer.flush(10) == 0


@pytest.fixture
def tasks(topics: Settings) -> Tasks:
    return Tasks(topics)


@asynccontextmanager
async def client_for(settings: Settings) -> AsyncIterator[Client]:
    client = await Client.connect(settings=settings)
    try:
        yield client
    finally:
        await client.close()


def ids(n: int) -> dict[str, str]:
    return {"workflow_id": f"order-{n}", "run_id": f"run-{n}"}


def committed(settings: Settings, group_role: str, topic: str) -> int:
    """Sum of the committed offsets of ``topic`` in the group (0 for none)."""
    consumer = Consumer({**settings.kafka_config(), "group.id": "peek-" + uuid.uuid4().hex})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        group = Consumer(
            {**settings.kafka_config(), "group.id": consumer_group(settings, group_role)}
        )
        try:
            offsets = group.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        finally:
            group.close()
        return sum(max(tp.offset, 0) for tp in offsets)
    finally:
        consumer.close()


# -- workflow tasks ------------------------------------------------------------------------


def test_workflow_tasks_schedule_the_activity_then_complete(
    topics: Settings, commands: Reader, tasks: Tasks
) -> None:
    wf = ids(1)

    async def main() -> None:
        async with (
            client_for(topics) as client,
            Worker(client, task_queue=QUEUE, workflows=[GreetingWorkflow]) as worker,
        ):
            assert worker.is_running
            tasks.workflow(
                workflow_task(
                    first_history("GreetingWorkflow", "Ada", task_queue=QUEUE, **wf),
                    task_queue=QUEUE,
                    **wf,
                )
            )
            first = await commands.wait_for(
                commands_named("WorkflowTaskCompleted", wf["workflow_id"])
            )
            assert first["run_id"] == wf["run_id"]
            body = first["body"][1]
            assert body["scheduled_event_id"] == 2 and body["sticky"] is True
            assert body["identity"] == client.identity
            [(name, schedule)] = body["commands"]
            assert name == C + "ScheduleActivityTask"
            assert schedule["activity_type"] == "greet" and value_of(schedule["input"]) == "Ada"

            # The sticky follow-up carries only the new events: the cached run goes on.
            tasks.workflow(
                workflow_task(after_activity(schedule, "Hello, Ada!", **wf), task_queue=QUEUE, **wf)
            )
            second = await commands.wait_for(
                lambda c: (
                    commands_named("WorkflowTaskCompleted", wf["workflow_id"])(c)
                    and c["body"][1]["scheduled_event_id"] == 8
                )
            )
            [(name, complete)] = second["body"][1]["commands"]
            assert name == C + "CompleteWorkflowExecution"
            assert value_of(complete["result"]) == "Hello, Ada!"
        assert worker.is_shutdown and not worker.is_running

    asyncio.run(main())
    # Both tasks were answered, so both offsets were committed before the group was left.
    assert committed(topics, f"workflow-worker.{QUEUE}", workflow_tasks_topic(topics, QUEUE)) == 2


def test_sticky_cache_miss(topics: Settings, commands: Reader, tasks: Tasks) -> None:
    wf = ids(2)
    schedule = {
        "activity_id": "1",
        "activity_type": "greet",
        "task_queue": QUEUE,
        "input": [],
        "start_to_close_timeout_ms": 10_000,
    }

    async def main() -> None:
        async with (
            client_for(topics) as client,
            Worker(client, task_queue=QUEUE, workflows=[GreetingWorkflow]),
        ):
            tasks.workflow(
                workflow_task(after_activity(schedule, "x", **wf), task_queue=QUEUE, **wf)
            )
            failed = await commands.wait_for(
                commands_named("WorkflowTaskFailed", wf["workflow_id"])
            )
            body = failed["body"][1]
            assert body["cause"] == "STICKY_CACHE_MISS"
            assert body["scheduled_event_id"] == 8 and body["attempt"] == 1
            assert failed["run_id"] == wf["run_id"]

    asyncio.run(main())


def test_an_evicted_run_is_reported_so_its_next_task_is_whole(
    topics: Settings, commands: Reader, tasks: Tasks
) -> None:
    first, second = ids(5), ids(6)

    async def main() -> None:
        async with (
            client_for(topics) as client,
            Worker(client, task_queue=QUEUE, workflows=[GreetingWorkflow], max_cached_workflows=1),
        ):
            for wf in (first, second):
                tasks.workflow(
                    workflow_task(
                        first_history("GreetingWorkflow", "Ada", task_queue=QUEUE, **wf),
                        task_queue=QUEUE,
                        **wf,
                    )
                )
                done = await commands.wait_for(
                    commands_named("WorkflowTaskCompleted", wf["workflow_id"])
                )
                assert done["body"][1]["sticky"] is True
            # Caching the second run evicted the first: the engine is told.
            reset = await commands.wait_for(
                commands_named("ResetStickyTaskQueue", first["workflow_id"])
            )
            assert reset["run_id"] == first["run_id"]
        assert not [
            r
            for r in commands.records
            if r["body"][0] == C + "ResetStickyTaskQueue"
            and r["workflow_id"] == second["workflow_id"]
        ]

    asyncio.run(main())


def test_query_task_is_answered_on_replies(
    topics: Settings, commands: Reader, tasks: Tasks
) -> None:
    wf = ids(3)
    partition = 5
    replies = Reader(topics, replies_topic(topics), partitions=[partition])
    query = query_request("current_status", reply_partition=partition)

    async def main() -> None:
        async with (
            client_for(topics) as client,
            Worker(client, task_queue=QUEUE, workflows=[GreetingWorkflow]),
        ):
            history = first_history("GreetingWorkflow", "Ada", task_queue=QUEUE, **wf)
            tasks.workflow(workflow_task(history, query=query, task_queue=QUEUE, **wf))
            reply = await replies.wait_for(
                lambda r: r["request_id"] == query["reply_to"]["request_id"]
            )
            assert (reply["workflow_id"], reply["run_id"]) == (wf["workflow_id"], wf["run_id"])
            name, body = reply["body"]
            assert name == "cadenza.reply.QueryResult"
            assert body["query_id"] == query["query_id"] and body["failure"] is None
            assert value_of(body["result"]) == "greeting"

    try:
        asyncio.run(main())
    finally:
        replies.close()
    assert not [c for c in commands.records if c["workflow_id"] == wf["workflow_id"]]


# -- activity tasks ------------------------------------------------------------------------


def test_activity_tasks_complete_and_fail(topics: Settings, commands: Reader, tasks: Tasks) -> None:
    async def main() -> None:
        with concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="sync-acts") as pool:
            async with (
                client_for(topics) as client,
                Worker(
                    client,
                    task_queue=QUEUE,
                    activities=[greet, decline, sync_total],
                    activity_executor=pool,
                    max_concurrent_activities=4,
                ),
            ):
                tasks.activity(activity_task("greet", "Ada", task_queue=QUEUE, **ids(10)))
                tasks.activity(activity_task("decline", "o-11", task_queue=QUEUE, **ids(11)))
                tasks.activity(activity_task("sync_total", [1, 2, 3], task_queue=QUEUE, **ids(12)))
                tasks.activity(activity_task("missing", task_queue=QUEUE, **ids(13)))

                done = await commands.wait_for(commands_named("ActivityTaskCompleted", "order-10"))
                assert done["run_id"] == "run-10"
                assert done["body"][1]["scheduled_event_id"] == 5
                assert value_of(done["body"][1]["result"]) == "Hello, Ada!"

                failed = await commands.wait_for(commands_named("ActivityTaskFailed", "order-11"))
                failure = failed["body"][1]["failure"]
                assert failure["message"] == "card declined for o-11"
                info_name, info = failure["info"]
                assert info_name == "cadenza.common.ApplicationFailureInfo"
                assert info["type"] == "Declined" and value_of(info["details"]) == {"code": 51}

                total = await commands.wait_for(commands_named("ActivityTaskCompleted", "order-12"))
                assert value_of(total["body"][1]["result"]) == 6

                missing = await commands.wait_for(commands_named("ActivityTaskFailed", "order-13"))
                assert "not registered on this worker" in missing["body"][1]["failure"]["message"]

    asyncio.run(main())
    topic = activity_tasks_topic(topics, QUEUE)
    assert committed(topics, f"activity-worker.{QUEUE}", topic) == 4


@activity.defn
async def slow_until_cancelled() -> str:
    await activity.wait_for_worker_shutdown()
    await asyncio.sleep(60)
    return "not reached"


def test_run_until_shutdown_cancels_running_activities(
    topics: Settings, commands: Reader, tasks: Tasks
) -> None:
    async def main() -> None:
        async with client_for(topics) as client:
            worker = Worker(client, task_queue=QUEUE, activities=[slow_until_cancelled])
            runner = asyncio.get_running_loop().create_task(worker.run())
            tasks.activity(activity_task("slow_until_cancelled", task_queue=QUEUE, **ids(20)))
            deadline = time.monotonic() + WAIT
            while worker._activity_worker is None or worker._activity_worker.running == 0:
                assert time.monotonic() < deadline, "the activity never started"
                await asyncio.sleep(0.05)
            await worker.shutdown()
            await runner  # run() returns once shut down
            failed = await commands.wait_for(commands_named("ActivityTaskFailed", "order-20"))
            assert failed["body"][1]["failure"]["info"][1]["type"] == "WorkerShutdown"

            # The first worker left the group cleanly: a second one gets the partitions at
            # once (not after the session timeout) and takes the next task.
            started = time.monotonic()
            async with Worker(client, task_queue=QUEUE, activities=[greet]):
                tasks.activity(activity_task("greet", "Bo", task_queue=QUEUE, **ids(21)))
                await commands.wait_for(commands_named("ActivityTaskCompleted", "order-21"))
            assert time.monotonic() - started < 20

    asyncio.run(main())


RUNNING: list[int] = [0, 0]  # now, most at once


@activity.defn
async def busy(n: int) -> int:
    RUNNING[0] += 1
    RUNNING[1] = max(RUNNING[1], RUNNING[0])
    try:
        await asyncio.sleep(0.3)
    finally:
        RUNNING[0] -= 1
    return n


def test_max_concurrent_activities_is_respected(
    topics: Settings, commands: Reader, tasks: Tasks
) -> None:
    RUNNING[:] = [0, 0]

    async def main() -> None:
        async with (
            client_for(topics) as client,
            Worker(client, task_queue=QUEUE, activities=[busy], max_concurrent_activities=2),
        ):
            for n in range(6):
                tasks.activity(activity_task("busy", n, task_queue=QUEUE, **ids(30 + n)))
            for n in range(6):
                done = await commands.wait_for(
                    commands_named("ActivityTaskCompleted", f"order-{30 + n}")
                )
                assert value_of(done["body"][1]["result"]) == n

    asyncio.run(main())
    assert RUNNING[1] == 2


@activity.defn
async def cancellable() -> str:
    activity.heartbeat("started")
    await asyncio.sleep(60)
    return "not cancelled"


def test_cancellation_arrives_in_a_heartbeat_reply(
    topics: Settings, commands: Reader, tasks: Tasks
) -> None:
    from tests.integration.test_client_transport import EngineStandIn

    def engine(command: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        if command["body"][0] == C + "ActivityTaskHeartbeat":
            return ("cadenza.reply.HeartbeatResponse", {"cancel_requested": True})
        return None

    async def main() -> None:
        async with (
            client_for(topics) as client,
            Worker(client, task_queue=QUEUE, activities=[cancellable]),
        ):
            tasks.activity(
                activity_task("cancellable", task_queue=QUEUE, heartbeat_timeout_ms=5000, **ids(40))
            )
            heartbeat = await commands.wait_for(commands_named("ActivityTaskHeartbeat", "order-40"))
            assert value_of(heartbeat["body"][1]["details"]) == "started"
            assert heartbeat["reply_to"]["partition"] == client.transport.reply_partition
            canceled = await commands.wait_for(commands_named("ActivityTaskCanceled", "order-40"))
            assert canceled["body"][1]["attempt"] == 1

    with EngineStandIn(topics, engine):
        asyncio.run(main())
