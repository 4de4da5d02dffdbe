"""The activity half of a worker: consumes ``activity-tasks.<queue>``, runs activities.

Per ``ActivityTask`` (see "The protocol" in ``schemas/README.md``) it finds the
activity by type, decodes the arguments, runs the function under an activity
``_Context`` (``async def`` on the event loop, plain functions on the
``activity_executor``), forwards ``activity.heartbeat()`` calls as throttled
``ActivityTaskHeartbeat`` commands whose replies say whether cancellation was
requested, and answers ``ActivityTaskCompleted``, ``ActivityTaskFailed`` or
``ActivityTaskCanceled`` for the attempt.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import ctypes
import dataclasses
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring_ascii as _json_str
from typing import Any

from .. import schemas
from ..activity._context import (
    ActivityCancellationDetails,
    Info,
    _ActivityEvent,
    _CompleteAsyncError,
    _Context,
)
from ..activity._definition import _Definition
from ..common._failure import Failure
from ..common._metric import MetricMeter
from ..common._payload import Payload, RawValue
from ..common._retry import RetryPolicy
from ..converter import DataConverter
from ..exceptions import (
    ApplicationError,
    ApplicationErrorCategory,
    CancelledError,
    is_cancelled_exception,
)
from ..topics import activity_tasks_topic, consumer_group
from ._codec import decode_in, encode_in
from ._consumer import Record, TaskConsumer
from ._interceptor import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)
from ._metrics import ActivityTypeMetrics, WorkerMetrics
from ._rate import StartRate
from ._shared import (
    ACTIVITY_TASK_CANCELED,
    ACTIVITY_TASK_COMPLETED,
    ACTIVITY_TASK_FAILED,
    ACTIVITY_TASK_HEARTBEAT,
    ACTIVITY_TASK_STARTED,
    COMMAND_REJECTED,
    HEARTBEAT_RESPONSE,
    AnswerNotSent,
    WorkerClient,
    is_record_problem,
)
from ._started import STARTED_ACK_DELAY, StartedWords

_log = logging.getLogger("cadenza.worker")

HEARTBEAT_REPLY_TIMEOUT_SECONDS = 10.0
"""How long a heartbeat waits for the engine's ``HeartbeatResponse``."""

_GONE_CODES = frozenset({"NOT_FOUND", "STALE", "ALREADY_CLOSED"})


