"""Worker construction: validation as temporalio's, options, exports, and the LRU cache."""

from __future__ import annotations

import concurrent.futures
from datetime import timedelta

import pytest
from test_worker_support import FakeClient, GreetingWorkflow, greet

import cadenza.worker
from cadenza import activity, workflow
from cadenza.topics import TopicNameError
from cadenza.worker import Worker
from cadenza.worker._workflow_worker import WorkflowCache


@activity.defn
def sync_greet(name: str) -> str:
    return f"Hi, {name}"


@activity.defn(name="greet")
async def other_greet(name: str) -> str:
    return name


@workflow.defn(name="GreetingWorkflow")
class OtherGreeting:
    @workflow.run
    async def run(self) -> None:
        pass


def test_exports() -> None:
    assert cadenza.worker.__all__ == sorted(cadenza.worker.__all__)
    assert {"Replayer", "Worker", "Interceptor", "WorkflowHistory"} <= set(cadenza.worker.__all__)
    for name in cadenza.worker.__all__:
        module = getattr(cadenza.worker, name).__module__
        # The workflow side's interceptor inputs are made by the workflow runtime.
        assert module.startswith(("cadenza.worker", "cadenza.workflow")), (name, module)


def test_needs_a_workflow_or_an_activity() -> None:
    with pytest.raises(ValueError, match="At least one activity or workflow"):
        Worker(FakeClient(), task_queue="q")


def test_sync_activity_needs_an_executor() -> None:
    with pytest.raises(ValueError, match="activity_executor=concurrent.futures.ThreadPool"):
        Worker(FakeClient(), task_queue="q", activities=[sync_greet])
    with concurrent.futures.ThreadPoolExecutor(100) as executor:
        Worker(FakeClient(), task_queue="q", activities=[sync_greet], activity_executor=executor)


def test_process_pools_are_refused() -> None:
    with (
        concurrent.futures.ProcessPoolExecutor(1) as executor,
        pytest.raises(ValueError, match="ProcessPoolExecutor"),
    ):
        Worker(FakeClient(), task_queue="q", activities=[sync_greet], activity_executor=executor)


def test_small_thread_pool_warns() -> None:
    with (
        concurrent.futures.ThreadPoolExecutor(2) as executor,
        pytest.warns(UserWarning, match="max_workers is only 2"),
    ):
        Worker(FakeClient(), task_queue="q", activities=[sync_greet], activity_executor=executor)


def test_duplicate_names() -> None:
    with pytest.raises(ValueError, match="More than one activity named greet"):
        Worker(FakeClient(), task_queue="q", activities=[greet, other_greet])
    with pytest.raises(ValueError, match="More than one workflow named GreetingWorkflow"):
        Worker(FakeClient(), task_queue="q", workflows=[GreetingWorkflow, OtherGreeting])


def test_undecorated_things_are_refused() -> None:
    class Plain:
        pass

    async def plain() -> None:
        pass

    with pytest.raises(TypeError, match="not decorated with @workflow.defn"):
        Worker(FakeClient(), task_queue="q", workflows=[Plain])
    with pytest.raises(TypeError, match="not decorated with @activity.defn"):
        Worker(FakeClient(), task_queue="q", activities=[plain])


def test_bad_task_queue_and_options() -> None:
    with pytest.raises(TopicNameError):
        Worker(FakeClient(), task_queue="a.b", activities=[greet])
    with pytest.raises(ValueError, match="max_concurrent_activities"):
        Worker(FakeClient(), task_queue="q", activities=[greet], max_concurrent_activities=0)
    with pytest.raises(ValueError, match="max_cached_workflows"):
        Worker(FakeClient(), task_queue="q", activities=[greet], max_cached_workflows=-1)
    with pytest.raises(TypeError, match=r"cadenza.worker.Interceptor instances .* not object"):
        Worker(FakeClient(), task_queue="q", activities=[greet], interceptors=[object()])  # type: ignore[list-item]
    with pytest.raises(NotImplementedError, match="limit each worker with max_activities"):
        Worker(
            FakeClient(), task_queue="q", activities=[greet], max_task_queue_activities_per_second=1
        )
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="max_activities_per_second must be a positive"):
            Worker(FakeClient(), task_queue="q", activities=[greet], max_activities_per_second=bad)
    Worker(FakeClient(), task_queue="q", activities=[greet], max_activities_per_second=0.5)


