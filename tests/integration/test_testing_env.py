"""cadenza.testing.WorkflowEnvironment: a month-long sleep completes in moments."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta

from cadenza import Settings, workflow
from cadenza.testing import WorkflowEnvironment
from cadenza.topics import TopicAdmin, namespace_topics
from cadenza.worker import Worker


@workflow.defn
class MonthlyReminder:
    @workflow.run
    async def run(self) -> str:
        start = workflow.now()
        await workflow.sleep(timedelta(days=30))
        await asyncio.sleep(3600)  # plain asyncio.sleep is a durable timer too
        return str(workflow.now() - start)


def test_time_skipping_environment(kafka_settings: Settings) -> None:
    async def main() -> None:
        async with await WorkflowEnvironment.start_time_skipping(settings=kafka_settings) as env:
            assert env.supports_time_skipping
            before = env.get_current_time()
            async with Worker(env.client, task_queue="q", workflows=[MonthlyReminder]):
                result = await env.client.execute_workflow(
                    MonthlyReminder.run, id="remind", task_queue="q"
                )
            # Skipped time plus the few real seconds the test itself took.
            assert result.startswith("30 days, 1:00:0"), result
            assert env.get_current_time() - before >= timedelta(days=30, hours=1)

    asyncio.run(asyncio.wait_for(main(), 60))


def test_real_time_environment_does_not_skip(kafka_settings: Settings) -> None:
    async def main() -> None:
        async with await WorkflowEnvironment.start_local(settings=kafka_settings) as env:
            assert not env.supports_time_skipping
            async with Worker(env.client, task_queue="q", workflows=[MonthlyReminder]):
                handle = await env.client.start_workflow(
                    MonthlyReminder.run, id="remind", task_queue="q"
                )
                await asyncio.sleep(1)
                assert (await handle.describe()).status.name == "RUNNING"
                # The environment runs the visibility projection too (eventually consistent).
                for _ in range(100):
                    count = await env.client.count_workflows("ExecutionStatus = 'Running'")
                    if count.count == 1:
                        break
                    await asyncio.sleep(0.1)
                assert count.count == 1

    asyncio.run(asyncio.wait_for(main(), 60))


def test_an_environment_deletes_the_namespace_it_made_up(kafka_settings: Settings) -> None:
    """A suite starts many environments: each made-up namespace's topics go at shutdown,
    a namespace given by name stays."""

    def topics_of(namespace: str) -> list[str]:
        return TopicAdmin(
            dataclasses.replace(kafka_settings, namespace=namespace)
        ).namespace_topic_names()

    async def main() -> None:
        async with await WorkflowEnvironment.start_local(settings=kafka_settings) as env:
            made_up = env.client.namespace
            # The catalog's topics (no task queue yet) exist while it runs.
            assert len(topics_of(made_up)) == len(namespace_topics(kafka_settings))
        assert topics_of(made_up) == []
        named = f"keep-{uuid.uuid4().hex[:8]}"
        async with await WorkflowEnvironment.start_local(settings=kafka_settings, namespace=named):
            pass
        try:
            assert len(topics_of(named)) == len(namespace_topics(kafka_settings))
        finally:
            TopicAdmin(dataclasses.replace(kafka_settings, namespace=named)).delete_namespace()

    asyncio.run(asyncio.wait_for(main(), 90))