# -- task tokens ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskToken:
    """What ``activity.info().task_token`` identifies: one attempt of one activity."""

    workflow_id: str
    run_id: str
    activity_id: str
    scheduled_event_id: int
    attempt: int

    def encode(self) -> bytes:
        """The token bytes: compact JSON with the fields above and a version, keys
        sorted (what ``json.dumps(..., separators=(",", ":"), sort_keys=True)`` gives;
        written out because a ``json.dumps`` with options was 3% of a busy worker's
        time: one token per activity attempt)."""
        return (
            f'{{"activity_id":{_json_str(self.activity_id)},"attempt":{self.attempt:d},'
            f'"run_id":{_json_str(self.run_id)},'
            f'"scheduled_event_id":{self.scheduled_event_id:d},"v":1,'
            f'"workflow_id":{_json_str(self.workflow_id)}}}'
        ).encode()

    @staticmethod
    def decode(token: bytes) -> TaskToken:
        """Read a token made by :meth:`encode`.

        Raises:
            ValueError: The bytes are not a Cadenza task token.
        """
        try:
            data = json.loads(token)
            if data.get("v") != 1:
                raise ValueError(f"unknown version {data.get('v')!r}")
            return TaskToken(
                workflow_id=str(data["workflow_id"]),
                run_id=str(data["run_id"]),
                activity_id=str(data["activity_id"]),
                scheduled_event_id=int(data["scheduled_event_id"]),
                attempt=int(data["attempt"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"Not a Cadenza activity task token: {exc}") from None


def _failed(error: BaseException) -> str:
    """The metrics' outcome of an attempt failed with ``error``: benign failures are
    not counted as failures (``ApplicationErrorCategory.BENIGN``)."""
    benign = isinstance(error, ApplicationError) and (
        error.category is ApplicationErrorCategory.BENIGN
    )
    return "benign" if benign else "failed"


def _measure(measured: ActivityTypeMetrics, started_at: float, outcome: str, task: Any) -> None:
    measured.done(started_at, outcome, int(task["scheduled_time_ms"]))


def _td(ms: int | None) -> timedelta | None:
    return None if ms is None else timedelta(milliseconds=ms)


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def eager_task(workflow_task: Mapping[str, Any], attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The ``ActivityTask`` of attempt 1 of an activity that ``workflow_task``'s completion
    schedules with ``request_eager_execution`` (``attrs``: the command, payloads encoded).

    Its ``scheduled_event_id`` is 0: the engine assigns that id when it applies the
    completion, so the attempt's answers name the activity by ``activity_id`` instead.
    Timeouts as the engine derives them (start-to-close defaults to schedule-to-close).
    """
    now_ms = int(time.time() * 1000)
    return {
        "workflow_id": workflow_task["workflow_id"],
        "run_id": workflow_task["run_id"],
        "workflow_type": workflow_task["workflow_type"],
        "activity_id": attrs["activity_id"],
        "activity_type": attrs["activity_type"],
        "task_queue": attrs["task_queue"],
        "scheduled_event_id": 0,
        "attempt": 1,
        "input": attrs.get("input", []),
        "header": attrs.get("header", {}),
        "heartbeat_details": [],
        "scheduled_time_ms": now_ms,
        "current_attempt_scheduled_time_ms": now_ms,
        "schedule_to_close_timeout_ms": attrs.get("schedule_to_close_timeout_ms"),
        "schedule_to_start_timeout_ms": None,  # started at once
        "start_to_close_timeout_ms": attrs.get("start_to_close_timeout_ms")
        or attrs.get("schedule_to_close_timeout_ms"),
        "heartbeat_timeout_ms": attrs.get("heartbeat_timeout_ms"),
        "retry_policy": attrs.get("retry_policy"),
    }


@dataclass(frozen=True)
class Continuation:
    """The workflow task that an eager attempt's result wakes, already run by the
    workflow half (``WorkflowTaskContinuation``), to send with the result."""

    body: dict[str, Any]
    """The ``continuation`` field of ``ActivityTaskCompleted``."""
    sent: Callable[[], None]
    """Call once the answer carrying it is written (starts what it starts eagerly)."""
    lost: Callable[[], None]
    """Call when it was not sent: what it reserved is given back, the run ran ahead."""


FollowUp = Callable[[list[Payload]], Awaitable[Continuation | None]]
"""Given an eager attempt's encoded result, the workflow task it wakes, run (or None)."""


def heartbeat_throttle_interval(
    heartbeat_timeout: timedelta | None,
    *,
    max_interval: timedelta,
    default_interval: timedelta,
) -> float:
    """Seconds between two heartbeats sent for one attempt (Temporal's rule).

    With a heartbeat timeout, 80% of it, at most ``max_interval``; without,
    ``default_interval``.
    """
    if heartbeat_timeout:
        return min(heartbeat_timeout * 0.8, max_interval).total_seconds()
    return default_interval.total_seconds()


# -- cancelling threads --------------------------------------------------------------------


class _ThreadCanceller:
    """Raises ``CancelledError`` inside the thread running a sync activity (once), unless
    inside ``activity.shield_thread_cancel_exception()``, where it waits for the block's end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread_id: int | None = None
        self._shield_depth = 0
        self._pending = False
        self._fired = False
        self._finished = False

    def started(self) -> None:
        with self._lock:
            self._thread_id = threading.get_ident()
            fire = self._pending and self._shield_depth == 0
            if fire:
                self._pending, self._fired = False, True
        if fire:
            raise CancelledError("Cancelled")

    def finished(self) -> None:
        with self._lock:
            self._finished = True

    def cancel(self) -> None:
        with self._lock:
            if self._fired or self._finished:
                return
            if self._thread_id is None or self._shield_depth > 0:
                self._pending = True
                return
            self._fired = True
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self._thread_id), ctypes.py_object(CancelledError)
            )

    @contextmanager
    def shield(self) -> Iterator[None]:
        with self._lock:
            self._shield_depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._shield_depth -= 1
                fire = self._pending and self._shield_depth == 0 and not self._finished
                if fire:
                    self._pending, self._fired = False, True
            if fire:
                raise CancelledError("Cancelled")


# -- one running attempt -------------------------------------------------------------------


def started_ack_delay(task: Mapping[str, Any]) -> float:
    """When to say an attempt started: after :data:`STARTED_ACK_DELAY`, or a quarter of
    its shortest start-to-close or heartbeat timeout if that is sooner (the engine
    counts those timeouts from the word, so it comes early in them).

    Example:
        >>> started_ack_delay({"start_to_close_timeout_ms": 2000, "heartbeat_timeout_ms": None})
        0.5
        >>> started_ack_delay({"start_to_close_timeout_ms": 60000, "heartbeat_timeout_ms": 10000})
        1.0
    """
    timeouts = [
        int(ms) / 4000
        for ms in (task.get("start_to_close_timeout_ms"), task.get("heartbeat_timeout_ms"))
        if ms
    ]
    return min([STARTED_ACK_DELAY, *timeouts])


@dataclass(eq=False)
class _Running:
    task: dict[str, Any]
    token: bytes
    context: _Context
    definition: _Definition
    run_task: asyncio.Future[Any] | None = None
    canceller: _ThreadCanceller | None = None
    heartbeats: _Heartbeats | None = None
    last_heartbeat: list[Payload] = field(default_factory=list)

    @property
    def ids(self) -> str:
        return (
            f"activity {self.task['activity_type']} (id {self.task['activity_id']}, attempt "
            f"{self.task['attempt']}) of workflow {self.task['workflow_id']} run "
            f"{self.task['run_id']}"
        )

    def cancel(self, details: ActivityCancellationDetails) -> None:
        """Cancel the attempt: set the context's event and interrupt the code."""
        already = self.context.cancelled_event.is_set()
        self.context.cancel(details)
        if already:
            return
        if self.definition.is_async:
            if self.run_task is not None:
                self.run_task.cancel()
        elif self.canceller is not None and not self.definition.no_thread_cancel_exception:
            self.canceller.cancel()


class _Heartbeats:
    """Sends one attempt's heartbeats: the first at once, then at most one per interval,
    always the latest details; reads cancellation from the replies."""

    def __init__(
        self,
        worker: ActivityWorker,
        running: _Running,
        interval: float,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._worker = worker
        self._running = running
        self._interval = interval
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._pending: list[Payload] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._closed = False

    def record(self, *details: Any) -> None:
        """``activity.heartbeat(*details)``; callable from the loop or the activity's thread."""
        payloads = self._worker.payload_converter.to_payloads(details)
        if threading.get_ident() == self._loop_thread:
            self._on_details(payloads)
            return
        try:
            self._loop.call_soon_threadsafe(self._on_details, payloads)
        except RuntimeError:
            pass  # the worker's loop is gone

    def _on_details(self, payloads: list[Payload]) -> None:
        if self._closed:
            return
        self._running.last_heartbeat = payloads
        self._pending = payloads
        if self._sender is None or self._sender.done():
            self._sender = self._loop.create_task(self._send_loop())

    async def _send_loop(self) -> None:
        while self._pending is not None and not self._closed:
            details, self._pending = self._pending, None
            await self._send(details)
            await asyncio.sleep(self._interval)

    async def _send(self, details: list[Payload]) -> None:
        task = self._running.task
        try:
            encoded: list[Payload] = await encode_in(details, self._worker.codec)
            reply = await self._worker.transport.send_command(
                str(task["workflow_id"]),
                (
                    ACTIVITY_TASK_HEARTBEAT,
                    {
                        "scheduled_event_id": task["scheduled_event_id"],
                        "attempt": task["attempt"],
                        "activity_id": task["activity_id"],
                        "details": encoded,
                    },
                ),
                run_id=str(task["run_id"]),
                want_reply=True,
                timeout=HEARTBEAT_REPLY_TIMEOUT_SECONDS,
            )
        except Exception as exc:
            _log.warning("Heartbeat of %s not recorded: %s", self._running.ids, exc)
            return
        if reply is None:
            return
        name, body = reply["body"]
        if name == HEARTBEAT_RESPONSE and body.get("cancel_requested"):
            _log.debug("Cancellation of %s requested", self._running.ids)
            self._running.cancel(ActivityCancellationDetails(cancel_requested=True))
        elif name == COMMAND_REJECTED and body.get("code") in _GONE_CODES:
            _log.debug("Heartbeat of %s rejected: %s", self._running.ids, body.get("message"))
            self._running.cancel(ActivityCancellationDetails(not_found=True))

    def close(self) -> None:
        self._closed = True
        if self._sender is not None and not self._sender.done():
            self._sender.cancel()


# -- interceptors' innermost links ---------------------------------------------------------


class _InnermostActivity(ActivityInboundInterceptor):
    """Runs the activity function: awaited when async, in the executor when sync."""

    def __init__(self, running: _Running) -> None:  # the end of the chain: no next
        self._running = running

    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        self._running.context.outbound = outbound

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        if input.executor is None:
            return await input.fn(*input.args)
        assert self._running.canceller is not None
        invoke = _cancellable(self._running.canceller, input.fn, input.args)
        thread_context = contextvars.copy_context()  # holds the activity context
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(input.executor, thread_context.run, invoke)


def _cancellable(
    canceller: _ThreadCanceller, fn: Callable[..., Any], args: Sequence[Any]
) -> Callable[[], Any]:
    """``fn(*args)`` for a worker thread, where a cancellation can interrupt it."""

    def invoke() -> Any:
        canceller.started()
        try:
            return fn(*args)
        finally:
            canceller.finished()

    return invoke


class _ActivityOutbound(ActivityOutboundInterceptor):
    """What ``activity.info()`` and ``activity.heartbeat()`` reach at the end of the chain."""

    def __init__(self, context: _Context) -> None:  # the end of the chain: no next
        self._context = context

    def info(self) -> Info:
        return self._context.info

    def heartbeat(self, *details: Any) -> None:
        self._context.heartbeat(*details)


# -- the worker ----------------------------------------------------------------------------


class ActivityWorker:
    """Consumes one task queue's activity tasks; built and driven by ``Worker``."""

    def __init__(
        self,
        *,
        client: WorkerClient,
        task_queue: str,
        activities: Mapping[str | None, _Definition],
        activity_executor: concurrent.futures.Executor | None,
        max_concurrent_activities: int,
        max_heartbeat_throttle_interval: timedelta,
        default_heartbeat_throttle_interval: timedelta,
        identity: str,
        on_fatal: Callable[[BaseException], None],
        metrics: WorkerMetrics | None = None,
        metric_meter: MetricMeter = MetricMeter.noop,
        start_rate: StartRate | None = None,
        interceptors: Sequence[Interceptor] = (),
    ) -> None:
        self._client = client
        self._interceptors = tuple(interceptors)
        """Worker interceptors: each attempt runs through their activity chain."""
        self._start_rate = start_rate
        """``max_activities_per_second``, or None."""
        self._settings = client.settings
        self.transport = client.transport
        self._converter: DataConverter = client.data_converter
        self.codec = self._converter.payload_codec
        self.payload_converter = self._converter.payload_converter
        self._namespace = client.namespace
        self._task_queue = task_queue
        self._activities = dict(activities)
        self._executor = activity_executor
        self._capacity = max_concurrent_activities
        self._max_throttle = max_heartbeat_throttle_interval
        self._default_throttle = default_heartbeat_throttle_interval
        self._identity = identity
        self._on_fatal = on_fatal
        self._metrics = metrics
        """The built-in metrics; None (the runtime exports none) costs one test per task."""
        self._metric_meter = metric_meter
        """The runtime's meter, for ``activity.metric_meter()``."""
        self._consumer: TaskConsumer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker_shutdown: _ActivityEvent | None = None
        self._running: dict[bytes, _Running] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._started_acks = StartedWords("activity attempt")
        self._stopping = False

    @property
    def running(self) -> int:
        """Attempts running now."""
        return len(self._running)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the event loop activities run in (done by :meth:`start`)."""
        self._loop = loop
        self._worker_shutdown = _ActivityEvent(loop)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Join the task queue's activity-worker group and start consuming."""
        self.bind(loop)
        self._consumer = TaskConsumer(
            settings=self._settings,
            topic=activity_tasks_topic(self._settings, self._task_queue),
            group_id=consumer_group(self._settings, f"activity-worker.{self._task_queue}"),
            capacity=self._capacity,
            loop=loop,
            on_record=self._on_record,
            on_fatal=self._on_fatal,
            client_id=f"cadenza-activity-worker-{self._identity}",
        )
        self._consumer.start()
        if self._metrics is not None:
            consumer = self._consumer
            self._metrics.sample_slots("ActivityWorker", self._capacity, lambda: consumer.in_flight)

    async def shutdown(self, graceful_timeout: timedelta) -> None:
        """Take no new tasks; give running attempts ``graceful_timeout``, then cancel them
        (they still report); commit and leave the group."""
        self._stopping = True
        self._started_acks.stop()  # the attempts' answers (or their next worker) say it
        if self._consumer is not None:
            self._consumer.stop_fetching()
        if self._worker_shutdown is not None:
            self._worker_shutdown.set()
        if self._handlers:
            seconds = graceful_timeout.total_seconds()
            _, pending = await asyncio.wait(set(self._handlers), timeout=max(seconds, 0))
            if pending:
                _log.info(
                    "Cancelling %d running activities: the worker is shutting down", len(pending)
                )
                for running in list(self._running.values()):
                    running.cancel(ActivityCancellationDetails(worker_shutdown=True))
                await asyncio.gather(*pending, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.close()

    # -- eager attempts (started by this worker's workflow tasks) ---------------------------

    def reserve_eager(self, activity_type: str) -> bool:
        """Take a slot for an eager attempt of ``activity_type``: False when it is not
        registered here, the worker is full or stopping. Run it with :meth:`run_eager`,
        or give the slot back with :meth:`release_eager`."""
        if self._stopping or self._consumer is None:
            return False
        if activity_type not in self._activities and None not in self._activities:
            return False
        if not self._consumer.try_reserve():
            return False
        if self._start_rate is not None and not self._start_rate.try_take():
            self._consumer.release()  # over the rate now: it goes through the queue
            return False
        return True

    def release_eager(self) -> None:
        """Give back a slot of :meth:`reserve_eager` that was not used."""
        assert self._consumer is not None
        self._consumer.release()

    def run_eager(self, task: dict[str, Any], follow_up: FollowUp | None = None) -> None:
        """Run an attempt built by :func:`eager_task` in a slot of :meth:`reserve_eager`;
        on success, ask ``follow_up`` for the workflow task to send with the result."""
        handler = asyncio.get_running_loop().create_task(
            self._handle_eager(task, follow_up), name=f"cadenza activity {task['activity_id']}"
        )
        self._handlers.add(handler)
        handler.add_done_callback(self._handlers.discard)

    async def _handle_eager(self, task: dict[str, Any], follow_up: FollowUp | None) -> None:
        try:
            await self._run_attempt(task, follow_up)
        except AnswerNotSent as exc:
            self._on_fatal(exc)
        except Exception:
            _log.exception(
                "Eager activity %s of workflow %s could not be processed",
                task["activity_id"],
                task["workflow_id"],
            )
        finally:
            self.release_eager()

    # -- dispatch --------------------------------------------------------------------------

    def _on_record(self, record: Record) -> None:
        consumer = self._consumer
        assert consumer is not None
        if self._stopping:
            consumer.abandon(record.ticket)
            return
        task = consumer.decode(record, schemas.ACTIVITY_TASK)
        if task is None:
            return
        handler = asyncio.get_running_loop().create_task(
            self._handle(record, task), name=f"cadenza activity {task['activity_id']}"
        )
        self._handlers.add(handler)
        handler.add_done_callback(self._handlers.discard)

    async def _handle(self, record: Record, task: dict[str, Any]) -> None:
        consumer = self._consumer
        assert consumer is not None
        try:
            if self._start_rate is not None:
                await self._start_rate.take()
            await self._run_attempt(task)
        except AnswerNotSent as exc:
            consumer.abandon(record.ticket)
            self._on_fatal(exc)
            return
        except Exception:
            _log.exception(
                "Activity task %s of workflow %s could not be processed",
                task["activity_id"],
                task["workflow_id"],
            )
        consumer.done(record.ticket)

    # -- one attempt -----------------------------------------------------------------------

    async def _run_attempt(self, task: dict[str, Any], follow_up: FollowUp | None = None) -> None:
        token = TaskToken(
            workflow_id=str(task["workflow_id"]),
            run_id=str(task["run_id"]),
            activity_id=str(task["activity_id"]),
            scheduled_event_id=int(task["scheduled_event_id"]),
            attempt=int(task["attempt"]),
        ).encode()
        if token in self._running:
            _log.debug("Activity task %s delivered twice; the first is running", token)
            return
        measured: ActivityTypeMetrics | None = None
        started_at = 0.0
        if self._metrics is not None:
            measured = self._metrics.activity_type(
                str(task["activity_type"]), str(task["workflow_type"])
            )
            started_at = measured.started(int(task["current_attempt_scheduled_time_ms"]))
        if task["scheduled_event_id"] and task.get("schedule_to_start_timeout_ms") is not None:
            await self._send(task, ACTIVITY_TASK_STARTED, {}, fatal_only=True)

        definition = self._activities.get(str(task["activity_type"])) or self._activities.get(None)
        if definition is None:
            known = sorted(name for name in self._activities if name is not None)
            error = ApplicationError(
                f"Activity type {task['activity_type']} is not registered on this worker; "
                f"registered: {', '.join(known) or '(none)'}",
                type="NotFoundError",
            )
            await self._send_failure(task, error, [])
            if measured is not None:
                _measure(measured, started_at, "failed", task)
            return

        running = self._new_running(task, token, definition)
        self._running[token] = running
        started_ack = self._ack_started_later(task)
        outcome = "failed"
        try:
            outcome, value = await self._execute(running)
        finally:
            del self._running[token]
            if running.heartbeats is not None:
                running.heartbeats.close()
            if outcome != "async":
                self._started_acks.cancel(started_ack)  # its answer says it started
        last_heartbeat: list[Payload] = await encode_in(running.last_heartbeat, self.codec)
        if outcome == "async":
            _log.debug("%s will be completed asynchronously", running.ids)
        elif outcome == "completed":
            try:
                result: list[Payload] = await self._converter.encode([value])
            except Exception as exc:
                await self._send_failure(task, exc, last_heartbeat, running)
                if measured is not None:
                    _measure(measured, started_at, _failed(exc), task)
                return
            if follow_up is None or not await self._send_continued(task, result, follow_up):
                await self._send(task, ACTIVITY_TASK_COMPLETED, {"result": result}, running=running)
            if measured is not None:
                _measure(measured, started_at, "completed", task)
        elif outcome == "canceled":
            details = (
                await self._converter.encode(list(value.details))
                if isinstance(value, CancelledError) and value.details
                else []
            )
            _log.debug("%s acknowledged its cancellation", running.ids)
            await self._send(task, ACTIVITY_TASK_CANCELED, {"details": details}, running=running)
            if measured is not None:
                _measure(measured, started_at, "canceled", task)
        else:
            await self._send_failure(task, value, last_heartbeat, running)
            if measured is not None:
                _measure(measured, started_at, _failed(value), task)

    def _ack_started_later(self, task: dict[str, Any]) -> asyncio.TimerHandle | None:
        """Say the attempt started if it still runs after a moment (see ``_started``):
        its start-to-close and heartbeat timeouts count from the word. An eager
        attempt is recorded started already; with a schedule-to-start timeout the
        worker said so at once."""
        if not task["scheduled_event_id"] or task.get("schedule_to_start_timeout_ms") is not None:
            return None
        return self._started_acks.later(
            started_ack_delay(task),
            lambda: self._send(task, ACTIVITY_TASK_STARTED, {}, fatal_only=True),
        )

    def _new_running(self, task: dict[str, Any], token: bytes, definition: _Definition) -> _Running:
        loop = asyncio.get_running_loop()
        heartbeat_timeout = _td(task["heartbeat_timeout_ms"])
        retry = task.get("retry_policy")
        # Filled in below, once the heartbeat callable exists.
        info = Info(
            activity_id=str(task["activity_id"]),
            activity_type=str(task["activity_type"]),
            attempt=int(task["attempt"]),
            current_attempt_scheduled_time=_time(int(task["current_attempt_scheduled_time_ms"])),
            heartbeat_details=[],
            heartbeat_timeout=heartbeat_timeout,
            namespace=self._namespace,
            schedule_to_close_timeout=_td(task["schedule_to_close_timeout_ms"]),
            scheduled_time=_time(int(task["scheduled_time_ms"])),
            start_to_close_timeout=_td(task["start_to_close_timeout_ms"]),
            started_time=datetime.now(UTC),
            task_queue=str(task["task_queue"]),
            task_token=token,
            workflow_id=str(task["workflow_id"]),
            workflow_namespace=self._namespace,
            workflow_run_id=str(task["run_id"]),
            workflow_type=str(task["workflow_type"]),
            retry_policy=RetryPolicy.from_avro(retry) if retry else None,
        )
        canceller = None if definition.is_async else _ThreadCanceller()
        assert self._worker_shutdown is not None
        context = _Context(
            info=info,
            heartbeat=lambda *details: None,
            cancelled_event=_ActivityEvent(loop if definition.is_async else None),
            worker_shutdown_event=self._worker_shutdown,
            payload_converter=self.payload_converter,
            shield_thread_cancel_exception=canceller.shield if canceller is not None else None,
            client=self._client if definition.is_async else None,
            runtime_metric_meter=self._metric_meter,
        )
        running = _Running(task=task, token=token, context=context, definition=definition)
        running.canceller = canceller
        interval = heartbeat_throttle_interval(
            heartbeat_timeout,
            max_interval=self._max_throttle,
            default_interval=self._default_throttle,
        )
        running.heartbeats = _Heartbeats(self, running, interval, loop)
        context.heartbeat = running.heartbeats.record
        return running

    async def _execute(self, running: _Running) -> tuple[str, Any]:
        """Run the attempt: ``("completed", result)``, ``("failed", error)``,
        ``("canceled", error)`` or ``("async", None)``."""
        task, context, definition = running.task, running.context, running.definition
        try:
            if task["heartbeat_details"]:  # a retry after heartbeats: the last details
                heartbeat_details = await self._converter.decode(list(task["heartbeat_details"]))
                context.info = dataclasses.replace(
                    context.info, heartbeat_details=heartbeat_details
                )
            args = await self._decode_args(task, definition)
            _log.debug("Running %s", running.ids)
            if definition.is_async:
                result = await self._run_async(running, args)
            else:
                result = await self._run_sync(running, args)
        except _CompleteAsyncError:
            return "async", None
        except BaseException as err:
            if not isinstance(err, Exception | asyncio.CancelledError):
                raise  # KeyboardInterrupt, SystemExit: not the activity's outcome
            details = context.cancellation_details
            if details is not None and details.cancel_requested and is_cancelled_exception(err):
                return "canceled", err
            if details is not None and details.worker_shutdown and is_cancelled_exception(err):
                return "failed", ApplicationError(
                    "The worker shut down before the activity finished", type="WorkerShutdown"
                )
            if isinstance(err, asyncio.CancelledError):
                return "failed", CancelledError(str(err) or "Cancelled")
            return "failed", err
        return "completed", result

    async def _decode_args(self, task: Mapping[str, Any], definition: _Definition) -> list[Any]:
        payloads: list[Payload] = await decode_in(list(task["input"]), self.codec)
        if definition.name is None:
            return [[RawValue(p) for p in payloads]]
        try:
            return self.payload_converter.from_payloads(payloads, definition.arg_types)
        except Exception as err:
            raise ApplicationError(
                f"Failed decoding arguments of activity {task['activity_type']}: {err}",
                type="ArgumentDecodingError",
            ) from err

    async def _run_async(self, running: _Running, args: Sequence[Any]) -> Any:
        if self._interceptors:
            return await self._run_intercepted(running, args, None)
        fn = running.definition.fn
        return await self._run_in_task(running, lambda: fn(*args))

    async def _run_sync(self, running: _Running, args: Sequence[Any]) -> Any:
        if self._executor is None:  # checked when the worker was built
            raise RuntimeError("No activity_executor for a sync activity")
        if self._interceptors:
            return await self._run_intercepted(running, args, self._executor)
        assert running.canceller is not None
        thread_context = contextvars.copy_context()
        thread_context.run(_Context.set, running.context)
        future = asyncio.get_running_loop().run_in_executor(
            self._executor,
            thread_context.run,
            _cancellable(running.canceller, running.definition.fn, args),
        )
        running.run_task = future
        return await self._wait(running, future)

    async def _run_intercepted(
        self,
        running: _Running,
        args: Sequence[Any],
        executor: concurrent.futures.Executor | None,
    ) -> Any:
        """Run the attempt through the interceptors' chain, in a task of its own that
        holds the activity context (the chain runs on the event loop; the innermost
        link runs a sync activity in ``executor``, as without interceptors)."""
        inbound: ActivityInboundInterceptor = _InnermostActivity(running)
        for interceptor in reversed(self._interceptors):
            inbound = interceptor.intercept_activity(inbound)
        execute = ExecuteActivityInput(
            fn=running.definition.fn,
            args=args,
            executor=executor,
            headers=running.task.get("header") or {},
        )

        def chain() -> Awaitable[Any]:
            inbound.init(_ActivityOutbound(running.context))
            return inbound.execute_activity(execute)

        return await self._run_in_task(running, chain)

    async def _run_in_task(self, running: _Running, call: Callable[[], Awaitable[Any]]) -> Any:
        """Await ``call()`` in a task of its own that holds the attempt's activity
        context; cancelling the attempt cancels the task."""
        context = running.context

        async def invoke() -> Any:
            _Context.set(context)  # in the task's own copy of the context
            return await call()

        running.run_task = asyncio.get_running_loop().create_task(invoke())
        if context.cancelled_event.is_set():  # cancelled while its arguments were decoded
            running.run_task.cancel()
        return await self._wait(running, running.run_task)

    @staticmethod
    async def _wait(running: _Running, future: asyncio.Future[Any]) -> Any:
        """The attempt's outcome. If the handler itself is cancelled (the event loop is
        shutting down), the attempt is cancelled as at worker shutdown and still reports."""
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if not future.done():
                running.cancel(ActivityCancellationDetails(worker_shutdown=True))
                await asyncio.wait([future])
            return future.result()

    # -- answers ---------------------------------------------------------------------------

    async def _send_continued(
        self, task: Mapping[str, Any], result: list[Payload], follow_up: FollowUp
    ) -> bool:
        """Send the result with the workflow task it wakes, run here (see
        ``WorkflowTaskContinuation``); False when there is none or the answer is too
        large with it: the caller sends the result alone."""
        continuation = await follow_up(result)
        if continuation is None:
            return False
        fields = {"result": result, "continuation": continuation.body}
        try:
            await self._send(task, ACTIVITY_TASK_COMPLETED, fields, fatal_only=True)
        except AnswerNotSent as exc:
            continuation.lost()
            if exc.__cause__ is not None and is_record_problem(exc.__cause__):
                return False
            raise
        continuation.sent()
        return True

    async def _send_failure(
        self,
        task: Mapping[str, Any],
        error: BaseException,
        last_heartbeat: list[Payload],
        running: _Running | None = None,
    ) -> None:
        ids = (
            running.ids
            if running is not None
            else (
                f"activity {task['activity_type']} (id {task['activity_id']}, attempt "
                f"{task['attempt']}) of workflow {task['workflow_id']} run {task['run_id']}"
            )
        )
        benign = (
            isinstance(error, ApplicationError)
            and error.category is ApplicationErrorCategory.BENIGN
        )
        _log.log(
            logging.DEBUG if benign else logging.WARNING,
            "Completing %s as failed: %s",
            ids,
            error,
            exc_info=error if running is not None else None,
        )
        try:
            failure: Failure = await self._converter.encode_failure(error)
        except Exception as exc:
            failure = await self._converter.encode_failure(
                ApplicationError(f"{type(error).__name__}: {error} (not convertible: {exc})")
            )
        body = {"failure": failure, "last_heartbeat_details": last_heartbeat}
        await self._send(task, ACTIVITY_TASK_FAILED, body, running=running)

    async def _send(
        self,
        task: Mapping[str, Any],
        name: str,
        fields: dict[str, Any],
        *,
        running: _Running | None = None,
        fatal_only: bool = False,
    ) -> None:
        body = {
            "scheduled_event_id": task["scheduled_event_id"],
            "attempt": task["attempt"],
            "activity_id": task["activity_id"],
            **fields,
        }
        try:
            await self.transport.send_command(
                str(task["workflow_id"]), (name, body), run_id=str(task["run_id"])
            )
        except Exception as exc:
            if fatal_only or name == ACTIVITY_TASK_FAILED or not is_record_problem(exc):
                raise AnswerNotSent(f"{name.rsplit('.', 1)[-1]} not sent: {exc}") from exc
            # The answer itself cannot be written (too large, not encodable): fail the attempt.
            error = ApplicationError(
                f"The {name.rsplit('.', 1)[-1]} answer of the activity cannot be sent: {exc}",
                type="AnswerNotSent",
            )
            await self._send_failure(task, error, [], running)