def test_temporalio_runner_options_are_accepted() -> None:
    """Temporal worker code passes a runner (Cadenza has no sandbox: both mean the same)."""
    from cadenza.worker import SandboxedWorkflowRunner, UnsandboxedWorkflowRunner

    for runner in (UnsandboxedWorkflowRunner(), SandboxedWorkflowRunner(restrictions=None)):
        worker = Worker(
            FakeClient(),
            task_queue="q",
            workflows=[GreetingWorkflow],
            workflow_runner=runner,
            max_concurrent_local_activities=5,
        )
        assert worker.config()["workflow_runner"] is runner
    with pytest.raises(TypeError, match="cadenza.worker.WorkflowRunner"):
        Worker(FakeClient(), task_queue="q", workflows=[GreetingWorkflow], workflow_runner=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_concurrent_local_activities"):
        Worker(
            FakeClient(),
            task_queue="q",
            workflows=[GreetingWorkflow],
            max_concurrent_local_activities=0,
        )


def test_defaults_and_config() -> None:
    client = FakeClient()
    worker = Worker(client, task_queue="q", workflows=[GreetingWorkflow], activities=[greet])
    assert worker.task_queue == "q"
    assert worker.client is client
    assert worker.identity == "test-worker"
    assert not worker.is_running and not worker.is_shutdown
    config = worker.config()
    assert config["max_cached_workflows"] == 1000
    assert config["max_concurrent_activities"] is None
    assert config["graceful_shutdown_timeout"] == timedelta()
    assert config["default_heartbeat_throttle_interval"] == timedelta(seconds=30)
    assert config["max_heartbeat_throttle_interval"] == timedelta(seconds=60)
    assert config["workflows"] == [GreetingWorkflow]
    config["task_queue"] = "other"
    assert worker.config()["task_queue"] == "q"  # a copy
    assert Worker(client, task_queue="q", activities=[greet], identity="me").identity == "me"


def test_shutdown_before_start() -> None:
    import asyncio

    worker = Worker(FakeClient(), task_queue="q", activities=[greet])

    async def scenario() -> None:
        await worker.shutdown()
        await worker.shutdown()
        with pytest.raises(RuntimeError, match="Already shut down"):
            await worker.run()

    asyncio.run(scenario())
    assert worker.is_shutdown


# -- the workflow cache --------------------------------------------------------------------


def test_cache_evicts_the_least_recently_used() -> None:
    cache: WorkflowCache[str] = WorkflowCache(3)
    for run in ("a", "b", "c"):
        assert cache.put(run, run.upper()) == []
    # Using "a" makes "b" the least recently used.
    assert cache.take("a") == "A"
    assert cache.put("a", "A") == []
    assert cache.put("d", "D") == [("b", "B")]
    assert cache.run_ids() == ["c", "a", "d"]
    assert "b" not in cache and len(cache) == 3
    assert cache.peek("c") == "C" and cache.run_ids()[0] == "c"  # peek keeps recency
    cache.drop("c")
    assert cache.run_ids() == ["a", "d"]


def test_taken_instances_are_not_evicted() -> None:
    cache: WorkflowCache[str] = WorkflowCache(1)
    cache.put("a", "A")
    busy = cache.take("a")
    assert cache.put("b", "B") == []  # "a" is out being worked on: nothing to evict
    assert cache.put("a", busy or "") == [("b", "B")]


def test_cache_of_zero_keeps_nothing() -> None:
    cache: WorkflowCache[str] = WorkflowCache(0)
    assert cache.put("a", "A") == [("a", "A")]
    assert len(cache) == 0 and cache.take("a") is None
