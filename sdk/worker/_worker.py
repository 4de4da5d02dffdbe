"""``Worker``: runs workflows and activities of one task queue, fed by Kafka.

The same names, signature and defaults as ``temporalio.worker.Worker`` where
Cadenza has the feature::

    async with Worker(client, task_queue="orders", workflows=[OrderWorkflow],
                      activities=[charge]):
        await client.execute_workflow(OrderWorkflow.run, 42, id="order-42",
                                      task_queue="orders")

A worker joins two consumer groups: ``<ns>.workflow-worker.<queue>`` on
``<ns>.workflow-tasks.<queue>`` and ``<ns>.activity-worker.<queue>`` on
``<ns>.activity-tasks.<queue>``. Kafka spreads the partitions over the workers
of a queue, so adding workers scales a queue out, and the partition assignment
keeps each workflow on one worker (sticky execution).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import warnings
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, TypedDict

from ..activity._definition import _Definition as _ActivityDefinition
from ..topics import TopicAdmin, validate_task_queue
from ..workflow._definition import _Definition as _WorkflowDefinition
from ._activity_worker import ActivityWorker
from ._interceptor import Interceptor, workflow_interceptor_classes
from ._metrics import WorkerMetrics, runtime_of, worker_metrics
from ._rate import StartRate
from ._runners import WorkflowRunner
from ._shared import WorkerClient
from ._threads import LoopThreads
from ._workflow_worker import WorkflowWorker

_log = logging.getLogger("cadenza.worker")

DEFAULT_MAX_CONCURRENT_ACTIVITIES = 100
"""``max_concurrent_activities`` when not given."""
DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS = 100
"""``max_concurrent_workflow_tasks`` when not given."""


class WorkerConfig(TypedDict, total=False):
    """The options of a :class:`Worker`, as :meth:`Worker.config` returns them."""

    client: WorkerClient
    task_queue: str
    activities: Sequence[Callable[..., Any]]
    workflows: Sequence[type]
    activity_executor: concurrent.futures.Executor | None
    workflow_task_executor: concurrent.futures.ThreadPoolExecutor | None
    interceptors: Sequence[Interceptor]
    build_id: str | None
    identity: str | None
    max_cached_workflows: int
    max_concurrent_workflow_tasks: int | None
    max_concurrent_activities: int | None
    max_concurrent_workflow_task_polls: int | None
    max_concurrent_activity_task_polls: int | None
    no_remote_activities: bool
    sticky_queue_schedule_to_start_timeout: timedelta
    max_heartbeat_throttle_interval: timedelta
    default_heartbeat_throttle_interval: timedelta
    max_activities_per_second: float | None
    max_task_queue_activities_per_second: float | None
    graceful_shutdown_timeout: timedelta
    workflow_failure_exception_types: Sequence[type[BaseException]]
    debug_mode: bool
    disable_eager_activity_execution: bool
    on_fatal_error: Callable[[BaseException], Awaitable[None]] | None
    max_concurrent_local_activities: int | None
    workflow_runner: WorkflowRunner | None
    unsandboxed_workflow_runner: WorkflowRunner | None


class Worker:
    """Processes the workflows and activities of one task queue.

    Run it with ``async with`` (started on entry, shut down on exit), or with
    :meth:`run` until :meth:`shutdown` is called (from another task).

    Example::

        worker = Worker(client, task_queue="orders", workflows=[OrderWorkflow],
                        activities=[charge, send_email],
                        activity_executor=ThreadPoolExecutor(10))  # send_email is sync
        async with worker:
            ...
    """

    def __init__(
        self,
        client: WorkerClient,
        *,
        task_queue: str,
        activities: Sequence[Callable[..., Any]] = (),
        workflows: Sequence[type] = (),
        activity_executor: concurrent.futures.Executor | None = None,
        workflow_task_executor: concurrent.futures.ThreadPoolExecutor | None = None,
        interceptors: Sequence[Interceptor] = (),
        build_id: str | None = None,
        identity: str | None = None,
        max_cached_workflows: int = 1000,
        max_concurrent_workflow_tasks: int | None = None,
        max_concurrent_activities: int | None = None,
        max_concurrent_workflow_task_polls: int | None = None,
        max_concurrent_activity_task_polls: int | None = None,
        no_remote_activities: bool = False,
        sticky_queue_schedule_to_start_timeout: timedelta = timedelta(seconds=10),
        max_heartbeat_throttle_interval: timedelta = timedelta(seconds=60),
        default_heartbeat_throttle_interval: timedelta = timedelta(seconds=30),
        max_activities_per_second: float | None = None,
        max_task_queue_activities_per_second: float | None = None,
        graceful_shutdown_timeout: timedelta = timedelta(),
        workflow_failure_exception_types: Sequence[type[BaseException]] = (),
        debug_mode: bool = False,
        disable_eager_activity_execution: bool = False,
        on_fatal_error: Callable[[BaseException], Awaitable[None]] | None = None,
        max_concurrent_local_activities: int | None = None,
        workflow_runner: WorkflowRunner | None = None,
        unsandboxed_workflow_runner: WorkflowRunner | None = None,
    ) -> None:
        """Create a worker; it does nothing until started.

        Args:
            client: The client whose settings, namespace, identity, data
                converter and transport the worker uses (any object with
                those five attributes, see ``WorkerClient``).
            task_queue: The task queue to take workflow and activity tasks from.
            activities: ``@activity.defn`` functions (or bound methods). Plain
                (non-``async``) ones need ``activity_executor``.
            workflows: ``@workflow.defn`` classes.
            activity_executor: Runs the plain (sync) activities; a
                ``ThreadPoolExecutor`` (process pools are not supported). Give it
                at least ``max_concurrent_activities`` workers. Not shut down by
                the worker.
            workflow_task_executor: Threads running workflow code. Default: a
                pool of ``max_concurrent_workflow_tasks`` threads, shut down
                with the worker.
            interceptors: Worker interceptors (:class:`Interceptor`), outermost
                first: they wrap each activity attempt and each workflow instance.
                The client's interceptors that are also worker interceptors come
                first, by themselves: do not list them here again.
            build_id: Identifies this worker's code; sent as each workflow task
                completion's ``binary_checksum``.
            identity: Identity sent with each completion; default the client's.
            max_cached_workflows: Workflow instances kept between tasks (sticky
                execution). Beyond it the least recently used is evicted and
                replayed from its whole history when needed. 0 disables caching.
            max_concurrent_workflow_tasks: Workflow tasks received and not yet
                answered, at most (default 100).
            max_concurrent_activities: Activities running at once, at most
                (default 100); the worker stops fetching at that count.
            max_concurrent_workflow_task_polls: Accepted for compatibility;
                one Kafka consumer fetches all workflow tasks.
            max_concurrent_activity_task_polls: Accepted for compatibility;
                one Kafka consumer fetches all activity tasks.
            no_remote_activities: Do not consume activity tasks (workflow-only
                worker), even with activities registered.
            sticky_queue_schedule_to_start_timeout: Accepted for compatibility;
                Kafka's partition assignment makes execution sticky.
            max_heartbeat_throttle_interval: Longest wait between two
                heartbeats sent for an activity.
            default_heartbeat_throttle_interval: Wait between two heartbeats
                sent for an activity without a heartbeat timeout (with one, 80%
                of the timeout, at most ``max_heartbeat_throttle_interval``).
            max_activities_per_second: The most activity attempts this worker
                starts a second; the others wait in the worker, in order, each
                holding its slot (default: no limit).
            max_task_queue_activities_per_second: Not supported yet: must be None
                (a limit across every worker of the queue would need the engine
                to pace the queue's tasks).
            graceful_shutdown_timeout: How long :meth:`shutdown` lets running
                activities finish before cancelling them (default: cancel at once).
            workflow_failure_exception_types: Exception types that, raised from
                workflow code, fail the workflow instead of the workflow task
                (for every workflow; ``@workflow.defn`` adds its own).
            debug_mode: Disable the deadlock detection that fails a workflow
                task whose code does not yield within 2 seconds (for debuggers).
                Time the process is starved of the GIL or a CPU does not count.
            disable_eager_activity_execution: If False (the default), an
                activity that a workflow task schedules on this worker's task
                queue, while this worker has a free activity slot, is started
                here at once (up to 3 per task) instead of going through the
                activity-tasks topic and back: one engine round trip less.
            on_fatal_error: Awaited with the error when the worker fails
                fatally (before it shuts down).
            max_concurrent_local_activities: Accepted for temporalio
                compatibility: local activities run as this worker's eager
                activities, in its ``max_concurrent_activities`` slots.
            workflow_runner: Accepted for temporalio compatibility (a
                :class:`WorkflowRunner`): Cadenza runs workflow code without a
                sandbox, always (see ``cadenza.worker._runners``).
            unsandboxed_workflow_runner: The same.

        Raises:
            ValueError: No workflows and no activities, a duplicate name, a sync
                activity without ``activity_executor``, or a bad option value.
            TypeError: A workflow or activity that is not decorated.
            TopicNameError: ``task_queue`` is not a valid task-queue name.
            NotImplementedError: An option Cadenza does not support yet was set.
        """
        validate_task_queue(task_queue)
        for option, runner in (
            ("workflow_runner", workflow_runner),
            ("unsandboxed_workflow_runner", unsandboxed_workflow_runner),
        ):
            if runner is not None and not isinstance(runner, WorkflowRunner):
                raise TypeError(
                    f"{option} must be a cadenza.worker.WorkflowRunner "
                    f"(UnsandboxedWorkflowRunner or SandboxedWorkflowRunner), "
                    f"not {type(runner).__name__}"
                )
        if max_concurrent_local_activities is not None and max_concurrent_local_activities < 1:
            raise ValueError("max_concurrent_local_activities must be at least 1")
        if not activities and not workflows:
            raise ValueError("At least one activity or workflow must be specified")
        # As in temporalio, the client's interceptors that are also worker interceptors
        # come first (a tracing interceptor given to the client covers its workers).
        given = getattr(client, "interceptors", ())
        from_client = [i for i in given if isinstance(i, Interceptor)]
        self._interceptors = from_client + list(interceptors)
        self._workflow_interceptor_classes = workflow_interceptor_classes(self._interceptors)
        if max_task_queue_activities_per_second is not None:
            raise NotImplementedError(
                "max_task_queue_activities_per_second (one limit for every worker of the "
                "queue) is not supported by Cadenza yet: limit each worker with "
                "max_activities_per_second"
            )
        self._start_rate = (
            None if max_activities_per_second is None else StartRate(max_activities_per_second)
        )
        if max_cached_workflows < 0:
            raise ValueError("max_cached_workflows cannot be negative")
        for name, value in (
            ("max_concurrent_workflow_tasks", max_concurrent_workflow_tasks),
            ("max_concurrent_activities", max_concurrent_activities),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1")
        if graceful_shutdown_timeout < timedelta():
            raise ValueError("graceful_shutdown_timeout cannot be negative")

        self._workflows: dict[str | None, _WorkflowDefinition] = {}
        for cls in workflows:
            definition = _WorkflowDefinition.must_from_class(cls)
            if definition.name in self._workflows:
                shown = definition.name if definition.name is not None else "<dynamic>"
                raise ValueError(f"More than one workflow named {shown}")
            self._workflows[definition.name] = definition

        self._activities: dict[str | None, _ActivityDefinition] = {}
        for fn in activities:
            found = _ActivityDefinition.must_from_callable(fn)
            if found.name in self._activities:
                shown = found.name if found.name is not None else "<dynamic>"
                raise ValueError(f"More than one activity named {shown}")
            if not found.is_async:
                if activity_executor is None:
                    raise ValueError(
                        f"Activity {found.name or '<dynamic>'} "
                        f"({getattr(fn, '__qualname__', fn)}) is not async def, so the worker "
                        "needs an activity_executor to run it: pass "
                        "activity_executor=concurrent.futures.ThreadPoolExecutor(...) "
                        "(or make the activity async def)"
                    )
                if isinstance(activity_executor, concurrent.futures.ProcessPoolExecutor):
                    raise ValueError(
                        "ProcessPoolExecutor is not supported as activity_executor yet: "
                        "use a ThreadPoolExecutor"
                    )
            self._activities[found.name] = found

        self._max_concurrent_activities = (
            max_concurrent_activities or DEFAULT_MAX_CONCURRENT_ACTIVITIES
        )
        self._max_concurrent_workflow_tasks = (
            max_concurrent_workflow_tasks or DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS
        )
        max_workers = getattr(activity_executor, "_max_workers", None)
        if (
            isinstance(activity_executor, concurrent.futures.ThreadPoolExecutor)
            and isinstance(max_workers, int)
            and max_workers < self._max_concurrent_activities
            and any(not d.is_async for d in self._activities.values())
        ):
            warnings.warn(
                f"Worker max_concurrent_activities is {self._max_concurrent_activities} but "
                f"activity_executor's max_workers is only {max_workers}",
                stacklevel=2,
            )

        self._client = client
        self._task_queue = task_queue
        self._config: WorkerConfig = {
            "client": client,
            "task_queue": task_queue,
            "activities": list(activities),
            "workflows": list(workflows),
            "activity_executor": activity_executor,
            "workflow_task_executor": workflow_task_executor,
            "interceptors": list(interceptors),
            "build_id": build_id,
            "identity": identity,
            "max_cached_workflows": max_cached_workflows,
            "max_concurrent_workflow_tasks": max_concurrent_workflow_tasks,
            "max_concurrent_activities": max_concurrent_activities,
            "max_concurrent_workflow_task_polls": max_concurrent_workflow_task_polls,
            "max_concurrent_activity_task_polls": max_concurrent_activity_task_polls,
            "no_remote_activities": no_remote_activities,
            "sticky_queue_schedule_to_start_timeout": sticky_queue_schedule_to_start_timeout,
            "max_heartbeat_throttle_interval": max_heartbeat_throttle_interval,
            "default_heartbeat_throttle_interval": default_heartbeat_throttle_interval,
            "max_activities_per_second": max_activities_per_second,
            "max_task_queue_activities_per_second": max_task_queue_activities_per_second,
            "graceful_shutdown_timeout": graceful_shutdown_timeout,
            "workflow_failure_exception_types": list(workflow_failure_exception_types),
            "debug_mode": debug_mode,
            "disable_eager_activity_execution": disable_eager_activity_execution,
            "on_fatal_error": on_fatal_error,
            "max_concurrent_local_activities": max_concurrent_local_activities,
            "workflow_runner": workflow_runner,
            "unsandboxed_workflow_runner": unsandboxed_workflow_runner,
        }
        self._disable_eager_activities = disable_eager_activity_execution
        self._identity = identity or client.identity
        self._build_id = build_id or ""
        self._activity_executor = activity_executor
        self._workflow_task_executor = workflow_task_executor
        self._owned_executor: LoopThreads | None = None
        self._max_cached_workflows = max_cached_workflows
        self._run_activities = bool(self._activities) and not no_remote_activities
        self._max_heartbeat_throttle_interval = max_heartbeat_throttle_interval
        self._default_heartbeat_throttle_interval = default_heartbeat_throttle_interval
        self._graceful_shutdown_timeout = graceful_shutdown_timeout
        self._failure_exception_types = tuple(workflow_failure_exception_types)
        self._debug_mode = debug_mode
        self._on_fatal_error = on_fatal_error

        self._workflow_worker: WorkflowWorker | None = None
        self._activity_worker: ActivityWorker | None = None
        self._metrics: WorkerMetrics | None = None
        self._started = False
        self._running = False
        self._shutdown_requested: asyncio.Event | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
        self._shut_down = False
        self._fatal: BaseException | None = None

    # -- facts -----------------------------------------------------------------------------

    @property
    def client(self) -> WorkerClient:
        """The client the worker was created with."""
        return self._client

    @property
    def task_queue(self) -> str:
        """The task queue this worker serves."""
        return self._task_queue

    @property
    def identity(self) -> str:
        """The identity sent with each answer."""
        return self._identity

    @property
    def is_running(self) -> bool:
        """Whether the worker has started and not begun shutting down."""
        return self._running

    @property
    def is_shutdown(self) -> bool:
        """Whether the worker has run and shut down."""
        return self._shut_down

    def config(self) -> WorkerConfig:
        """The options this worker was created with (a copy, to make a changed worker)."""
        return self._config.copy()

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        """Start the worker and wait until it is shut down.

        Returns when :meth:`shutdown` completes. Cancelling the call shuts the
        worker down (then re-raises the cancellation).

        Raises:
            RuntimeError: Already started or shut down, or the worker failed
                fatally (Kafka could not be read from or written to); the cause
                is the original error.
            TopicAdminError: The task queue's topics could not be created.
        """
        await self._start()
        assert self._shutdown_requested is not None
        try:
            await self._shutdown_requested.wait()
            assert self._shutdown_task is not None
            await asyncio.shield(self._shutdown_task)
        except asyncio.CancelledError:
            await self.shutdown()
            raise
        self._raise_fatal()

    async def shutdown(self) -> None:
        """Stop taking tasks, let running activities finish for
        ``graceful_shutdown_timeout`` then cancel them, answer what was started, commit
        and leave the consumer groups. Safe to call more than once, or before start."""
        if self._shutdown_requested is None:  # never started
            self._started = self._shut_down = True
            return
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.get_running_loop().create_task(self._shutdown())
        await asyncio.shield(self._shutdown_task)

    async def __aenter__(self) -> Worker:
        """Start the worker (consumers subscribed) and return it."""
        await self._start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        """Shut the worker down; raise its fatal error, if it had one and nothing else failed."""
        await self.shutdown()
        if exc_type is None:
            self._raise_fatal()

    async def _start(self) -> None:
        if self._started:
            raise RuntimeError("Already started" if not self._shut_down else "Already shut down")
        self._started = True
        loop = asyncio.get_running_loop()
        self._shutdown_requested = asyncio.Event()
        # The client's runtime: its meter for workflow.metric_meter() and
        # activity.metric_meter(), and the built-in metrics if it exports any.
        meter = runtime_of(self._client).metric_meter
        self._metrics = worker_metrics(self._client, self._task_queue)
        try:
            # TopicAdmin blocks: keep it off the event loop.
            admin = TopicAdmin(self._client.settings)
            await asyncio.to_thread(admin.ensure_task_queue, self._task_queue)
            if self._workflows:
                executor: concurrent.futures.ThreadPoolExecutor | LoopThreads | None
                executor = self._workflow_task_executor
                if executor is None:
                    executor = self._owned_executor = LoopThreads(
                        self._max_concurrent_workflow_tasks, "cadenza_workflow_"
                    )
                self._workflow_worker = WorkflowWorker(
                    client=self._client,
                    task_queue=self._task_queue,
                    workflows=self._workflows,
                    max_cached_workflows=self._max_cached_workflows,
                    max_concurrent_workflow_tasks=self._max_concurrent_workflow_tasks,
                    executor=executor,
                    failure_exception_types=self._failure_exception_types,
                    debug_mode=self._debug_mode,
                    identity=self._identity,
                    build_id=self._build_id,
                    on_fatal=self._on_fatal,
                    metrics=self._metrics,
                    metric_meter=meter,
                    interceptor_classes=self._workflow_interceptor_classes,
                )
                self._workflow_worker.start(loop)
            if self._run_activities:
                self._activity_worker = ActivityWorker(
                    client=self._client,
                    task_queue=self._task_queue,
                    activities=self._activities,
                    activity_executor=self._activity_executor,
                    max_concurrent_activities=self._max_concurrent_activities,
                    max_heartbeat_throttle_interval=self._max_heartbeat_throttle_interval,
                    default_heartbeat_throttle_interval=self._default_heartbeat_throttle_interval,
                    identity=self._identity,
                    on_fatal=self._on_fatal,
                    metrics=self._metrics,
                    metric_meter=meter,
                    start_rate=self._start_rate,
                    interceptors=self._interceptors,
                )
                self._activity_worker.start(loop)
                if self._workflow_worker is not None and not self._disable_eager_activities:
                    self._workflow_worker.eager_activities = self._activity_worker
        except BaseException:
            await self.shutdown()
            raise
        self._running = True
        if self._metrics is not None:
            self._metrics.started()
        _log.info(
            "Worker %s started on task queue %s (%d workflows, %d activities)",
            self._identity,
            self._task_queue,
            len(self._workflows),
            len(self._activities) if self._run_activities else 0,
        )

    async def _shutdown(self) -> None:
        assert self._shutdown_requested is not None
        self._running = False
        self._shutdown_requested.set()
        try:
            parts: list[Awaitable[None]] = []
            if self._workflow_worker is not None:
                parts.append(self._workflow_worker.shutdown())
            if self._activity_worker is not None:
                parts.append(self._activity_worker.shutdown(self._graceful_shutdown_timeout))
            results = await asyncio.gather(*parts, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    _log.error("Error while shutting the worker down", exc_info=result)
        finally:
            if self._metrics is not None:
                self._metrics.close()
            if self._owned_executor is not None:
                self._owned_executor.shutdown(wait=False)
            self._shut_down = True
            _log.info("Worker %s on task queue %s shut down", self._identity, self._task_queue)

    def _on_fatal(self, error: BaseException) -> None:
        """A consumer or an answer failed beyond repair: shut the worker down."""
        if self._fatal is not None or self._shut_down:
            return
        self._fatal = error
        _log.error("Worker on task queue %s failed: %s", self._task_queue, error)
        asyncio.get_running_loop().create_task(self._fail(error))

    async def _fail(self, error: BaseException) -> None:
        if self._on_fatal_error is not None:
            try:
                await self._on_fatal_error(error)
            except Exception:
                _log.exception("on_fatal_error raised")
        await self.shutdown()

    def _raise_fatal(self) -> None:
        if self._fatal is not None:
            raise RuntimeError(f"Worker failed: {self._fatal}") from self._fatal
