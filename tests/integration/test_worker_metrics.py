"""A worker's Prometheus metrics end to end (client -> engine -> worker on the real broker):
the built-in ``temporal_*`` metrics and the ones workflows and activities record through
``metric_meter()``, scraped from the runtime's ``/metrics`` over HTTP.

The worker caches no workflow (``max_cached_workflows=0``), so every workflow task
replays the run from its whole history: what a workflow records must still be
counted once.
"""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from cadenza import Settings, activity, workflow
from cadenza.client import Client, WorkflowFailureError
from cadenza.common import RetryPolicy
from cadenza.exceptions import ApplicationError
from cadenza.runtime import PrometheusConfig, Runtime, TelemetryConfig
from cadenza.worker import Worker

from ..prometheus_text import Exposition, parse
from .sdk_support import event_names, run_scenario

QUEUE = "metered"
STEPS = 3
ATTEMPTS: dict[str, int] = {}


@activity.defn
async def metered_step(step: int) -> int:
    meter = activity.metric_meter()
    meter.create_counter("shop_activity_calls", "Calls of metered_step").add(1)
    meter.create_histogram("shop_step_size").record(step * 100)
    return step


@activity.defn
async def flaky(key: str) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] == 1:
        raise ApplicationError("first attempt fails")
    return "ok"


@workflow.defn
class MeteredWorkflow:
    @workflow.run
    async def run(self, steps: int) -> int:
        meter = workflow.metric_meter().with_additional_attributes({"shop": "main"})
        counter = meter.create_counter("shop_workflow_steps", "Steps taken by workflows")
        total = 0
        for step in range(1, steps + 1):
            counter.add(1)
            total += await workflow.execute_activity(
                metered_step, step, start_to_close_timeout=timedelta(seconds=10)
            )
        meter.create_histogram_float("shop_workflow_total").record(float(total))
        return total

    @workflow.query
    def ping(self) -> str:
        return "pong"


@workflow.defn
class FailingWorkflow:
    @workflow.run
    async def run(self) -> None:
        raise ApplicationError("asked to fail", non_retryable=True)


@workflow.defn
class FlakyWorkflow:
    @workflow.run
    async def run(self, key: str) -> str:
        return await workflow.execute_activity(
            flaky,
            key,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _scrape(port: int) -> Exposition:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(response.read().decode())


async def _eventually(port: int, ready: Callable[[Exposition], bool]) -> Exposition:
    """The page once ``ready`` holds (the worker records an answer after writing it)."""
    page = await asyncio.to_thread(_scrape, port)
    for _ in range(100):
        if ready(page):
            return page
        await asyncio.sleep(0.1)
        page = await asyncio.to_thread(_scrape, port)
    return page


def test_worker_metrics_on_prometheus(settings: Settings, tmp_path: Path) -> None:
    port = _free_port()
    runtime = Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}"))
    )
    key = f"flaky-{settings.namespace}"

    async def scenario(default_client: Client) -> Exposition:
        client = await Client.connect(settings=settings, runtime=runtime)
        assert client.runtime is runtime
        try:
            async with Worker(
                client,
                task_queue=QUEUE,
                workflows=[MeteredWorkflow, FailingWorkflow, FlakyWorkflow],
                activities=[metered_step, flaky],
                max_cached_workflows=0,  # every task replays the run from its start
            ):
                metered = [
                    await client.start_workflow(
                        MeteredWorkflow.run, STEPS, id=f"metered-{i}", task_queue=QUEUE
                    )
                    for i in range(2)
                ]
                failing = await client.start_workflow(
                    FailingWorkflow.run, id="failing", task_queue=QUEUE
                )
                flaky_run = await client.start_workflow(
                    FlakyWorkflow.run, key, id="flaky", task_queue=QUEUE
                )
                for handle in metered:
                    assert await handle.result() == 1 + 2 + 3
                with pytest.raises(WorkflowFailureError):
                    await failing.result()
                assert await flaky_run.result() == "ok"
                # A query on a closed run replays it on the worker: nothing is counted.
                assert await metered[0].query(MeteredWorkflow.ping) == "pong"

                tasks = 0
                for handle in [*metered, failing, flaky_run]:
                    tasks += (await event_names(handle)).count("WorkflowTaskCompleted")

                def settled(page: Exposition) -> bool:
                    counts = [
                        v
                        for (name, _), v in page.samples.items()
                        if name == "temporal_workflow_task_execution_latency_count"
                    ]
                    done = [
                        v
                        for (name, _), v in page.samples.items()
                        if name == "temporal_activity_execution_latency_count"
                    ]
                    used = [
                        v
                        for (name, _), v in page.samples.items()
                        if name == "temporal_worker_task_slots_used"
                    ]
                    return (
                        sum(counts) == tasks
                        and sum(done) == 2 * STEPS + 2
                        and len(used) == 2
                        and sum(used) == 0
                    )

                page = await _eventually(port, settled)
                _check(page, settings.namespace, tasks)
                return page
        finally:
            await client.close()

    try:
        run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE], timeout=90)
    finally:
        assert runtime._server is not None
        runtime._server.close()


