"""Activity behaviour end to end (client -> engine -> worker on the real broker): retries
and their backoff, every timeout, heartbeat details across attempts, cancellation and
parallel activities, with temporalio's semantics."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from cadenza import Settings, activity, workflow
from cadenza.client import Client, WorkflowFailureError
from cadenza.common import RetryPolicy
from cadenza.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    RetryState,
    TimeoutError,
    TimeoutType,
)
from cadenza.topics import TopicAdmin, activity_tasks_topic, workflow_tasks_topic
from cadenza.worker import Replayer, Worker

from .engine_support import running_engine
from .sdk_support import attributes, event_name, event_names, run_scenario, wait_until

QUEUE = "sdk-activities"

# Activities record what they saw here, keyed by workflow id (tests never share one).
STARTS: dict[str, list[float]] = defaultdict(list)
FAILS: dict[str, list[float]] = defaultdict(list)
SEEN: dict[str, list[str]] = defaultdict(list)


def workflow_id() -> str:
    """The id of the workflow that runs the current activity."""
    return activity.info().workflow_id or ""


# -- activities ----------------------------------------------------------------------------


@activity.defn
async def fails_three_times() -> int:
    info = activity.info()
    STARTS[workflow_id()].append(time.monotonic())
    if info.attempt <= 3:
        FAILS[workflow_id()].append(time.monotonic())
        raise ApplicationError(f"attempt {info.attempt} failed")
    return info.attempt


@activity.defn
async def sleeps(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "woke up"


@activity.defn
async def fails_then_sleeps() -> str:
    if activity.info().attempt == 1:
        raise ApplicationError("attempt 1 failed", type="Flaky")
    await asyncio.sleep(30)
    return "too late"


@activity.defn
async def heartbeats_then_hangs() -> str:
    activity.heartbeat("beat-1")
    await asyncio.sleep(0.1)
    activity.heartbeat("beat-2")
    await asyncio.sleep(30)  # no more heartbeats
    return "too late"


@activity.defn
async def resumable() -> str:
    info = activity.info()
    SEEN[workflow_id()].append(f"attempt {info.attempt} details {list(info.heartbeat_details)}")
    if info.attempt == 1:
        activity.heartbeat("step-1")
        activity.heartbeat("step-2")
        raise ApplicationError("crashed after step 2")
    return f"resumed from {info.heartbeat_details[0]} on attempt {info.attempt}"


@activity.defn
async def waits_for_cancel() -> str:
    seen = SEEN[workflow_id()]
    seen.append("started")
    try:
        while True:
            activity.heartbeat()
            await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        seen.append("cancelled")
        raise


@activity.defn
async def echo(text: str) -> str:
    return text


GATES: dict[str, asyncio.Event] = defaultdict(asyncio.Event)


@activity.defn
async def gated() -> str:
    """Returns once the test opens its workflow's gate."""
    await GATES[workflow_id()].wait()
    return "done"


@activity.defn
async def square(n: int) -> int:
    STARTS[workflow_id()].append(time.monotonic())
    await asyncio.sleep(0.5)
    return n * n


# -- workflows -----------------------------------------------------------------------------


@workflow.defn
class RetryWorkflow:
    @workflow.run
    async def run(self) -> int:
        return await workflow.execute_activity(
            fails_three_times,
            start_to_close_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=200),
                backoff_coefficient=2.0,
                maximum_attempts=5,
            ),
        )


@workflow.defn
class StartToCloseWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            sleeps,
            5.0,
            start_to_close_timeout=timedelta(milliseconds=500),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


@workflow.defn
class ScheduleToCloseWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            fails_then_sleeps,
            schedule_to_close_timeout=timedelta(milliseconds=1500),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )


@workflow.defn
class HeartbeatTimeoutWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            heartbeats_then_hangs,
            start_to_close_timeout=timedelta(seconds=10),
            heartbeat_timeout=timedelta(milliseconds=500),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


@workflow.defn
class ResumeWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            resumable,
            start_to_close_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )


