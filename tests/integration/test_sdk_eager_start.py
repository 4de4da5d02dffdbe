"""Eager workflow start on the real broker: the first workflow task comes back in the
start's reply to the client's own worker and never goes through the task queue's
topic; without such a worker the start is an ordinary one; a task lost with its
process (a real SIGKILL) times out and its next attempt goes through the topic."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import timedelta
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from cadenza import Settings, activity, workflow
from cadenza.client import Client
from cadenza.topics import workflow_tasks_topic
from cadenza.worker import Worker

from .sdk_support import event_names, run_scenario
from .worker_process import spawn

QUEUE = "sdk-eager-start"


@activity.defn
async def shout(text: str) -> str:
    return text.upper()


@workflow.defn(name="EagerStarted")
class EagerStarted:
    @workflow.run
    async def run(self, name: str) -> str:
        loud = await workflow.execute_activity(
            shout, name, start_to_close_timeout=timedelta(seconds=10)
        )
        return f"hello {loud}"


def tasks_on_topic(settings: Settings) -> int:
    """Offsets ever taken on the queue's workflow-tasks topic, all partitions (each
    task and its transaction's commit marker take one each)."""
    topic = workflow_tasks_topic(settings, QUEUE)
    consumer = Consumer(
        {"bootstrap.servers": settings.resolved_bootstrap_servers, "group.id": "eager-probe"}
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        total = 0
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def test_an_eager_start_runs_its_first_task_on_the_clients_own_worker(
    settings: Settings, tmp_path: Path
) -> None:
    async def scenario(client: Client) -> None:
        async with Worker(
            client, task_queue=QUEUE, workflows=[EagerStarted], activities=[shout]
        ) as worker:
            result = await client.execute_workflow(
                EagerStarted.run,
                "kafka",
                id="eager-1",
                task_queue=QUEUE,
                request_eager_start=True,
            )
            handle = await client.start_workflow(
                EagerStarted.run,
                "again",
                id="eager-2",
                task_queue=QUEUE,
                request_eager_start=True,
            )
            assert await handle.result() == "hello AGAIN"
            names = await event_names(handle)
            workflow_worker = worker._workflow_worker
            assert workflow_worker is not None
            eager_started = workflow_worker.eager_started
        assert result == "hello KAFKA"
        assert eager_started == 2
        assert names[:4] == [
            "WorkflowExecutionStarted",
            "WorkflowTaskScheduled",
            "WorkflowTaskStarted",
            "WorkflowTaskCompleted",
        ]
        assert names[-1] == "WorkflowExecutionCompleted"
        # The first tasks never went through Kafka; the activity's follow-up task was
        # continued by the worker (eager activity), so the topic saw no task at all.
        assert tasks_on_topic(settings) == 0

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])


def test_an_eager_start_without_a_local_worker_is_an_ordinary_start(
    settings: Settings, tmp_path: Path
) -> None:
    async def scenario(client: Client) -> None:
        other = await Client.connect(settings=settings)  # the worker's, not the starter's
        try:
            async with Worker(
                other, task_queue=QUEUE, workflows=[EagerStarted], activities=[shout]
            ):
                result = await client.execute_workflow(
                    EagerStarted.run,
                    "plain",
                    id="eager-3",
                    task_queue=QUEUE,
                    request_eager_start=True,
                )
        finally:
            await other.close()
        assert result == "hello PLAIN"
        assert tasks_on_topic(settings) > 0  # the first task, through the topic

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])


def test_an_eager_task_lost_with_its_process_is_retried_through_the_topic(
    settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "eager-process.log"

    async def scenario(client: Client) -> None:
        process = spawn(settings, QUEUE, log, "--eager-start-and-die", "eager-lost")
        try:
            # Its workflow code kills it (SIGKILL) in the eagerly started first task.
            code = await asyncio.to_thread(process.wait, 60)
            assert code == -signal.SIGKILL, f"exit {code}\n{log.read_text()}"
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
        assert tasks_on_topic(settings) == 0  # the task it died with came in the reply

        handle = client.get_workflow_handle("eager-lost")
        async with Worker(client, task_queue=QUEUE, workflows=[EagerStarted], activities=[shout]):
            assert await handle.result() == "hello EAGER"
        names = await event_names(handle)
        assert "WorkflowTaskTimedOut" in names, names
        assert tasks_on_topic(settings) > 0  # attempt 2, after the 2 s task timeout

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE], timeout=90)
