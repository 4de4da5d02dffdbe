"""cadenza.activity: @activity.defn checks, and the in-activity API over a worker context."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cadenza import activity
from cadenza.activity._context import _ActivityEvent, _CompleteAsyncError, _Context
from cadenza.activity._definition import _Definition
from cadenza.common import MetricMeter, RawValue
from cadenza.converter import PayloadConverter


@activity.defn
async def greet(name: str, times: int) -> str:
    return name * times


@activity.defn(name="custom-name")
def sync_thing(x: float) -> None:
    pass


@activity.defn(dynamic=True)
async def anything(args: Sequence[RawValue]) -> Any:
    return len(args)


class Activities:
    @activity.defn
    async def method(self, x: int) -> int:
        return x


def test_definitions_record_name_kind_and_types() -> None:
    d = _Definition.must_from_callable(greet)
    assert (d.name, d.is_async, d.arg_types, d.ret_type) == ("greet", True, [str, int], str)
    s = _Definition.must_from_callable(sync_thing)
    assert (s.name, s.is_async, s.arg_types) == ("custom-name", False, [float])
    assert s.ret_type is type(None)
    assert _Definition.must_from_callable(anything).name is None
    instance = Activities()
    bound = _Definition.must_from_callable(instance.method)
    assert bound.fn == instance.method and bound.arg_types == [int]
    assert _Definition.get_name_and_result_type(greet) == ("greet", str)
    assert _Definition.get_name_and_result_type("by-name") == ("by-name", None)


def test_decoration_time_errors() -> None:
    def kw_only(a: int, *, b: int) -> None: ...

    with pytest.raises(TypeError, match="keyword-only parameter 'b'"):
        activity.defn(kw_only)
    with pytest.raises(ValueError, match="cannot set both name and dynamic"):
        activity.defn(name="x", dynamic=True)
    with pytest.raises(ValueError, match="name cannot be empty"):
        activity.defn(name="")

    async def wrong_dynamic(x: int) -> None: ...

    with pytest.raises(TypeError, match="must take exactly one Sequence\\[RawValue\\]"):
        activity.defn(dynamic=True)(wrong_dynamic)
    with pytest.raises(ValueError, match="already an activity"):
        activity.defn(greet)
    with pytest.raises(TypeError, match="not callable"):
        activity.defn(42)

    def undecorated() -> None: ...

    with pytest.raises(TypeError, match="not decorated with @activity.defn"):
        _Definition.must_from_callable(undecorated)
    with pytest.raises(ValueError, match="dynamic activity cannot be called by reference"):
        _Definition.get_name_and_result_type(anything)


def test_in_activity_api_outside_an_activity() -> None:
    assert not activity.in_activity()
    for call in (
        activity.info,
        activity.heartbeat,
        activity.is_cancelled,
        activity.is_worker_shutdown,
        activity.payload_converter,
        activity.cancellation_details,
        lambda: activity.wait_for_cancelled_sync(0),
    ):
        with pytest.raises(RuntimeError, match="Not in activity context"):
            call()
    with pytest.raises(RuntimeError, match="Not in activity context"):
        asyncio.run(activity.wait_for_cancelled())


def make_info(**changes: Any) -> activity.Info:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    fields: dict[str, Any] = {
        "activity_id": "1",
        "activity_type": "greet",
        "attempt": 2,
        "current_attempt_scheduled_time": now,
        "heartbeat_details": ["half"],
        "heartbeat_timeout": timedelta(seconds=10),
        "schedule_to_close_timeout": None,
        "scheduled_time": now,
        "start_to_close_timeout": timedelta(minutes=1),
        "started_time": now,
        "task_queue": "q",
        "task_token": b"tok",
        "workflow_id": "wf-1",
        "workflow_namespace": "default",
        "workflow_run_id": "run-1",
        "workflow_type": "Order",
    }
    fields.update(changes)
    return activity.Info(**fields)


def make_context(loop: asyncio.AbstractEventLoop | None, beats: list[tuple[Any, ...]]) -> _Context:
    return _Context(
        info=make_info(),
        heartbeat=lambda *details: beats.append(details),
        cancelled_event=_ActivityEvent(loop),
        worker_shutdown_event=_ActivityEvent(loop),
        payload_converter=PayloadConverter.default,
    )


def test_info_defaults() -> None:
    info = make_info()
    assert info.is_local is False
    assert info.in_workflow
    assert not make_info(workflow_id=None).in_workflow


def test_async_activity_context() -> None:
    beats: list[tuple[Any, ...]] = []

    async def body() -> str:
        assert activity.in_activity()
        assert activity.info().attempt == 2
        activity.heartbeat("step", 1)
        assert not activity.is_cancelled()
        await activity.wait_for_cancelled()
        assert activity.is_cancelled()
        details = activity.cancellation_details()
        assert details is not None and details.cancel_requested
        return "cancelled"

    async def main() -> None:
        context = make_context(asyncio.get_running_loop(), beats)
        token = _Context.set(context)
        try:
            task = asyncio.create_task(body())
            await asyncio.sleep(0)
            # A worker thread delivers the cancellation.
            threading.Thread(target=context.cancel).start()
            assert await asyncio.wait_for(task, 5) == "cancelled"
        finally:
            _Context.reset(token)
        assert not activity.in_activity()

    asyncio.run(main())
    assert beats == [("step", 1)]


def test_sync_activity_context_in_a_thread() -> None:
    beats: list[tuple[Any, ...]] = []
    context = make_context(None, beats)
    seen: list[Any] = []

    def body() -> None:
        activity.heartbeat()
        activity.wait_for_cancelled_sync(timedelta(seconds=5))
        seen.append(activity.is_cancelled())
        seen.append(activity.cancellation_details())
        with activity.shield_thread_cancel_exception():
            seen.append("shielded")

    def run_in_context() -> None:
        token = _Context.set(context)
        try:
            body()
        finally:
            _Context.reset(token)

    thread = threading.Thread(target=contextvars.copy_context().run, args=(run_in_context,))
    thread.start()
    context.cancel(activity.ActivityCancellationDetails(timed_out=True))
    context.cancel(activity.ActivityCancellationDetails(cancel_requested=True))
    thread.join(5)
    assert seen == [True, activity.ActivityCancellationDetails(timed_out=True), "shielded"]
    assert beats == [()]


def test_sync_activities_cannot_await_cancellation() -> None:
    token = _Context.set(make_context(None, []))
    try:
        with pytest.raises(RuntimeError, match="Not in an async activity"):
            asyncio.run(activity.wait_for_cancelled())
        with pytest.raises(RuntimeError, match="No client available"):
            activity.client()
        assert activity.metric_meter() is MetricMeter.noop  # a worker without metrics
        with pytest.raises(_CompleteAsyncError):
            activity.raise_complete_async()
        assert not issubclass(_CompleteAsyncError, Exception)
    finally:
        _Context.reset(token)


def test_logger_adds_activity_details(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cadenza.activity")
    activity.logger.info("outside")
    token = _Context.set(make_context(None, []))
    try:
        activity.logger.info("inside", extra={"mine": 1})
    finally:
        _Context.reset(token)
    outside, inside = caplog.records
    assert outside.getMessage() == "outside"
    assert "'activity_type': 'greet'" in inside.getMessage()
    assert inside.cadenza_activity["workflow_id"] == "wf-1"  # type: ignore[attr-defined]
    assert inside.mine == 1  # type: ignore[attr-defined]


def test_activity_event_wakes_thread_waiters_whenever_it_is_set() -> None:
    early = _ActivityEvent()
    early.set()
    started = time.monotonic()
    early.wait_sync(5)  # set before anyone waited: returns at once
    assert early.is_set() and time.monotonic() - started < 1

    late = _ActivityEvent()
    late.wait_sync(0.05)  # nobody sets it: the timeout passes
    assert not late.is_set()
    woken: list[float] = []

    def waiter() -> None:
        late.wait_sync(5)
        woken.append(time.monotonic())

    threads = [threading.Thread(target=waiter) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    set_at = time.monotonic()
    late.set()
    for thread in threads:
        thread.join(5)
    assert len(woken) == 3 and all(t - set_at < 1 for t in woken)