@workflow.defn
class CancelActivityWorkflow:
    @workflow.run
    async def run(self, cancellation_type: str) -> str:
        handle = workflow.start_activity(
            waits_for_cancel,
            start_to_close_timeout=timedelta(seconds=20),
            heartbeat_timeout=timedelta(seconds=1),
            cancellation_type=workflow.ActivityCancellationType[cancellation_type],
        )
        await workflow.sleep(0.5)
        handle.cancel()
        try:
            await handle
        except ActivityError as err:
            assert isinstance(err.cause, CancelledError), repr(err.cause)
            return f"{type(err).__name__} caused by {type(err.cause).__name__}"
        return "not cancelled"


@workflow.defn
class FanOutWorkflow:
    @workflow.run
    async def run(self) -> list[int]:
        return list(
            await asyncio.gather(
                *(
                    workflow.execute_activity(
                        square, n, start_to_close_timeout=timedelta(seconds=10)
                    )
                    for n in range(10)
                )
            )
        )


@workflow.defn
class FirstOfWorkflow:
    @workflow.run
    async def run(self) -> list[str]:
        handles = [
            workflow.start_activity(sleeps, s, start_to_close_timeout=timedelta(seconds=10))
            for s in (0.2, 5.0)
        ]
        done, pending = await workflow.wait(handles, return_when=asyncio.FIRST_COMPLETED)
        outcome = [f"done={len(done)}", f"pending={len(pending)}"]
        outcome.append(f"first={handles[0] in done}")
        outcome.append(f"result={await next(iter(done))}")
        for handle in pending:
            handle.cancel()
        done, pending = await workflow.wait(pending)
        outcome.append(f"cancelled={sum(1 for h in done if h.exception() is not None)}")
        return outcome


@workflow.defn
class StepsWorkflow:
    @workflow.run
    async def run(self) -> list[int]:
        """Three activities one after another; workflow.now() after each."""
        times = []
        for n in range(3):
            await workflow.execute_activity(
                echo, str(n), start_to_close_timeout=timedelta(seconds=10)
            )
            times.append(int(workflow.now().timestamp() * 1000))
        return times


@workflow.defn
class NotedStepsWorkflow:
    def __init__(self) -> None:
        self.notes: list[str] = []

    @workflow.signal
    def note(self, text: str) -> None:
        self.notes.append(text)

    @workflow.run
    async def run(self) -> list[str]:
        """What the workflow knew when its gated activity returned."""
        first = await workflow.execute_activity(gated, start_to_close_timeout=timedelta(seconds=30))
        known = list(self.notes)
        await workflow.execute_activity(echo, "x", start_to_close_timeout=timedelta(seconds=10))
        return [first, *known]


@workflow.defn
class NotedThenWaitsWorkflow(NotedStepsWorkflow):
    """Like ``NotedStepsWorkflow``, but it waits for a note after the gated activity
    instead of running another one: the instance that ran ahead stays cached."""

    @workflow.run
    async def run(self) -> list[str]:
        first = await workflow.execute_activity(gated, start_to_close_timeout=timedelta(seconds=30))
        known = list(self.notes)
        await workflow.wait_condition(lambda: bool(self.notes))
        return [first, *known]


@workflow.defn
class LocalWorkflow:
    @workflow.run
    async def run(self, text: str) -> str:
        result: str = await workflow.execute_local_activity(
            echo, text, start_to_close_timeout=timedelta(seconds=10)
        )
        return result


WORKFLOWS = [
    LocalWorkflow,
    StepsWorkflow,
    NotedStepsWorkflow,
    NotedThenWaitsWorkflow,
    RetryWorkflow,
    StartToCloseWorkflow,
    ScheduleToCloseWorkflow,
    HeartbeatTimeoutWorkflow,
    ResumeWorkflow,
    CancelActivityWorkflow,
    FanOutWorkflow,
    FirstOfWorkflow,
]
ACTIVITIES: list[Callable[..., Any]] = [
    echo,
    gated,
    fails_three_times,
    sleeps,
    fails_then_sleeps,
    heartbeats_then_hangs,
    resumable,
    waits_for_cancel,
    square,
]


def worker(client: Client) -> Worker:
    return Worker(client, task_queue=QUEUE, workflows=WORKFLOWS, activities=ACTIVITIES)


