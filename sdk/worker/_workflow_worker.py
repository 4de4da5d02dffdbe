"""The workflow half of a worker: consumes ``workflow-tasks.<queue>``, runs workflow code.

Per task (see "The protocol" in ``schemas/README.md``):

- a *query task* (``scheduled_event_id`` 0, ``query`` set) is answered on
  ``replies`` from the cached instance when it is up to date, else from a fresh
  replay of the task's whole history;
- a *workflow task* is run on the cached instance of its run, or on a fresh one
  when the task carries the whole history; a task with only new events for a
  run this worker does not hold is answered ``WorkflowTaskFailed`` with cause
  ``STICKY_CACHE_MISS``, and the engine sends it again with the whole history.
  The answer is a ``WorkflowTaskCompleted`` with the commands the code produced,
  or a ``WorkflowTaskFailed`` (the instance is then dropped).

Tasks of one workflow run one after another, in partition order; different
workflows run concurrently, their code in ``workflow_task_executor`` threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .. import schemas
from .._eager_start import EagerStarts
from ..common._failure import Failure
from ..common._metric import MetricMeter
from ..common._payload import Payload
from ..converter import DataConverter
from ..exceptions import ApplicationError
from ..topics import consumer_group, workflow_tasks_topic
from ..workflow._definition import _Definition
from ..workflow._history import (
    COMMAND_EVENTS,
    SCHEDULE_ACTIVITY_TASK,
    WORKFLOW_EXECUTION_STARTED,
    event_kind,
)
from ..workflow._history import WORKFLOW_TASK_COMPLETED as TASK_COMPLETED_EVENT
from ..workflow._runtime import (
    UNHANDLED_FAILURE_CAUSE,
    ActivationResult,
    StaleInstanceError,
    WorkflowInstance,
)
from ._activity_worker import ActivityWorker, Continuation, FollowUp, eager_task
from ._codec import decode_in, encode_in
from ._consumer import Record, TaskConsumer
from ._continuation import continuation_history
from ._metrics import WorkerMetrics, WorkflowTypeMetrics
from ._runnable_clock import RUNNABLE_CLOCK
from ._shared import (
    QUERY_RESULT,
    RESET_STICKY,
    WORKFLOW_TASK_COMPLETED,
    WORKFLOW_TASK_FAILED,
    WORKFLOW_TASK_STARTED,
    AnswerNotSent,
    WorkerClient,
    is_record_problem,
)
from ._started import STARTED_ACK_DELAY, StartedWords
from ._threads import LoopThreads

_log = logging.getLogger("cadenza.worker")

STICKY_CACHE_MISS_CAUSE = "STICKY_CACHE_MISS"
"""``WorkflowTaskFailed.cause`` asking the engine to resend a task with the whole history."""

DEADLOCK_TIMEOUT_SECONDS = 2.0
"""How long workflow code may run without yielding (Temporal's limit), unless ``debug_mode``;
time the process was starved (of the GIL or a CPU) does not count."""

_REPLAY_ALLOWANCE_SECONDS = 0.002
"""Extra deadlock allowance per history event: a cache miss replays the whole history
in one activation, where Temporal replays task by task."""

MAX_EAGER_ACTIVITIES_PER_TASK = 3
"""Activities one workflow task completion may start eagerly (Temporal's limit)."""

T = TypeVar("T")


class WorkflowCache(Generic[T]):
    """The least-recently-used cache of workflow instances, keyed by run id.

    An instance being worked on is *taken* out of the cache and *put* back after,
    so a busy instance is never evicted under its task.

    Example:
        >>> cache: WorkflowCache[str] = WorkflowCache(2)
        >>> cache.put("run-1", "a"), cache.put("run-2", "b"), cache.put("run-3", "c")
        ([], [], [('run-1', 'a')])
        >>> cache.take("run-2"), cache.take("run-2")
        ('b', None)
    """

    def __init__(self, max_size: int) -> None:
        if max_size < 0:
            raise ValueError("max_cached_workflows cannot be negative")
        self.max_size = max_size
        self._items: OrderedDict[str, T] = OrderedDict()

    def take(self, run_id: str) -> T | None:
        """Remove and return the instance of ``run_id``, if cached."""
        return self._items.pop(run_id, None)

    def peek(self, run_id: str) -> T | None:
        """The instance of ``run_id``, if cached, without touching its recency."""
        return self._items.get(run_id)

    def put(self, run_id: str, item: T) -> list[tuple[str, T]]:
        """Cache ``item`` as the most recently used; return what was evicted for room."""
        if self.max_size == 0:
            return [(run_id, item)]
        self._items.pop(run_id, None)
        self._items[run_id] = item
        evicted: list[tuple[str, T]] = []
        while len(self._items) > self.max_size:
            evicted.append(self._items.popitem(last=False))
        return evicted

    def drop(self, run_id: str) -> None:
        """Forget ``run_id``."""
        self._items.pop(run_id, None)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._items

    def run_ids(self) -> list[str]:
        """Cached run ids, least recently used first."""
        return list(self._items)


class _Deadlock(Exception):
    pass


_TASK_SCHEDULED = "cadenza.history.WorkflowTaskScheduled"


def task_started_ack_delay(task: Mapping[str, Any]) -> float:
    """When to say a task started: after :data:`STARTED_ACK_DELAY`, or a quarter of its
    timeout (from its ``WorkflowTaskScheduled`` event) if that is sooner.

    Example:
        >>> timeout = {"start_to_close_timeout_ms": 2000}
        >>> scheduled = {"attributes": ("cadenza.history.WorkflowTaskScheduled", timeout)}
        >>> task_started_ack_delay({"history": [scheduled]})
        0.5
        >>> task_started_ack_delay({"history": []})
        1.0
    """
    for event in reversed(task.get("history") or []):
        name, attrs = event["attributes"]
        if name == _TASK_SCHEDULED and attrs.get("start_to_close_timeout_ms"):
            return min(STARTED_ACK_DELAY, int(attrs["start_to_close_timeout_ms"]) / 4000)
    return STARTED_ACK_DELAY


@dataclass(eq=False)
class _FollowUp:
    """An eager attempt's result waiting in its run's queue to continue the workflow."""

    task: Mapping[str, Any]
    """The workflow task whose completion scheduled the activity."""
    schedule: Mapping[str, Any]
    """Its ``ScheduleActivityTask``, as sent."""
    result: list[Payload]
    answer: asyncio.Future[Continuation | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class WorkflowWorker:
    """Consumes one task queue's workflow tasks; built and driven by ``Worker``."""

    def __init__(
        self,
        *,
        client: WorkerClient,
        task_queue: str,
        workflows: Mapping[str | None, _Definition],
        max_cached_workflows: int,
        max_concurrent_workflow_tasks: int,
        executor: concurrent.futures.ThreadPoolExecutor | LoopThreads,
        failure_exception_types: Sequence[type[BaseException]],
        debug_mode: bool,
        identity: str,
        build_id: str,
        on_fatal: Callable[[BaseException], None],
        metrics: WorkerMetrics | None = None,
        metric_meter: MetricMeter = MetricMeter.noop,
        interceptor_classes: Sequence[type] = (),
    ) -> None:
        self._client = client
        self._interceptor_classes = tuple(interceptor_classes)
        """The worker interceptors' ``WorkflowInboundInterceptor`` classes."""
        self._settings = client.settings
        self._transport = client.transport
        self._converter: DataConverter = client.data_converter
        self._codec = self._converter.payload_codec
        self._namespace = client.namespace
        self._task_queue = task_queue
        self._workflows = dict(workflows)
        self._cache: WorkflowCache[WorkflowInstance] = WorkflowCache(max_cached_workflows)
        self._capacity = max_concurrent_workflow_tasks
        self._executor = executor
        self._failure_types = tuple(failure_exception_types)
        self._debug_mode = debug_mode
        self._identity = identity
        self._build_id = build_id
        self._on_fatal = on_fatal
        self._metrics = metrics
        """The built-in metrics; None (the runtime exports none) costs one test per task."""
        self._metric_meter = metric_meter
        """The runtime's meter, for ``workflow.metric_meter()``."""
        self._consumer: TaskConsumer | None = None
        self._queues: dict[str, deque[tuple[Record | None, dict[str, Any] | _FollowUp]]] = {}
        self._drainers: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        self._resets: set[asyncio.Future[None]] = set()
        self._started_acks = StartedWords("workflow task")
        self._watched: dict[asyncio.Future[Any], tuple[list[float], float]] = {}
        """Activations running workflow code: when a thread took each, and its timeout."""
        self._overran: set[asyncio.Future[Any]] = set()
        """Activations the watchdog gave up on (their futures cancelled by it)."""
        self._watchdog: asyncio.Task[None] | None = None
        self.eager_activities: ActivityWorker | None = None
        """The same worker's activity half, which runs activities that this worker's
        completions schedule on its own task queue at once (None: eager execution off)."""
        self.sticky_cache_misses = 0
        """Tasks answered ``STICKY_CACHE_MISS`` (each costs a resend with the whole history)."""
        self.eager_started = 0
        """First workflow tasks this worker took from eager starts' replies."""
        self._eager_starts: EagerStarts | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.continued = 0
        """Workflow tasks this worker ran right after an eager activity and sent with its
        result (see ``_continuation``)."""

    @property
    def cache(self) -> WorkflowCache[WorkflowInstance]:
        """The instance cache (for tests and diagnostics)."""
        return self._cache

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Join the task queue's workflow-worker group and start consuming."""
        self._loop = loop
        self._consumer = TaskConsumer(
            settings=self._settings,
            topic=workflow_tasks_topic(self._settings, self._task_queue),
            group_id=consumer_group(self._settings, f"workflow-worker.{self._task_queue}"),
            capacity=self._capacity,
            loop=loop,
            on_record=self._on_record,
            on_fatal=self._on_fatal,
            client_id=f"cadenza-workflow-worker-{self._identity}",
        )
        self._consumer.start()
        if self._metrics is not None:
            consumer = self._consumer
            self._metrics.sample_slots("WorkflowWorker", self._capacity, lambda: consumer.in_flight)
            self._metrics.sample_cache_size(self._cache.__len__)
        eager_starts = getattr(self._transport, "eager_starts", None)
        if isinstance(eager_starts, EagerStarts):
            eager_starts.register(self._task_queue, self)
            self._eager_starts = eager_starts

    async def shutdown(self) -> None:
        """Take no new tasks, finish the running ones, commit and leave the group."""
        self._stopping = True
        self._started_acks.stop()
        if self._eager_starts is not None:
            self._eager_starts.unregister(self._task_queue, self)
        if self._consumer is not None:
            self._consumer.stop_fetching()
        if self._drainers:
            await asyncio.gather(*self._drainers.values(), return_exceptions=True)
        if self._resets:  # eviction notices on their way (each is one produce)
            await asyncio.gather(*self._resets, return_exceptions=True)
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._consumer is not None:
            await self._consumer.close()

    # -- eager workflow start (see cadenza._eager_start) -----------------------------------

    def try_reserve_eager(self) -> bool:
        """Take a workflow task slot for an eager start's first task (the same slots
        as the topic's tasks): False when full or stopping."""
        if self._stopping or self._consumer is None:
            return False
        return self._consumer.try_reserve()

    def release_eager(self) -> None:
        """Give back a slot reserved for an eager start that brought no task."""
        assert self._consumer is not None
        self._consumer.release()

    def run_eager(self, task: bytes) -> None:
        """Run an eager start's first task (as encoded on the topic) in its reserved slot.

        A task that cannot run here (the worker is stopping, the bytes do not decode)
        is dropped: the engine's task timeout dispatches its next attempt to the topic.
        """
        consumer = self._consumer
        assert consumer is not None
        try:
            decoded = schemas.decode_as(task, schemas.WORKFLOW_TASK)
        except schemas.DecodeError as exc:
            _log.error("Dropping an undecodable eager workflow task: %s", exc)
            consumer.release()
            return
        if self._stopping:
            consumer.release()
            return
        self.eager_started += 1
        workflow_id = str(decoded["workflow_id"])
        if self._loop is None or _running_loop() is self._loop:
            self._enqueue(workflow_id, None, decoded)
        else:  # a client on another event loop than the worker's
            self._loop.call_soon_threadsafe(self._enqueue, workflow_id, None, decoded)

    # -- dispatch --------------------------------------------------------------------------

    def _on_record(self, record: Record) -> None:
        consumer = self._consumer
        assert consumer is not None
        if self._stopping:
            consumer.abandon(record.ticket)
            return
        task = consumer.decode(record, schemas.WORKFLOW_TASK)
        if task is None:
            return
        self._enqueue(str(task["workflow_id"]), record, task)

    def _enqueue(
        self, workflow_id: str, record: Record | None, item: dict[str, Any] | _FollowUp
    ) -> None:
        self._queues.setdefault(workflow_id, deque()).append((record, item))
        if workflow_id not in self._drainers:
            self._drainers[workflow_id] = asyncio.get_running_loop().create_task(
                self._drain(workflow_id), name=f"cadenza workflow {workflow_id}"
            )

    async def _drain(self, workflow_id: str) -> None:
        consumer = self._consumer
        assert consumer is not None
        queue = self._queues[workflow_id]
        try:
            while queue and not self._stopping:
                record, item = queue[0]
                if isinstance(item, _FollowUp):
                    queue.popleft()
                    item.answer.set_result(await self._continue_or_none(item))
                    continue
                try:
                    await self._process(item)
                except AnswerNotSent as exc:
                    queue.popleft()
                    self._settle(record, done=False)
                    self._on_fatal(exc)
                    return
                queue.popleft()
                self._settle(record, done=True)
        finally:
            for record, item in queue:
                if isinstance(item, _FollowUp):
                    if not item.answer.done():
                        item.answer.set_result(None)  # the result goes alone
                else:
                    self._settle(record, done=False)
            del self._queues[workflow_id]
            del self._drainers[workflow_id]

    def _settle(self, record: Record | None, *, done: bool) -> None:
        """Free a task's slot: commit its record (``done``) or leave it to be read again;
        an eager start's task (no record) only frees its slot."""
        consumer = self._consumer
        assert consumer is not None
        if record is None:
            consumer.release()
        elif done:
            consumer.done(record.ticket)
        else:
            consumer.abandon(record.ticket)

    async def _process(self, task: dict[str, Any]) -> None:
        started_ack = self._ack_started_later(task)
        try:
            if int(task["scheduled_event_id"]) == 0 and task.get("query") is not None:
                await self._answer_query_task(task)
            else:
                await self._run_task(task)
        except AnswerNotSent:
            raise
        except Exception:
            # A bug of the worker, not of the workflow: the task times out and comes back.
            _log.exception(
                "Workflow task of workflow %s run %s could not be processed",
                task["workflow_id"],
                task["run_id"],
            )
        finally:
            self._started_acks.cancel(started_ack)  # its answer says it started

    def _ack_started_later(self, task: dict[str, Any]) -> asyncio.TimerHandle | None:
        """Say the task started if it still runs after a moment (see ``_started``): its
        timeout counts from the word, so a task no worker has taken waits for one."""
        if not task["scheduled_event_id"]:
            return None
        body = {"scheduled_event_id": task["scheduled_event_id"], "attempt": task["attempt"]}
        return self._started_acks.later(
            task_started_ack_delay(task), lambda: self._send(task, (WORKFLOW_TASK_STARTED, body))
        )

    # -- workflow tasks --------------------------------------------------------------------

    async def _run_task(self, task: dict[str, Any]) -> None:
        workflow_id, run_id = str(task["workflow_id"]), str(task["run_id"])
        measured: WorkflowTypeMetrics | None = None
        started_at = 0.0
        if self._metrics is not None:
            measured = self._metrics.workflow_type(str(task["workflow_type"]))
            started_at = measured.task_started(task.get("scheduled_time_ms"))
        definition = self._definition(str(task["workflow_type"]))
        if definition is None:
            known = sorted(name for name in self._workflows if name is not None)
            error = ApplicationError(
                f"Workflow class {task['workflow_type']} is not registered on this worker, "
                f"available workflows: {', '.join(known) or '(none)'}",
                type="NotFoundError",
            )
            await self._fail_task(task, UNHANDLED_FAILURE_CAUSE, error)
            return
        events: list[dict[str, Any]] = await decode_in(list(task["history"]), self._codec)
        updates: list[dict[str, Any]] = await decode_in(list(task["updates"]), self._codec)
        full_history = int(task["history_from_event_id"]) <= 1
        instance = self._cache.take(run_id)
        if instance is not None and instance.ran_ahead_to is not None:
            assumed, instance.ran_ahead_to = instance.ran_ahead_to, None
            if int(task["history_from_event_id"]) <= assumed:
                # The task repeats events the instance assumed when it ran a
                # continuation: the engine did not take it (something else happened
                # to the run first). The instance ran ahead of history: replay.
                _log.debug("Workflow %s run %s: continuation not taken", workflow_id, run_id)
                instance = None
        if measured is not None and instance is not None:
            assert self._metrics is not None
            self._metrics.sticky_cache_hit.add(1)
        result: ActivationResult | None = None
        try:
            if instance is not None:
                try:
                    result = await self._activate(instance, events, updates)
                except StaleInstanceError as exc:
                    _log.debug("Workflow %s run %s: %s", workflow_id, run_id, exc)
                    instance = None
            if instance is None:
                if not full_history:
                    await self._sticky_cache_miss(task)
                    return
                instance = self._new_instance(definition, task, events, self._metric_meter)
                result = await self._activate(instance, events, updates)
        except _Deadlock as exc:
            await self._fail_task(task, UNHANDLED_FAILURE_CAUSE, exc.args[0])
            return
        except StaleInstanceError as exc:
            # The whole history does not replay: it is inconsistent (or the engine is).
            await self._fail_task(task, UNHANDLED_FAILURE_CAUSE, exc)
            return
        except Exception as exc:  # e.g. a codec or instance construction failure
            await self._fail_task(task, UNHANDLED_FAILURE_CAUSE, exc)
            return
        assert result is not None
        if result.failure is not None:
            _log.warning(
                "Failed activation on workflow %s with ID %s and run ID %s (%s)",
                task["workflow_type"],
                workflow_id,
                run_id,
                result.failure.cause,
                exc_info=result.failure.error,
            )
            failure = await self._encode_failure(result.failure.failure)
            await self._send_failed(task, result.failure.cause, failure)
            return
        if not result.ran_live:
            # Every event was seen already: a task delivered twice. The first
            # delivery was answered; there is nothing to add.
            _log.debug(
                "Workflow %s run %s: task %s has no new workflow task to run",
                workflow_id,
                run_id,
                task["scheduled_event_id"],
            )
            self._keep(instance, result)
            return
        kept = self._keep(instance, result)
        commands, eager = self._request_eager(result.commands)
        sent = False
        try:
            commands = await encode_in(commands, self._codec)
            body = {
                "scheduled_event_id": task["scheduled_event_id"],
                "attempt": task["attempt"],
                "commands": commands,
                "identity": self._identity,
                "binary_checksum": self._build_id,
                "sticky": kept,
            }
            try:
                await self._send(task, (WORKFLOW_TASK_COMPLETED, body))
            except AnswerNotSent:
                raise
            except Exception as exc:
                if not is_record_problem(exc):
                    raise AnswerNotSent(f"WorkflowTaskCompleted not sent: {exc}") from exc
                self._cache.drop(run_id)
                await self._fail_task(task, UNHANDLED_FAILURE_CAUSE, exc)
                return
            sent = True
        finally:
            if not sent:
                self._release_eager(eager)
        if measured is not None:
            measured.task_done(started_at, result.commands, instance.start_time_ms)
        # The completion is on the commands partition before any answer of these attempts.
        self._run_eager(task, commands, eager, continue_after=kept)
        if task.get("query") is not None:
            await self._answer_query(task, instance)

    def _run_eager(
        self,
        task: Mapping[str, Any],
        commands: Sequence[Any],
        eager: Sequence[int],
        *,
        continue_after: bool,
    ) -> None:
        """Start the attempts a sent completion of ``task`` asked to run eagerly. When
        its only command is one of them and the run stays cached (``continue_after``),
        the attempt's result continues the workflow here (see ``_continuation``)."""
        activities = self.eager_activities
        for index in eager:
            assert activities is not None
            follow_up: FollowUp | None = None
            if continue_after and len(commands) == 1:
                follow_up = self._follow_up(task, commands[index][1])
            activities.run_eager(eager_task(task, commands[index][1]), follow_up)

    def _follow_up(self, task: Mapping[str, Any], schedule: Mapping[str, Any]) -> FollowUp:
        async def follow_up(result: list[Payload]) -> Continuation | None:
            item = _FollowUp(task, schedule, result)
            self._enqueue(str(task["workflow_id"]), None, item)
            return await item.answer

        return follow_up

    async def _continue_or_none(self, item: _FollowUp) -> Continuation | None:
        """:meth:`_continue`; a bug of the worker there must not leave the activity
        waiting for an answer that never comes: its result then goes alone."""
        try:
            return await self._continue(item)
        except Exception:
            _log.exception(
                "Workflow %s run %s: continuation failed; the result goes alone",
                item.task["workflow_id"],
                item.task["run_id"],
            )
            return None

    async def _continue(self, item: _FollowUp) -> Continuation | None:
        """Run the workflow task that ``item``'s result wakes, on the history it would
        have (``continuation_history``); None when the run has moved on here (or is not
        cached), or the task cannot be run here: the result then goes alone and the
        engine dispatches the task."""
        task = item.task
        run_id = str(task["run_id"])
        instance = self._cache.peek(run_id)
        if (
            self._stopping
            or instance is None
            or instance.history_length != int(task["started_event_id"])
            or instance.abandoned
        ):
            return None
        self._cache.take(run_id)
        measured: WorkflowTypeMetrics | None = None
        started_at = 0.0
        if self._metrics is not None:
            measured = self._metrics.workflow_type(str(task["workflow_type"]))
            started_at = measured.task_started(None)
        time_ms = int(time.time() * 1000)
        history = continuation_history(
            task,
            item.schedule,
            item.result,
            time_ms=time_ms,
            identity=self._identity,
            build_id=self._build_id,
        )
        started = int(history[-1]["event_id"])  # the continued task's WorkflowTaskStarted
        try:
            events = await decode_in(history, self._codec)
            result = await self._activate(instance, events, [])
        except Exception as exc:  # a deadlock, a codec failure: the task, dispatched, says
            _log.debug("Workflow %s run %s: not continued: %s", task["workflow_id"], run_id, exc)
            return None
        if result.failure is not None or not result.ran_live:
            return None  # dropped: the dispatched task replays it and reports the failure
        kept = self._keep(instance, result)
        produced = result.commands
        commands, eager = self._request_eager(produced)
        try:
            commands = await encode_in(commands, self._codec)
        except Exception as exc:  # the dispatched task fails on it and says why
            _log.debug("Workflow %s run %s: not continued: %s", task["workflow_id"], run_id, exc)
            self._release_eager(eager)
            self._cache.drop(run_id)
            return None
        body = {
            "task_time_ms": time_ms,
            "completion": {
                "scheduled_event_id": started - 1,
                "attempt": 1,
                "commands": commands,
                "identity": self._identity,
                "binary_checksum": self._build_id,
                "sticky": kept,
            },
        }
        instance.ran_ahead_to = started
        next_task = {**task, "scheduled_event_id": started - 1, "started_event_id": started}

        def sent() -> None:
            self.continued += 1
            if measured is not None:
                measured.task_done(started_at, produced, instance.start_time_ms)
            self._run_eager(next_task, commands, eager, continue_after=kept)

        def lost() -> None:
            self._release_eager(eager)
            self._cache.drop(run_id)

        return Continuation(body=body, sent=sent, lost=lost)

    def _request_eager(self, commands: Sequence[Any]) -> tuple[list[Any], list[int]]:
        """``commands`` with ``request_eager_execution`` set on up to
        :data:`MAX_EAGER_ACTIVITIES_PER_TASK` activities of this task queue that the
        activity half has a slot for (reserved here), and the indexes of those.

        The engine records them as started by this worker, and this worker runs them
        once the completion is written: one engine round trip less per activity.
        """
        activities = self.eager_activities
        out = list(commands)
        if activities is None:
            return out, []
        eager: list[int] = []
        for index, (name, attrs) in enumerate(out):
            if len(eager) == MAX_EAGER_ACTIVITIES_PER_TASK:
                break
            if (
                name == SCHEDULE_ACTIVITY_TASK
                and attrs["task_queue"] == self._task_queue
                and activities.reserve_eager(str(attrs["activity_type"]))
            ):
                out[index] = (name, {**attrs, "request_eager_execution": True})
                eager.append(index)
        return out, eager

    def _release_eager(self, eager: Sequence[int]) -> None:
        for _ in eager:
            assert self.eager_activities is not None
            self.eager_activities.release_eager()

    def _keep(self, instance: WorkflowInstance, result: ActivationResult) -> bool:
        """Put the instance back in the cache unless its run is over; whether it was kept.

        A run evicted to make room is reported to the engine (ResetStickyTaskQueue),
        so that its next task carries the whole history rather than a delta this
        worker would send back with STICKY_CACHE_MISS: a round trip saved where it
        costs most, when a run wakes up, and no deadline spent on the way.
        """
        if result.completed or instance.abandoned:
            return False
        return self._cache_put(instance)

    def _cache_put(self, instance: WorkflowInstance) -> bool:
        kept = True
        for run_id, evicted in self._cache.put(instance.run_id, instance):
            if evicted is instance:
                kept = False  # the completion says so itself (sticky: false)
                continue
            _log.debug("Evicting workflow run %s from the cache", run_id)
            reset = asyncio.ensure_future(self._reset_sticky(evicted.workflow_id, run_id))
            self._resets.add(reset)
            reset.add_done_callback(self._resets.discard)
        return kept

    async def _reset_sticky(self, workflow_id: str, run_id: str) -> None:
        try:
            await self._transport.send_command(workflow_id, (RESET_STICKY, {}), run_id=run_id)
        except Exception as exc:  # only an optimisation: the task falls back to a cache miss
            _log.debug("ResetStickyTaskQueue for run %s not sent: %s", run_id, exc)

    def _definition(self, workflow_type: str) -> _Definition | None:
        return self._workflows.get(workflow_type) or self._workflows.get(None)

    def _new_instance(
        self,
        definition: _Definition,
        task: Mapping[str, Any],
        events: Sequence[Any],
        metric_meter: MetricMeter | None = None,
    ) -> WorkflowInstance:
        """A new instance of the task's run; ``metric_meter`` for ``workflow.metric_meter()``
        (a query's replay gets none: it must not record what the run records)."""
        if not events or event_kind(events[0]) != WORKFLOW_EXECUTION_STARTED:
            raise ValueError(
                f"The workflow task of workflow {task['workflow_id']} carries the whole history "
                "but it does not start with WorkflowExecutionStarted"
            )
        return WorkflowInstance(
            definition,
            workflow_id=str(task["workflow_id"]),
            run_id=str(task["run_id"]),
            started_event=events[0],
            payload_converter=self._converter.payload_converter,
            failure_converter=self._converter.failure_converter,
            namespace=self._namespace,
            failure_exception_types=self._failure_types,
            metric_meter=metric_meter,
            interceptor_classes=self._interceptor_classes,
        )

    async def _activate(
        self,
        instance: WorkflowInstance,
        events: Sequence[Any],
        updates: Sequence[Mapping[str, Any]],
    ) -> ActivationResult:
        return await self._in_thread(
            lambda: instance.activate(events, updates=updates), len(events), instance
        )

    def _submit(self, fn: Callable[[], T], loop: asyncio.AbstractEventLoop) -> asyncio.Future[T]:
        """Run ``fn`` on the executor's threads (the worker's own, or the user's pool)."""
        if isinstance(self._executor, LoopThreads):
            return self._executor.submit(fn, loop)
        return loop.run_in_executor(self._executor, fn)

    async def _in_thread(self, fn: Callable[[], T], events: int, instance: WorkflowInstance) -> T:
        """Run workflow code in the executor; past the deadlock timeout, give up on it."""
        loop = asyncio.get_running_loop()
        if self._debug_mode:
            return await self._submit(fn, loop)
        # The clock starts when a thread takes the work, not while it queues for one (the
        # thread notes the time itself: no extra wake-up of the loop per task), and it
        # stops while the process is starved: time the code waits for the GIL held by
        # other threads (other tasks, the event loop, a garbage collection) is not the
        # code's failure to yield.
        clock = RUNNABLE_CLOCK
        began: list[float] = []

        def call() -> T:
            began.append(clock.now())
            return fn()

        timeout = DEADLOCK_TIMEOUT_SECONDS + events * _REPLAY_ALLOWANCE_SECONDS
        with clock.measuring():
            future = self._submit(call, loop)
            # One watchdog checks every activation's time (``_watch``): a timer and a
            # waiter of asyncio.wait for each cost 20-25 us, twice per workflow.
            self._watched[future] = (began, timeout)
            if self._watchdog is None:
                self._watchdog = loop.create_task(self._watch())
            try:
                return await future
            except asyncio.CancelledError:
                if future not in self._overran:
                    raise
                self._overran.discard(future)
            finally:
                del self._watched[future]
        # The thread cannot be stopped; the instance is abandoned to it.
        instance.abandoned = True
        self._cache.drop(instance.run_id)
        raise _Deadlock(
            RuntimeError(
                f"[TMPRL1101] Potential deadlock detected: workflow "
                f"{instance.workflow_id} didn't yield within {DEADLOCK_TIMEOUT_SECONDS:g} "
                "second(s) (blocking calls are not allowed in workflow code; pass "
                "debug_mode=True to the Worker to disable this check)"
            )
        )

    async def _watch(self) -> None:
        """While workflow code runs, cancel the wait of any activation whose code has
        run (since a thread took it, by ``RUNNABLE_CLOCK``) past its deadlock timeout;
        its ``_in_thread`` then gives up on it. Checks 20 times per timeout."""
        clock = RUNNABLE_CLOCK
        try:
            while self._watched:
                await asyncio.sleep(DEADLOCK_TIMEOUT_SECONDS / 20)
                now = clock.now()
                for future, (began, timeout) in list(self._watched.items()):
                    if began and now - began[0] > timeout and not future.done():
                        self._overran.add(future)
                        future.cancel()
        finally:
            self._watchdog = None

    async def _sticky_cache_miss(self, task: Mapping[str, Any]) -> None:
        self.sticky_cache_misses += 1
        if self._metrics is not None:
            self._metrics.sticky_cache_miss.add(1)
        _log.debug(
            "Workflow %s run %s is not cached: asking for the whole history",
            task["workflow_id"],
            task["run_id"],
        )
        error = ApplicationError(
            f"Workflow run {task['run_id']} is not in this worker's cache and the task "
            f"carries history from event {task['history_from_event_id']} only",
            type="StickyCacheMiss",
        )
        await self._fail_task(task, STICKY_CACHE_MISS_CAUSE, error)

    async def _fail_task(self, task: Mapping[str, Any], cause: str, error: BaseException) -> None:
        self._cache.drop(str(task["run_id"]))
        if cause != STICKY_CACHE_MISS_CAUSE:
            _log.warning(
                "Failing workflow task of workflow %s run %s (%s): %s",
                task["workflow_id"],
                task["run_id"],
                cause,
                error,
            )
        failure = await self._converter.encode_failure(error)
        await self._send_failed(task, cause, failure)

    async def _send_failed(self, task: Mapping[str, Any], cause: str, failure: Failure) -> None:
        if self._metrics is not None and cause != STICKY_CACHE_MISS_CAUSE:
            self._metrics.workflow_type(str(task["workflow_type"])).task_failed(cause)
        body = {
            "scheduled_event_id": task["scheduled_event_id"],
            "attempt": task["attempt"],
            "cause": cause,
            "failure": failure,
        }
        try:
            await self._send(task, (WORKFLOW_TASK_FAILED, body))
        except Exception as exc:
            raise AnswerNotSent(f"WorkflowTaskFailed not sent: {exc}") from exc

    async def _send(self, task: Mapping[str, Any], body: tuple[str, dict[str, Any]]) -> None:
        await self._transport.send_command(
            str(task["workflow_id"]), body, run_id=str(task["run_id"])
        )

    async def _encode_failure(self, failure: Failure) -> Failure:
        if self._codec is None:
            return failure
        return await self._codec.encode_failure(failure)

    # -- queries ---------------------------------------------------------------------------

    async def _answer_query_task(self, task: dict[str, Any]) -> None:
        run_id = str(task["run_id"])
        instance = self._cache.take(run_id)
        try:
            await self._answer_query(task, instance)
        finally:
            if instance is not None and not instance.abandoned and run_id not in self._cache:
                self._cache_put(instance)

    async def _answer_query(self, task: Mapping[str, Any], cached: WorkflowInstance | None) -> None:
        query = task["query"]
        try:
            result = await self._run_query(task, cached)
            body: dict[str, Any] = {"query_id": query["query_id"], "result": result}
        except Exception as exc:
            if isinstance(exc, _Deadlock):
                exc = exc.args[0]
            _log.debug(
                "Query %s of workflow %s failed: %s", query["query_type"], task["workflow_id"], exc
            )
            failure = await self._converter.encode_failure(exc)
            body = {"query_id": query["query_id"], "result": [], "failure": failure}
        try:
            await self._transport.send_reply(
                query["reply_to"],
                workflow_id=str(task["workflow_id"]),
                run_id=str(task["run_id"]),
                body=(QUERY_RESULT, body),
            )
        except Exception as exc:
            # The client times out; the worker goes on.
            _log.error(
                "The answer to query %s of workflow %s was not sent: %s",
                query["query_id"],
                task["workflow_id"],
                exc,
            )

    async def _run_query(
        self, task: Mapping[str, Any], cached: WorkflowInstance | None
    ) -> list[Any]:
        query = task["query"]
        history = list(task["history"])
        instance = cached
        if instance is None or not _only_its_own_completion(history, instance.history_length):
            definition = self._definition(str(task["workflow_type"]))
            if definition is None:
                known = sorted(name for name in self._workflows if name is not None)
                raise ApplicationError(
                    f"Workflow class {task['workflow_type']} is not registered on this worker, "
                    f"available workflows: {', '.join(known) or '(none)'}",
                    type="NotFoundError",
                )
            events: list[dict[str, Any]] = await decode_in(history, self._codec)
            instance = self._new_instance(definition, task, events)
            replay = instance
            result = await self._in_thread(lambda: replay.activate(events), len(events), replay)
            if result.failure is not None:
                raise result.failure.error
        args: list[Any] = await decode_in(list(query["args"]), self._codec)
        target = instance
        payloads = await self._in_thread(
            lambda: target.query(
                str(query["query_type"]),
                args,
                query_id=str(query["query_id"]),
                headers=query.get("header") or {},
            ),
            0,
            target,
        )
        encoded: list[Any] = await encode_in(payloads, self._codec)
        return encoded


def _only_its_own_completion(history: Sequence[Mapping[str, Any]], seen: int) -> bool:
    """Whether the events of ``history`` after event ``seen`` are only the completion of
    the task that an instance which has seen ``seen`` events ran: its
    ``WorkflowTaskCompleted`` and the events of its commands. That instance's state is
    then the state the whole history replays to, and a query can read it instead of
    replaying (O(history) per query: 118 ms at 3,000 events). Any other event after
    ``seen`` (a signal, a result, a new task) is for a replay to take in."""
    first_newer = len(history)
    while first_newer and int(history[first_newer - 1]["event_id"]) > seen:
        first_newer -= 1
    if first_newer == len(history):
        return True  # nothing newer (or the instance ran ahead of the history)
    if first_newer == 0:
        return False  # the history does not reach back to ``seen``: not this instance's
    newer = history[first_newer:]
    return event_kind(newer[0]) == TASK_COMPLETED_EVENT and all(
        event_kind(event) in COMMAND_EVENTS for event in newer[1:]
    )
