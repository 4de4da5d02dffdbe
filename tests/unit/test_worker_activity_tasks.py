"""The activity half of the worker, without Kafka: tasks in, commands out."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from test_worker_support import (
    Base64Codec,
    C,
    FakeClient,
    Sent,
    activity_task,
    greet,
    make_activity_worker,
    value_of,
)

from cadenza import activity
from cadenza.common import RawValue
from cadenza.converter import DataConverter
from cadenza.exceptions import ApplicationError, CancelledError
from cadenza.worker._activity_worker import TaskToken, heartbeat_throttle_interval

SEEN: dict[str, Any] = {}


@activity.defn
async def fail(kind: str) -> None:
    if kind == "app":
        raise ApplicationError("card declined", {"code": 51}, type="Declined", non_retryable=True)
    raise ValueError("bad value")


@activity.defn
def sync_info(name: str) -> str:
    info = activity.info()
    SEEN["thread"] = threading.current_thread().name
    SEEN["info"] = info
    return f"{name} from {info.activity_type} attempt {info.attempt}"


@activity.defn
async def wait_for_cancel() -> str:
    activity.heartbeat("waiting")
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        SEEN["details"] = activity.cancellation_details()
        raise
    return "not cancelled"


@activity.defn
def sync_wait_for_cancel() -> str:
    activity.heartbeat("waiting")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.01)
    return "not cancelled"


@activity.defn
def sync_shielded() -> str:
    with activity.shield_thread_cancel_exception():
        activity.heartbeat("waiting")
        activity.wait_for_cancelled_sync(5)
        time.sleep(0.05)  # the cancellation waits for the block's end
        SEEN["shield_done"] = True
    return "not reached"


@activity.defn
async def chatty() -> None:
    activity.heartbeat(0)
    await asyncio.sleep(0.02)  # the first heartbeat goes out at once
    for i in range(1, 5):
        activity.heartbeat(i)
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.35)


@activity.defn(dynamic=True)
async def dynamic(args: Sequence[RawValue]) -> str:
    values = [activity.payload_converter().from_payload(a.payload) for a in args]
    return f"{activity.info().activity_type}{values}"


@activity.defn
async def resumes() -> list[Any]:
    return list(activity.info().heartbeat_details)


@activity.defn
async def until_shutdown() -> str:
    await activity.wait_for_worker_shutdown()
    await asyncio.sleep(30)
    return "not reached"


def run_task(
    client: FakeClient,
    activities: Sequence[Any],
    task: dict[str, Any],
    *,
    executor: concurrent.futures.Executor | None = None,
    interval: timedelta = timedelta(seconds=30),
) -> list[Sent]:
    async def scenario() -> None:
        worker = make_activity_worker(
            client, activities, executor=executor, default_heartbeat_throttle_interval=interval
        )
        await worker._run_attempt(task)

    asyncio.run(scenario())
    return client.transport.commands


def cancel_on_heartbeat(sent: Sent) -> tuple[str, dict[str, Any]]:
    return ("cadenza.reply.HeartbeatResponse", {"cancel_requested": True})


def test_completed() -> None:
    client = FakeClient()
    [sent] = run_task(client, [greet], activity_task("greet", "Ada"))
    assert (sent.name, sent.workflow_id, sent.run_id) == (
        C + "ActivityTaskCompleted",
        "wf-1",
        "run-1",
    )
    assert sent.body["scheduled_event_id"] == 5 and sent.body["attempt"] == 1
    assert value_of(sent.body["result"]) == "Hello, Ada!"


def test_failed_with_converted_failures() -> None:
    client = FakeClient()
    [app] = run_task(client, [fail], activity_task("fail", "app"))
    assert app.name == C + "ActivityTaskFailed"
    failure = app.body["failure"]
    assert failure["message"] == "card declined"
    info_name, info = failure["info"]
    assert info_name == "cadenza.common.ApplicationFailureInfo"
    assert (info["type"], info["non_retryable"]) == ("Declined", True)
    assert value_of(info["details"]) == {"code": 51}

    client = FakeClient()
    [other] = run_task(client, [fail], activity_task("fail", "value"))
    assert other.body["failure"]["message"] == "bad value"
    assert other.body["failure"]["info"][1]["type"] == "ValueError"
    assert other.body["failure"]["info"][1]["non_retryable"] is False


def test_unknown_activity_type() -> None:
    client = FakeClient()
    [sent] = run_task(client, [greet, fail], activity_task("charge"))
    assert sent.name == C + "ActivityTaskFailed"
    failure = sent.body["failure"]
    assert failure["message"] == (
        "Activity type charge is not registered on this worker; registered: fail, greet"
    )
    assert failure["info"][1]["type"] == "NotFoundError"
    assert failure["info"][1]["non_retryable"] is False


def test_dynamic_activity_takes_unknown_types() -> None:
    client = FakeClient()
    [sent] = run_task(client, [greet, dynamic], activity_task("anything", 1, "two"))
    assert value_of(sent.body["result"]) == "anything[1, 'two']"


def test_sync_activity_runs_in_the_executor_with_info() -> None:
    client = FakeClient()
    with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="acts") as executor:
        [sent] = run_task(
            client, [sync_info], activity_task("sync_info", "Ada", attempt=3), executor=executor
        )
    assert value_of(sent.body["result"]) == "Ada from sync_info attempt 3"
    assert SEEN["thread"].startswith("acts")
    info = SEEN["info"]
    assert info.workflow_id == "wf-1" and info.workflow_run_id == "run-1"
    assert info.workflow_type == "GreetingWorkflow" and info.task_queue == "q"
    assert info.start_to_close_timeout == timedelta(seconds=10)
    assert info.current_attempt_scheduled_time.timestamp() == pytest.approx(1_700_000_001)
    token = TaskToken.decode(info.task_token)
    assert token == TaskToken("wf-1", "run-1", "1", 5, 3)


def test_heartbeat_details_reach_the_next_attempt() -> None:
    client = FakeClient()
    task = activity_task("resumes", attempt=2, heartbeat_details=["step", 3])
    [sent] = run_task(client, [resumes], task)
    assert value_of(sent.body["result"]) == ["step", 3]


def test_cancel_requested_through_a_heartbeat_async() -> None:
    client = FakeClient()
    client.transport.heartbeat_reply = cancel_on_heartbeat
    sent = run_task(client, [wait_for_cancel], activity_task("wait_for_cancel"))
    heartbeat, canceled = sent
    assert heartbeat.name == C + "ActivityTaskHeartbeat"
    assert value_of(heartbeat.body["details"]) == "waiting"
    assert canceled.name == C + "ActivityTaskCanceled"
    assert canceled.body["scheduled_event_id"] == 5
    assert SEEN["details"].cancel_requested


def test_cancel_requested_through_a_heartbeat_sync() -> None:
    client = FakeClient()
    client.transport.heartbeat_reply = cancel_on_heartbeat
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        sent = run_task(
            client,
            [sync_wait_for_cancel],
            activity_task("sync_wait_for_cancel"),
            executor=executor,
        )
    assert time.monotonic() - started < 5  # interrupted, not run to its end
    assert [s.name for s in sent] == [C + "ActivityTaskHeartbeat", C + "ActivityTaskCanceled"]


def test_thread_cancel_waits_for_the_shield() -> None:
    client = FakeClient()
    client.transport.heartbeat_reply = cancel_on_heartbeat
    SEEN.pop("shield_done", None)
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        sent = run_task(client, [sync_shielded], activity_task("sync_shielded"), executor=executor)
    assert SEEN["shield_done"] is True
    assert sent[-1].name == C + "ActivityTaskCanceled"


def test_a_rejected_heartbeat_cancels_as_not_found() -> None:
    client = FakeClient()
    client.transport.heartbeat_reply = lambda sent: (
        "cadenza.reply.CommandRejected",
        {"code": "STALE", "message": "attempt 1 is not current"},
    )
    sent = run_task(client, [wait_for_cancel], activity_task("wait_for_cancel"))
    # Not a cancellation the workflow asked for: reported as a failure (and ignored).
    assert sent[-1].name == C + "ActivityTaskFailed"
    assert SEEN["details"].not_found


def test_heartbeats_are_throttled_and_the_last_details_win() -> None:
    client = FakeClient()
    sent = run_task(client, [chatty], activity_task("chatty"), interval=timedelta(milliseconds=200))
    heartbeats = [value_of(s.body["details"]) for s in sent if s.name.endswith("Heartbeat")]
    assert heartbeats == [0, 4]  # the first at once, then only the latest after the interval
    assert sent[-1].name == C + "ActivityTaskCompleted"


def test_throttle_interval_rule() -> None:
    limits = {
        "max_interval": timedelta(seconds=60),
        "default_interval": timedelta(seconds=30),
    }
    assert heartbeat_throttle_interval(None, **limits) == 30
    assert heartbeat_throttle_interval(timedelta(seconds=10), **limits) == 8
    assert heartbeat_throttle_interval(timedelta(minutes=5), **limits) == 60


def test_failure_carries_the_last_heartbeat_details() -> None:
    @activity.defn(name="hb_then_fail")
    async def hb_then_fail() -> None:
        activity.heartbeat("halfway")
        raise RuntimeError("boom")

    client = FakeClient()
    sent = run_task(client, [hb_then_fail], activity_task("hb_then_fail"))
    failed = sent[-1]
    assert failed.name == C + "ActivityTaskFailed"
    assert value_of(failed.body["last_heartbeat_details"]) == "halfway"


def test_schedule_to_start_timeout_sends_started_first() -> None:
    client = FakeClient()
    task = dict(activity_task("greet", "Ada"), schedule_to_start_timeout_ms=5000)
    sent = run_task(client, [greet], task)
    assert [s.name for s in sent] == [C + "ActivityTaskStarted", C + "ActivityTaskCompleted"]


def test_codec_applies_to_arguments_and_results() -> None:
    codec = Base64Codec()
    converter = dataclasses.replace(DataConverter.default, payload_codec=codec)
    client = FakeClient(data_converter=converter)
    task = activity_task("greet", "Ada")
    task["input"] = asyncio.run(codec.encode(task["input"]))
    [sent] = run_task(client, [greet], task)
    assert sent.body["result"][0]["metadata"]["encoding"] == b"binary/b64"
    assert value_of(asyncio.run(codec.decode(sent.body["result"]))) == "Hello, Ada!"


def test_graceful_shutdown_cancels_after_the_timeout() -> None:
    client = FakeClient()

    async def scenario() -> float:
        worker = make_activity_worker(client, [until_shutdown])
        running = asyncio.get_running_loop().create_task(
            worker._run_attempt(activity_task("until_shutdown"))
        )
        await asyncio.sleep(0.05)
        assert worker.running == 1
        worker._handlers.add(running)
        started = time.monotonic()
        await worker.shutdown(timedelta(milliseconds=200))
        await running
        return time.monotonic() - started

    elapsed = asyncio.run(scenario())
    assert 0.2 <= elapsed < 5
    [failed] = client.transport.commands
    assert failed.name == C + "ActivityTaskFailed"
    assert failed.body["failure"]["info"][1]["type"] == "WorkerShutdown"


def test_task_token_round_trip() -> None:
    token = TaskToken("wf", "run", "act", 7, 2)
    assert TaskToken.decode(token.encode()) == token
    with pytest.raises(ValueError, match="Not a Cadenza activity task token"):
        TaskToken.decode(b"garbage")


@pytest.mark.parametrize(
    "text", ["plain", 'quote " and \\ backslash', "new\nline\ttab", "ünïcödé ☃ 𝄞", ""]
)
def test_task_token_bytes_are_sorted_compact_json(text: str) -> None:
    # Tokens made before the encoder was written out (json.dumps) must stay equal, byte
    # for byte: a token handed out earlier still names its attempt.
    token = TaskToken(text, f"run {text}", f"act {text}", 12345678901, 3)
    fields = dataclasses.asdict(token) | {"v": 1}
    assert token.encode() == json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()
    assert TaskToken.decode(token.encode()) == token


def test_cancelled_error_details_are_reported() -> None:
    @activity.defn(name="cancel_with_details")
    async def cancel_with_details() -> None:
        activity.heartbeat()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            raise CancelledError("stopped", "cleanup done") from None

    client = FakeClient()
    client.transport.heartbeat_reply = cancel_on_heartbeat
    sent = run_task(client, [cancel_with_details], activity_task("cancel_with_details"))
    assert sent[-1].name == C + "ActivityTaskCanceled"
    assert value_of(sent[-1].body["details"]) == "cleanup done"