def activity_failure(err: pytest.ExceptionInfo[WorkflowFailureError]) -> ActivityError:
    cause = err.value.cause
    assert isinstance(cause, ActivityError), repr(cause)
    return cause


# -- tests ---------------------------------------------------------------------------------


def test_retry_backs_off_per_the_policy_until_success(settings: Settings, tmp_path: Path) -> None:
    async def scenario(client: Client) -> None:
        async with worker(client):
            got = await client.execute_workflow(RetryWorkflow.run, id="retry", task_queue=QUEUE)
        assert got == 4, "the fourth attempt succeeds and sees activity.info().attempt == 4"
        starts, fails = STARTS["retry"], FAILS["retry"]
        assert len(starts) == 4 and len(fails) == 3
        # initial_interval 200 ms, coefficient 2: 200, 400, 800 ms between a failure and
        # the next attempt (never earlier; later only by dispatch latency).
        for n, expected in enumerate((0.2, 0.4, 0.8)):
            gap = starts[n + 1] - fails[n]
            assert expected - 0.02 <= gap <= expected + 1.5, (
                f"delay before attempt {n + 2} was {gap:.3f}s, the policy says {expected}s"
            )
        history = await client.get_workflow_handle("retry").fetch_history()
        started = [e for e in history.events if e["attributes"][0].endswith("ActivityTaskStarted")]
        assert [e["attributes"][1]["attempt"] for e in started] == [4]

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])


def test_start_to_close_timeout(settings: Settings, tmp_path: Path) -> None:
    async def scenario(client: Client) -> None:
        async with worker(client):
            began = time.monotonic()
            with pytest.raises(WorkflowFailureError) as failed:
                await client.execute_workflow(StartToCloseWorkflow.run, id="s2c", task_queue=QUEUE)
            elapsed = time.monotonic() - began
        error = activity_failure(failed)
        assert error.retry_state is RetryState.MAXIMUM_ATTEMPTS_REACHED
        assert isinstance(error.cause, TimeoutError), repr(error.cause)
        assert error.cause.type is TimeoutType.START_TO_CLOSE
        assert 0.5 <= elapsed < 4, f"timed out after {elapsed:.2f}s, the timeout is 0.5s"
        names = await event_names(client.get_workflow_handle("s2c"))
        assert "ActivityTaskTimedOut" in names and names[-1] == "WorkflowExecutionFailed"

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])


def test_schedule_to_close_timeout(settings: Settings, tmp_path: Path) -> None:
    async def scenario(client: Client) -> None:
        async with worker(client):
            began = time.monotonic()
            with pytest.raises(WorkflowFailureError) as failed:
                await client.execute_workflow(
                    ScheduleToCloseWorkflow.run, id="sched2c", task_queue=QUEUE
                )
            elapsed = time.monotonic() - began
        error = activity_failure(failed)
        assert error.retry_state is RetryState.TIMEOUT
        assert isinstance(error.cause, TimeoutError), repr(error.cause)
        assert error.cause.type is TimeoutType.SCHEDULE_TO_CLOSE
        # As in Temporal, the timeout carries the last attempt's failure as its cause.
        last = error.cause.cause
        assert isinstance(last, ApplicationError) and last.type == "Flaky", repr(last)
        assert 1.5 <= elapsed < 5, f"timed out after {elapsed:.2f}s, the timeout is 1.5s"

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])


def test_heartbeat_timeout(settings: Settings, tmp_path: Path) -> None:
    async def scenario(client: Client) -> None:
        async with worker(client):
            began = time.monotonic()
            with pytest.raises(WorkflowFailureError) as failed:
                await client.execute_workflow(
                    HeartbeatTimeoutWorkflow.run, id="hb", task_queue=QUEUE
                )
            elapsed = time.monotonic() - began
        error = activity_failure(failed)
        assert error.retry_state is RetryState.MAXIMUM_ATTEMPTS_REACHED
        assert isinstance(error.cause, TimeoutError), repr(error.cause)
        assert error.cause.type is TimeoutType.HEARTBEAT
        assert list(error.cause.last_heartbeat_details) == ["beat-2"]
        # The last heartbeat reaches the engine at ~0.4 s (throttled to 80% of the
        # timeout), so the timeout fires at ~0.9 s: long before start-to-close (10 s).
        assert 0.5 <= elapsed < 5, f"timed out after {elapsed:.2f}s"

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])