def _check(page: Exposition, namespace: str, tasks: int) -> None:
    common = {"namespace": namespace, "task_queue": QUEUE, "service_name": "cadenza-sdk"}

    def value(name: str, **labels: str) -> float:
        return page.value(name, **common, **labels)

    # Closing commands, by workflow type.
    assert value("temporal_workflow_completed", workflow_type="MeteredWorkflow") == 2
    assert value("temporal_workflow_completed", workflow_type="FlakyWorkflow") == 1
    assert value("temporal_workflow_failed", workflow_type="FailingWorkflow") == 1
    assert page.labels("temporal_workflow_canceled") == []
    assert page.types["temporal_workflow_completed"] == "counter"
    assert value("temporal_workflow_endtoend_latency_count", workflow_type="MeteredWorkflow") == 2
    assert page.types["temporal_workflow_endtoend_latency"] == "histogram"

    # Every live workflow task, once: as many as the histories' WorkflowTaskCompleted.
    per_type = {
        labels["workflow_type"]: page.samples[(name, frozenset(labels.items()))]
        for name in ["temporal_workflow_task_execution_latency_count"]
        for labels in page.labels(name)
    }
    assert sum(per_type.values()) == tasks
    assert per_type["MeteredWorkflow"] == 2 * (STEPS + 1)
    schedule_to_start = "temporal_workflow_task_schedule_to_start_latency_count"
    assert value(schedule_to_start, workflow_type="FailingWorkflow") >= 1
    assert page.labels("temporal_workflow_task_execution_failed") == []

    # Activities: one failed attempt of flaky, then its success; every attempt timed.
    activity_labels = {"activity_type": "flaky", "workflow_type": "FlakyWorkflow"}
    assert value("temporal_activity_execution_failed", **activity_labels) == 1
    assert value("temporal_activity_execution_latency_count", **activity_labels) == 2
    assert value("temporal_activity_schedule_to_start_latency_count", **activity_labels) == 2
    assert value("temporal_activity_succeed_endtoend_latency_count", **activity_labels) == 1
    metered_labels = {"activity_type": "metered_step", "workflow_type": "MeteredWorkflow"}
    assert value("temporal_activity_execution_latency_count", **metered_labels) == 2 * STEPS
    assert page.labels("temporal_activity_execution_failed") == [{**common, **activity_labels}]

    # The worker: started once, nothing cached (max_cached_workflows=0), slots free again.
    assert value("temporal_worker_start") == 1
    assert value("temporal_sticky_cache_size") == 0
    assert page.labels("temporal_sticky_cache_hit") == []
    for worker_type in ("WorkflowWorker", "ActivityWorker"):
        assert value("temporal_worker_task_slots_available", worker_type=worker_type) == 100
        assert value("temporal_worker_task_slots_used", worker_type=worker_type) == 0

    # What the code recorded: once per step, however often each task was replayed.
    assert value("shop_workflow_steps", workflow_type="MeteredWorkflow", shop="main") == 2 * STEPS
    assert page.help["shop_workflow_steps"] == "Steps taken by workflows"
    assert value("shop_workflow_total_count", workflow_type="MeteredWorkflow") == 2
    assert value("shop_workflow_total_sum", workflow_type="MeteredWorkflow") == 2 * 6
    assert value("shop_activity_calls", activity_type="metered_step") == 2 * STEPS
    assert value("shop_step_size_sum", activity_type="metered_step") == 2 * 600
    assert page.buckets("shop_step_size", activity_type="metered_step")["100"] == 2
    assert not any(name.startswith("temporal_") for name, _ in page.samples if "shop" in name)