def test_heartbeat_details_reach_the_next_attempt(settings: Settings, tmp_path: Path) -> None:
    async def scenario(client: Client) -> None:
        async with worker(client):
            got = await client.execute_workflow(ResumeWorkflow.run, id="resume", task_queue=QUEUE)
        assert got == "resumed from step-2 on attempt 2"
        assert SEEN["resume"] == ["attempt 1 details []", "attempt 2 details ['step-2']"]

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])


@pytest.mark.parametrize("cancellation_type", ["TRY_CANCEL", "WAIT_CANCELLATION_COMPLETED"])
def test_activity_cancellation(settings: Settings, tmp_path: Path, cancellation_type: str) -> None:
    wf_id = f"cancel-{cancellation_type}"

    async def scenario(client: Client) -> None:
        async with worker(client):
            began = time.monotonic()
            got = await client.execute_workflow(
                CancelActivityWorkflow.run, cancellation_type, id=wf_id, task_queue=QUEUE
            )
            # The activity learns of the cancellation from a heartbeat reply (throttled to
            # 0.8 s with a 1 s heartbeat timeout); TRY_CANCEL does not wait for that.
            await wait_until(
                lambda: "cancelled" in SEEN[wf_id],
                timeout=5,
                what="the activity seeing asyncio.CancelledError",
            )
            elapsed = time.monotonic() - began
            names = await event_names(client.get_workflow_handle(wf_id))
        assert got == "ActivityError caused by CancelledError"
        assert SEEN[wf_id] == ["started", "cancelled"]
        assert elapsed < 6
        assert "ActivityTaskCancelRequested" in names
        if cancellation_type == "WAIT_CANCELLATION_COMPLETED":
            # The workflow went on only once the activity acknowledged its cancellation.
            assert names.index("ActivityTaskCanceled") < names.index("WorkflowExecutionCompleted")

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])


def test_parallel_activities_with_gather_and_wait(settings: Settings, tmp_path: Path) -> None:
    async def scenario(client: Client) -> None:
        async with worker(client):
            began = time.monotonic()
            got = await client.execute_workflow(FanOutWorkflow.run, id="fan", task_queue=QUEUE)
            elapsed = time.monotonic() - began
            first = await client.execute_workflow(FirstOfWorkflow.run, id="first", task_queue=QUEUE)
        assert got == [n * n for n in range(10)]
        starts = STARTS["fan"]
        assert len(starts) == 10
        # Ten 0.5 s activities one after another would start over 4.5 s and take 5 s.
        assert max(starts) - min(starts) < 2, f"started over {max(starts) - min(starts):.2f}s"
        assert elapsed < 4.5, f"10 parallel 0.5 s activities took {elapsed:.2f}s"
        assert first == ["done=1", "pending=1", "first=True", "result=woke up", "cancelled=1"]

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])


def test_a_worker_starts_activities_at_most_max_activities_per_second(
    settings: Settings, tmp_path: Path
) -> None:
    """The same ten parallel activities through a worker limited to 4 a second: the
    starts are at least 0.25 s apart; one is eager (the others would exceed the
    rate at once, so they go through the queue)."""

    async def scenario(client: Client) -> list[bool]:
        async with Worker(
            client,
            task_queue=QUEUE,
            workflows=WORKFLOWS,
            activities=ACTIVITIES,
            max_activities_per_second=4,
        ):
            got = await client.execute_workflow(FanOutWorkflow.run, id="paced", task_queue=QUEUE)
        assert got == [n * n for n in range(10)]
        history = await client.get_workflow_handle("paced").fetch_history()
        return [
            attributes(e)["eager_execution"]
            for e in history.events
            if event_name(e) == "ActivityTaskScheduled"
        ]

    flags = run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])
    starts = sorted(STARTS["paced"])
    assert len(starts) == 10
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.24, [round(g, 3) for g in gaps]
    assert flags == [True] + [False] * 9, flags
    assert _dispatched(settings) == 9


# -- eager execution -------------------------------------------------------------------------


def _dispatched(
    settings: Settings, name_of: Callable[[Settings, str], str] = activity_tasks_topic
) -> int:
    """Records on the queue's activity-tasks topic (tasks that went through Kafka), or
    another of its topics.

    Counted by reading them: offsets also count the engine's transaction markers."""
    consumer = Consumer(
        {**settings.kafka_config(), "group.id": "eager-check", "enable.auto.commit": False}
    )
    try:
        topic = name_of(settings, QUEUE)
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        count, idle = 0, 0
        while idle < 2:  # all was written before the workflow completed
            got = consumer.consume(100, 1.0)
            count += sum(1 for m in got if m.error() is None)
            idle = 0 if got else idle + 1
        return count
    finally:
        consumer.close()


@pytest.mark.parametrize("disabled", [False, True], ids=["eager", "disabled"])
def test_activities_on_the_workers_own_queue_start_eagerly(
    settings: Settings, tmp_path: Path, disabled: bool
) -> None:
    # Ten parallel activities in one task: the worker starts three itself (Temporal's
    # limit per task), the engine dispatches the other seven through Kafka.
    async def scenario(client: Client) -> list[bool]:
        async with Worker(
            client,
            task_queue=QUEUE,
            workflows=WORKFLOWS,
            activities=ACTIVITIES,
            disable_eager_activity_execution=disabled,
        ):
            got = await client.execute_workflow(FanOutWorkflow.run, id="eager", task_queue=QUEUE)
        assert got == [n * n for n in range(10)]
        history = await client.get_workflow_handle("eager").fetch_history()
        return [
            attributes(e)["eager_execution"]
            for e in history.events
            if event_name(e) == "ActivityTaskScheduled"
        ]

    flags = run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])
    assert flags == ([False] * 10 if disabled else [True] * 3 + [False] * 7)
    assert _dispatched(settings) == (10 if disabled else 7)


def test_a_local_activity_runs_on_the_workflows_worker_at_once(
    settings: Settings, tmp_path: Path
) -> None:
    """Temporal's local activity, as Cadenza runs it: an eager activity of the
    workflow's own queue, never dispatched through Kafka."""

    async def scenario(client: Client) -> list[bool]:
        async with worker(client):
            got = await client.execute_workflow(
                LocalWorkflow.run, "near", id="local", task_queue=QUEUE
            )
        assert got == "near"
        history = await client.get_workflow_handle("local").fetch_history()
        return [
            attributes(e)["eager_execution"]
            for e in history.events
            if event_name(e) == "ActivityTaskScheduled"
        ]

    assert run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE]) == [True]
    assert _dispatched(settings) == 0


# -- continuing the workflow after an eager activity -------------------------------------------


def test_the_worker_continues_the_workflow_after_each_eager_activity(
    settings: Settings, tmp_path: Path
) -> None:
    """The engine dispatches only the first workflow task: after each activity, the worker
    runs the next task itself and sends it with the result. History is what it would
    have been, down to the task times workflow.now() read, and replays."""

    async def scenario(client: Client) -> tuple[list[int], Any, int, int]:
        async with Worker(
            client, task_queue=QUEUE, workflows=WORKFLOWS, activities=ACTIVITIES
        ) as running:
            times = await client.execute_workflow(StepsWorkflow.run, id="steps", task_queue=QUEUE)
            assert running._workflow_worker is not None
            continued = running._workflow_worker.continued
            misses = running._workflow_worker.sticky_cache_misses
        history = await client.get_workflow_handle("steps").fetch_history()
        return times, history, continued, misses

    times, history, continued, misses = run_scenario(
        settings, tmp_path, scenario, task_queues=[QUEUE]
    )
    assert (continued, misses) == (3, 0)
    assert _dispatched(settings, workflow_tasks_topic) == 1
    names = [event_name(e) for e in history.events]
    assert names.count("ActivityTaskCompleted") == 3 and names[-1] == "WorkflowExecutionCompleted"
    started = [e["event_time_ms"] for e in history.events if event_name(e) == "WorkflowTaskStarted"]
    assert times == started[1:]
    replayed = asyncio.run(Replayer(workflows=[StepsWorkflow]).replay_workflow(history))
    assert replayed.replay_failure is None


@pytest.mark.parametrize("noted", [NotedStepsWorkflow, NotedThenWaitsWorkflow])
def test_a_continuation_behind_a_signal_is_not_taken_and_the_worker_replays(
    settings: Settings, tmp_path: Path, noted: type[NotedStepsWorkflow]
) -> None:
    """The signal reaches the engine after the activity was scheduled and before the
    worker's continuation (the engine is stopped meanwhile to make sure of the order).
    The continuation assumed no signal: the engine records the outcome alone, and the
    worker, whose instance ran ahead, replays and sees the signal before the result.
    (``NotedThenWaitsWorkflow``'s instance is still cached when the engine's task
    comes: only the worker's note that it ran ahead keeps it from being used.)"""
    TopicAdmin(settings).create(task_queues=[QUEUE])
    data_dir = str(tmp_path / "engine")

    async def scenario() -> tuple[list[str], int, int]:
        client = await Client.connect(settings=settings)
        engine = contextlib.ExitStack()
        engine.enter_context(running_engine(settings, data_dir))
        try:
            async with Worker(
                client, task_queue=QUEUE, workflows=WORKFLOWS, activities=ACTIVITIES
            ) as running:
                wf = running._workflow_worker
                assert wf is not None
                # An id of its own per workflow class: GATES outlives the test.
                wid = f"noted-{noted.__name__}"
                handle = await client.start_workflow(noted.run, id=wid, task_queue=QUEUE)
                await wait_until(lambda: wid in GATES, timeout=10, what="the activity")
                await asyncio.to_thread(engine.close)
                signal = asyncio.create_task(
                    handle.signal(noted.note, "hello", rpc_timeout=timedelta(seconds=40))
                )
                await asyncio.sleep(1.0)  # the signal is on the partition first
                GATES[wid].set()
                await wait_until(lambda: wf.continued >= 1, timeout=10, what="the continuation")
                engine.enter_context(running_engine(settings, data_dir))
                await signal
                result = await handle.result()
                return result, wf.continued, wf.sticky_cache_misses
        finally:
            await asyncio.to_thread(engine.close)
            await client.close()

    result, continued, misses = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert result == ["done", "hello"]
    assert misses >= 1  # the instance that ran ahead was replaced by a replay
    assert continued >= 1


# -- an activity queue with no worker for a while ------------------------------------------

LATER = "sdk-activities-later"


@workflow.defn
class RemoteCallWorkflow:
    """Calls an activity on a queue whose workers are away (a deploy, an outage)."""

    @workflow.run
    async def run(self, text: str) -> str:
        return str(
            await workflow.execute_activity(
                echo,
                text,
                task_queue=LATER,
                start_to_close_timeout=timedelta(seconds=1),
                retry_policy=RetryPolicy(maximum_attempts=2),
            )
        )


def test_an_activity_waits_for_a_worker_without_spending_its_attempts(
    settings: Settings, tmp_path: Path
) -> None:
    """Start-to-close counts from a worker starting the attempt, as in Temporal: with
    no worker for 6 s (six start-to-close timeouts), the two attempts stay unspent."""

    async def scenario(client: Client) -> None:
        async with Worker(client, task_queue=QUEUE, workflows=[RemoteCallWorkflow]):
            handle = await client.start_workflow(
                RemoteCallWorkflow.run, "still here", id="remote", task_queue=QUEUE
            )
            await asyncio.sleep(6)
            description = await handle.describe()
            assert description.status.name == "RUNNING"
            [pending] = description.raw_description["pending_activities"]
            assert pending["attempt"] == 1
            assert pending["state"] == "SCHEDULED", "no worker has said it started it"
            async with Worker(client, task_queue=LATER, activities=[echo]):
                assert await handle.result() == "still here"
        names = await event_names(handle)
        assert "ActivityTaskTimedOut" not in names
        started = [
            attributes(e)
            for e in (await handle.fetch_history()).events
            if event_name(e) == "ActivityTaskStarted"
        ]
        assert [a["attempt"] for a in started] == [1]

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE, LATER], timeout=60)
