"""One running workflow run: the workflow object, its event loop, and replay.

The worker creates a :class:`WorkflowInstance` per run (and caches it), then
calls :meth:`WorkflowInstance.activate` with the history events that are new
since the previous call. History comes in workflow-task groups:

- *inputs* (signals, activity and timer resolutions, cancel requests, update
  admissions) written before a task's ``WorkflowTaskScheduled`` are what that
  task sees; those written while it is out with a worker (after its
  ``WorkflowTaskScheduled``, before its ``WorkflowTaskCompleted``) go to the
  next task;
- a task the history shows completed is *replayed*: its inputs are applied,
  the loop runs until every coroutine is blocked, and the commands produced
  are matched, in order, against the command events that follow its
  ``WorkflowTaskCompleted``; a mismatch is a :class:`NondeterminismError`;
- failed or timed-out tasks produce nothing; their inputs carry over;
- the last task, scheduled but not completed, runs *live*: its commands are
  returned for the worker to send in a ``WorkflowTaskCompleted`` command.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any, NoReturn

from ..common._failure import Failure
from ..common._metric import MetricMeter, _ReplaySafeMetricMeter
from ..common._payload import Payload, RawValue
from ..common._retry import RetryPolicy
from ..common._search_attributes import (
    SearchAttributes,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)
from ..common._typing import _arg_unset
from ..converter import FailureConverter, PayloadConverter
from ..exceptions import (
    ApplicationError,
    FailureError,
    NondeterminismError,
    is_cancelled_exception,
)
from . import _history as h
from . import _search
from ._appliers import _Appliers
from ._context import ContinueAsNewInput, _Runtime
from ._definition import _Definition
from ._exceptions import ReadOnlyContextError
from ._handlers import (
    HandlerUnfinishedPolicy,
    UnfinishedSignalHandlersWarning,
    UnfinishedUpdateHandlersWarning,
    _QueryDefinition,
    _SignalDefinition,
    _UpdateDefinition,
)
from ._handles import ExternalWorkflowHandle
from ._inbound import _Inbound
from ._info import Info, ParentInfo
from ._interception import ExecuteWorkflowInput, HandleQueryInput, Interception, answer_at_once
from ._loop import DurableTimerHandle, _WorkflowEventLoop
from ._machines import (
    ActivityState,
    ChildState,
    ExternalState,
    PendingCommand,
    UpdateState,
    _ExternalWorkflowHandle,
)
from ._outbound import _Outbound
from ._state import _ContinueAsNew, _ms, _td

_logger = logging.getLogger(__name__)
_MS = timedelta(milliseconds=1)

NONDETERMINISM_CAUSE = "NON_DETERMINISTIC_ERROR"
"""``WorkflowTaskFailed.cause`` for a replay mismatch."""
UNHANDLED_FAILURE_CAUSE = "WORKFLOW_WORKER_UNHANDLED_FAILURE"
"""``WorkflowTaskFailed.cause`` for an exception that fails the task, not the workflow."""


@dataclass(frozen=True)
class ActivationFailure:
    """Why a workflow task must fail (the workflow itself stays running).

    The worker sends a ``WorkflowTaskFailed`` command with :attr:`cause` and
    :attr:`failure`, and drops the instance: the next attempt replays from the
    full history (after a fix is deployed, it passes).
    """

    cause: str
    """``NON_DETERMINISTIC_ERROR`` or ``WORKFLOW_WORKER_UNHANDLED_FAILURE``."""
    error: BaseException
    """The exception: a :class:`NondeterminismError`, or what the code raised."""
    failure: Failure
    """:attr:`error` converted for the wire."""


@dataclass(frozen=True)
class ActivationResult:
    """What one :meth:`WorkflowInstance.activate` call produced."""

    commands: list[h.Command] = field(default_factory=list)
    """Commands for ``WorkflowTaskCompleted.commands`` (empty when nothing ran live)."""
    failure: ActivationFailure | None = None
    """Set when the task must fail instead (then :attr:`commands` is empty)."""
    ran_live: bool = False
    """Whether a live (not yet completed) workflow task ran, so a completion is due."""
    completed: bool = False
    """Whether the workflow has produced its closing command (complete, fail,
    cancel, continue-as-new)."""


class StaleInstanceError(RuntimeError):
    """The instance is ahead of history (its last completion was not accepted, or it
    failed before): drop it and replay from the full history."""


_START_FIELDS_KEPT = ("last_completion_result", "continued_failure")
"""``WorkflowExecutionStarted`` attributes read after the first workflow task."""


def _seed(run_id: str) -> int:
    return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big")


class WorkflowInstance(_Appliers, _Inbound, _Outbound, _Runtime):
    """One workflow run, driven task by task from its history.

    Args:
        definition: The workflow's definition (``_Definition.must_from_class``).
        workflow_id: The workflow id.
        run_id: This run's id.
        started_event: The run's ``WorkflowExecutionStarted`` history event.
        payload_converter: Converts values (no codec: payloads in events must
            already be decoded, and those in commands are not yet encoded).
        failure_converter: Converts exceptions.
        namespace: The namespace shown in ``workflow.info()``.
        failure_exception_types: Worker-wide exception types that fail the
            workflow rather than the task (added to the definition's).
        continue_as_new_suggested_events: History length from which
            ``is_continue_as_new_suggested()`` is true.
        metric_meter: The worker's runtime meter, for ``workflow.metric_meter()``
            (default: the no-op meter).

    Example::

        instance = WorkflowInstance(definition, workflow_id="order-42", run_id=run_id,
                                    started_event=history[0])
        result = instance.activate(history)  # then only the events new since
        if result.failure is None and result.ran_live:
            send_workflow_task_completed(result.commands)
    """

    __slots__ = ()  # the attributes are ``_State``'s slots

    def __init__(
        self,
        definition: _Definition,
        *,
        workflow_id: str,
        run_id: str,
        started_event: h.HistoryEvent,
        payload_converter: PayloadConverter | None = None,
        failure_converter: FailureConverter | None = None,
        namespace: str = "default",
        failure_exception_types: Sequence[type[BaseException]] = (),
        continue_as_new_suggested_events: int = 4096,
        metric_meter: MetricMeter | None = None,
        interceptor_classes: Sequence[type] = (),
    ) -> None:
        if h.event_kind(started_event) != h.WORKFLOW_EXECUTION_STARTED:
            raise ValueError(
                f"started_event must be a WorkflowExecutionStarted event, got "
                f"{h.event_kind(started_event)}"
            )
        self._definition = definition
        self._workflow_id = workflow_id
        self._run_id = run_id
        self._workflow_start_ms = int(started_event["event_time_ms"])
        self._start: Mapping[str, Any] = h.event_attributes(started_event)
        self._pc = payload_converter or PayloadConverter.default
        self._fc = failure_converter or FailureConverter.default
        self._namespace = namespace
        self._failure_types = tuple(definition.failure_exception_types) + tuple(
            failure_exception_types
        )
        self._suggest_can_at = continue_as_new_suggested_events
        self._metric_root = metric_meter if metric_meter is not None else MetricMeter.noop
        self._metric_meter: MetricMeter | None = None
        self._loop = _WorkflowEventLoop(self)  # type: ignore[abstract]
        _Runtime.set_on_loop(self._loop, self)
        # Made on first use: a Mersenne Twister's state is 2.5 KB per cached run,
        # and most workflows never ask for randomness.
        self._random: Random | None = None

        self._object: Any = None
        self._main: asyncio.Task[None] | None = None
        self._info: Info | None = None
        self._replaying = False
        self._read_only = False
        self._history_length = 0
        self._cancel_requested = False
        self._task_failure: BaseException | None = None
        self._started = False
        self._stale = False

        # Replay bookkeeping.
        self._commands: list[PendingCommand] = []
        self._expected: deque[PendingCommand] = deque()
        self._awaiting_events = False
        self._inputs: list[h.HistoryEvent] = []
        self._open_task: h.HistoryEvent | None = None
        self._open_task_started: h.HistoryEvent | None = None
        self._live_scheduled_id: int | None = None
        self._closed = False

        # Commands in flight, by the id of the event that recorded them.
        self._seq: dict[str, int] = {"activity": 0, "timer": 0}
        self._activities: dict[int, ActivityState] = {}
        self._timers: dict[str, DurableTimerHandle] = {}
        self._cancelled_timers: set[str] = set()
        self._children: dict[int, ChildState] = {}
        self._externals: dict[int, ExternalState] = {}
        self._conditions: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

        # Handlers, patches, updates, memo, search attributes.
        self._signals: dict[str | None, _SignalDefinition] = dict(definition.signals)
        self._queries: dict[str | None, _QueryDefinition] = dict(definition.queries)
        self._updates: dict[str | None, _UpdateDefinition] = dict(definition.updates)
        self._buffered_signals: list[Mapping[str, Any]] = []
        self._running_signals: list[tuple[str, _SignalDefinition]] = []
        self._running_updates: dict[str, tuple[UpdateState, _UpdateDefinition]] = {}
        self._updates_seen: set[str] = set()
        self._patches: dict[str, bool] = {}
        self._patches_in_task: set[str] = set()
        self._memo: dict[str, Payload] = dict(self._start.get("memo") or {})
        untyped, typed = _search.decode(self._start.get("search_attributes") or {}, self._pc)
        self._search_untyped: dict[str, Any] = {k: v for k, v in untyped.items() if v is not None}
        self._search_typed = TypedSearchAttributes([p for p in typed if p.value is not None])

        # The worker's marks (plain attributes: a weak set beside the cache cost a weak
        # reference per look-up, several per workflow task).
        self.abandoned = False
        """Set by the worker when this instance's code overran the deadlock timeout: its
        thread still runs it, so it must never be activated again."""
        self.ran_ahead_to: int | None = None
        """Set by the worker when this instance ran a continuation the engine has not
        confirmed yet: the last event id it assumed."""

        # Worker interceptors' ``WorkflowInboundInterceptor`` classes, chained around
        # this instance; None without any (then nothing is in the way).
        self._interception: Interception | None = (
            Interception(self, interceptor_classes) if interceptor_classes else None
        )

    # ------------------------------------------------------------------
    # The worker's API.

    @property
    def workflow_id(self) -> str:
        """The workflow id."""
        return self._workflow_id

    @property
    def run_id(self) -> str:
        """This run's id."""
        return self._run_id

    @property
    def history_length(self) -> int:
        """Id of the last history event given to :meth:`activate`."""
        return self._history_length

    @property
    def start_time_ms(self) -> int:
        """When the run started (its ``WorkflowExecutionStarted``), in ms since the epoch."""
        return self._workflow_start_ms

    @property
    def is_completed(self) -> bool:
        """Whether the workflow produced its closing command."""
        return self._closed

    def activate(
        self,
        events: Sequence[h.HistoryEvent],
        *,
        updates: Sequence[Mapping[str, Any]] = (),
    ) -> ActivationResult:
        """Apply new history events; run the live workflow task if one is open.

        Args:
            events: History events in order (the first call starts with
                ``WorkflowExecutionStarted``). Events already given are skipped,
                so a task's whole history may be passed; a gap raises
                :class:`StaleInstanceError`.
            updates: ``cadenza.common.UpdateRequest`` dicts admitted for the
                live task (``WorkflowTask.updates``); each is validated, then
                accepted or rejected. Without a live task they are an error.

        Returns:
            The commands of the live task, or why the task must fail.

        Raises:
            ValueError: ``updates`` were given but no workflow task is open.
            StaleInstanceError: The instance cannot follow this history (a
                completion it sent was not accepted, an earlier activation
                failed, or events are missing): replay into a new instance.
        """
        if self._stale:
            raise StaleInstanceError(
                f"Workflow {self._workflow_id} run {self._run_id}: the instance is stale "
                "(an activation failed or a completion was not accepted); replay it"
            )
        try:
            with self._current():
                commands, ran_live = self._process(events, updates)
        except NondeterminismError as err:
            self._stale = True
            return self._failed(NONDETERMINISM_CAUSE, err)
        except StaleInstanceError:
            self._stale = True
            raise
        if self._task_failure is not None:
            self._stale = True
            return self._failed(UNHANDLED_FAILURE_CAUSE, self._task_failure)
        return ActivationResult(commands=commands, ran_live=ran_live, completed=self._closed)

    def pending_commands(self) -> list[h.Command]:
        """Commands produced but not yet matched by history events (for the replayer)."""
        return [p.command for p in self._expected if p.expects_event]

    def query(
        self,
        query_type: str,
        args: Sequence[Payload],
        *,
        query_id: str = "",
        headers: Mapping[str, Payload] | None = None,
    ) -> list[Payload]:
        """Answer a query from the current state.

        Raises:
            LookupError: No handler for ``query_type``.
            Exception: Whatever the handler raised (the query fails, not the workflow).
        """
        if query_type == "__stack_trace":
            return self._pc.to_payloads([self._stack_trace()])
        defn = self._query_definition(query_type)
        values = self._handler_args(defn, query_type, args)
        with self._current(), self._read_only_block():
            if self._interception is None:
                result = defn.bind_fn(self._object)(*values)
            else:
                asked = HandleQueryInput(
                    id=query_id, query=query_type, args=values, headers=headers or {}
                )
                result = answer_at_once(self._interception.inbound.handle_query(asked))
        return self._pc.to_payloads([result])

    def _query_definition(self, query_type: str) -> _QueryDefinition:
        defn = self._queries.get(query_type) or self._queries.get(None)
        if defn is None:
            known = sorted(k for k in self._queries if k is not None)
            raise LookupError(
                f"Workflow did not register a handler for query {query_type!r}. "
                f"Registered queries: {known}"
            )
        return defn

    def _query_fn(self, query_type: str) -> Callable[..., Any]:
        """The bound handler of ``query_type`` (for the innermost interceptor)."""
        return self._query_definition(query_type).bind_fn(self._object)

    # ------------------------------------------------------------------
    # Processing history.

    def _failed(self, cause: str, error: BaseException) -> ActivationResult:
        try:
            failure = self._fc.to_failure(error, self._pc)
        except Exception:
            failure = self._fc.to_failure(ApplicationError(str(error)), self._pc)
        return ActivationResult(
            failure=ActivationFailure(cause=cause, error=error, failure=failure)
        )

    @contextmanager
    def _current(self) -> Iterator[None]:
        token = _Runtime.set(self)
        try:
            yield
        finally:
            _Runtime.reset(token)

    def _process(
        self, events: Sequence[h.HistoryEvent], updates: Sequence[Mapping[str, Any]]
    ) -> tuple[list[h.Command], bool]:
        for index, event in enumerate(events):
            event_id = int(event["event_id"])
            if event_id <= self._history_length:
                continue  # seen in an earlier activation (a task may resend history)
            if event_id != self._history_length + 1:
                raise StaleInstanceError(
                    f"Workflow {self._workflow_id}: history jumps from event "
                    f"{self._history_length} to {event_id}; replay from the full history"
                )
            self._history_length = event_id
            kind = h.event_kind(event)
            attributes = h.event_attributes(event)
            if kind in h.COMMAND_EVENTS:
                self._match(event)
                continue
            if self._awaiting_events and self._expected:
                # The code produced more commands than history recorded for its task.
                first = next((p for p in self._expected if p.expects_event), None)
                if first is not None:
                    raise h.missing_event_error(first.command, event)
                self._expected.clear()
            if kind == h.WORKFLOW_TASK_SCHEDULED:
                self._open_task, self._open_task_started = event, None
            elif kind == h.WORKFLOW_TASK_STARTED:
                self._open_task_started = event
            elif kind == h.WORKFLOW_TASK_COMPLETED:
                scheduled_id = attributes["scheduled_event_id"]
                if scheduled_id != self._live_scheduled_id:
                    self._run_task(replaying=True, lookahead=events[index + 1 :])
                    if self._task_failure is not None:
                        return [], False
                self._live_scheduled_id = None
                self._open_task = self._open_task_started = None
                self._awaiting_events = True
            elif kind in (h.WORKFLOW_TASK_FAILED, h.WORKFLOW_TASK_TIMED_OUT):
                if attributes["scheduled_event_id"] == self._live_scheduled_id:
                    raise StaleInstanceError(
                        f"Workflow {self._workflow_id}: the completion of the workflow task "
                        f"scheduled at event {self._live_scheduled_id} was not accepted "
                        f"(history has {h.describe_event(event)})"
                    )
                self._open_task = self._open_task_started = None
            elif kind != h.WORKFLOW_EXECUTION_STARTED:
                self._inputs.append(event)
        if self._open_task is not None and self._live_scheduled_id is None:
            self._live_scheduled_id = int(self._open_task["event_id"])
            return self._run_task(replaying=False, lookahead=(), updates=updates), True
        if updates:
            raise ValueError("Updates can only be given with a live (open) workflow task")
        return [], False

    def _match(self, event: h.HistoryEvent) -> None:
        kind = h.event_kind(event)
        attributes = h.event_attributes(event)
        if kind == h.WORKFLOW_EXECUTION_UPDATE_REJECTED:
            return  # a rejection leaves no state behind: nothing to match
        skippable = (
            kind == h.MARKER_RECORDED
            and attributes.get("marker_name") == h.PATCH_MARKER
            and h.patch_deprecated(attributes)
        )
        while self._expected and not self._expected[0].expects_event:
            self._expected.popleft()
        if not self._expected:
            if skippable:
                return
            raise h.extra_event_error(event)
        pending = self._expected[0]
        try:
            h.check_match(pending.command, event)
        except NondeterminismError:
            if skippable:
                return  # a deprecated patch's marker the code no longer asks about
            raise
        self._expected.popleft()
        if pending.on_recorded is not None:
            pending.on_recorded(int(event["event_id"]))

    def _run_task(
        self,
        *,
        replaying: bool,
        lookahead: Sequence[h.HistoryEvent],
        updates: Sequence[Mapping[str, Any]] = (),
    ) -> list[h.Command]:
        task_event = self._open_task_started or self._open_task
        if task_event is None:
            raise NondeterminismError(
                "History has a WorkflowTaskCompleted without its WorkflowTaskScheduled"
            )
        task_event_id = int(task_event["event_id"])
        self._replaying = replaying
        self._loop.set_time_ms(int(task_event["event_time_ms"]))
        accepted: list[Mapping[str, Any]] = []
        self._patches_in_task = set()
        for event in lookahead:
            kind = h.event_kind(event)
            if kind not in h.COMMAND_EVENTS:
                break
            attributes = h.event_attributes(event)
            if kind == h.MARKER_RECORDED and attributes.get("marker_name") == h.PATCH_MARKER:
                patch_id = h.patch_id_of(attributes)
                if patch_id is not None:
                    self._patches_in_task.add(patch_id)
            elif kind == h.WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                accepted.append(attributes["accepted_request"])

        first = not self._started
        if first:
            self._started = True
            self._info = self._make_info(int(task_event["event_time_ms"]))
            self._create_object()
        # A task sees the events written before it was scheduled; later ones (written
        # while it was out with a worker) are inputs of the next task.
        scheduled_id = int(self._open_task["event_id"]) if self._open_task else task_event_id
        inputs = [e for e in self._inputs if int(e["event_id"]) < scheduled_id]
        self._inputs = [e for e in self._inputs if int(e["event_id"]) > scheduled_id]
        for event in inputs:
            self._apply(event)
        for request in accepted:
            self._deliver_update(request, validate=False)
        for request in updates:
            self._deliver_update(request, validate=True)
        if first and self._main is None and not self._closed and self._task_failure is None:
            self._main = self._loop.create_task(self._run_main(), name="workflow run")
            if self._cancel_requested:
                self._main.cancel()
        self._loop.run_until_blocked(self._after_step)
        if first:
            # The code has taken its arguments: keep only what it may still ask of the
            # start event, so that a cached run does not hold its input (of any size).
            self._start = {k: self._start[k] for k in _START_FIELDS_KEPT if k in self._start}
        if self._loop.errors and self._task_failure is None:
            self._task_failure = self._loop.errors[0]
        self._loop.errors.clear()

        produced = [p for p in self._commands if not p.dropped]
        self._commands = []
        self._expected.extend(produced)
        self._awaiting_events = replaying
        return [p.command for p in produced if not replaying]

    def _after_step(self) -> bool:
        progressed = False
        for entry in list(self._conditions):
            fn, future = entry
            if future.done():
                self._conditions.remove(entry)
                continue
            try:
                satisfied = fn()
            except BaseException as err:
                self._conditions.remove(entry)
                future.set_exception(err)
                progressed = True
                continue
            if satisfied:
                self._conditions.remove(entry)
                future.set_result(None)
                progressed = True
        return progressed

    # ------------------------------------------------------------------
    # Running the workflow.

    def _make_info(self, first_task_time_ms: int) -> Info:
        start = self._start
        parent = start.get("parent")
        retry = start.get("retry_policy")
        return Info(
            attempt=int(start.get("attempt") or 1),
            continued_run_id=start.get("continued_execution_run_id"),
            cron_schedule=start.get("cron_schedule") or None,
            execution_timeout=_td(start.get("execution_timeout_ms")),
            first_execution_run_id=start.get("first_execution_run_id") or self._run_id,
            headers=dict(start.get("header") or {}),
            namespace=self._namespace,
            parent=(
                ParentInfo(
                    namespace=self._namespace,
                    run_id=parent["run_id"],
                    workflow_id=parent["workflow_id"],
                )
                if parent
                else None
            ),
            raw_memo=dict(self._memo),
            retry_policy=RetryPolicy.from_avro(retry) if retry else None,
            run_id=self._run_id,
            run_timeout=_td(start.get("run_timeout_ms")),
            search_attributes=dict(self._search_untyped),
            start_time=datetime.fromtimestamp(first_task_time_ms / 1000, UTC),
            task_queue=start["task_queue"],
            task_timeout=_td(start.get("task_timeout_ms")) or timedelta(seconds=10),
            typed_search_attributes=self._search_typed,
            workflow_id=self._workflow_id,
            workflow_start_time=datetime.fromtimestamp(self._workflow_start_ms / 1000, UTC),
            workflow_type=start["workflow_type"],
        )

    def _workflow_args(self) -> list[Any]:
        payloads = list(self._start.get("input") or [])
        if self._definition.name is None:
            return [[RawValue(p) for p in payloads]]
        hints = self._definition.arg_types
        try:
            return self._pc.from_payloads(payloads, list(hints) if hints is not None else None)
        except Exception as err:
            raise ApplicationError(
                f"Failed decoding arguments of workflow {self._start['workflow_type']}: {err}",
                type="ArgumentDecodingError",
            ) from err

    def _create_object(self) -> None:
        cls = self._definition.cls
        try:
            args = self._workflow_args() if self._definition.init_fn is not None else []
            self._object = cls(*args)
        except BaseException as err:
            self._object = object()
            self._finish_with_exception(err)

    async def _run_main(self) -> None:
        try:
            args = self._workflow_args()
            if self._interception is None:
                result = await self._definition.run_fn(self._object, *args)
            else:
                run = ExecuteWorkflowInput(
                    type=self._definition.cls,
                    run_fn=self._definition.run_fn,
                    args=args,
                    headers=self._start.get("header") or {},
                )
                result = await self._interception.inbound.execute_workflow(run)
            payloads = self._pc.to_payloads([result])
        except BaseException as err:
            self._finish_with_exception(err)
            return
        self._add_command(h.COMPLETE_WORKFLOW_EXECUTION, {"result": payloads})

    def _finish_with_exception(self, err: BaseException) -> None:
        """Close the workflow (or fail the task) for an exception out of workflow code."""
        if isinstance(err, _ContinueAsNew):
            self._add_command(h.CONTINUE_AS_NEW_WORKFLOW_EXECUTION, self._continue_as_new(err))
        elif self._cancel_requested and is_cancelled_exception(err):
            self._add_command(h.CANCEL_WORKFLOW_EXECUTION, {"details": []})
        elif isinstance(err, asyncio.CancelledError) or self.workflow_is_failure_exception(err):
            failure = self._fc.to_failure(err, self._pc)
            self._add_command(h.FAIL_WORKFLOW_EXECUTION, {"failure": failure})
        elif self._task_failure is None:
            self._task_failure = err

    def _continue_as_new(self, err: _ContinueAsNew) -> dict[str, Any]:
        spec = err.input
        info = self.workflow_info()
        memo = (
            {k: self._pc.to_payload(v) for k, v in spec.memo.items()}
            if spec.memo is not None
            else dict(self._memo)
        )
        search = (
            _search.encode_typed(spec.search_attributes, self._pc)
            if spec.search_attributes is not None
            else self._current_search_attributes()
        )
        retry = spec.retry_policy or info.retry_policy
        return {
            "workflow_type": spec.workflow or info.workflow_type,
            "task_queue": spec.task_queue or info.task_queue,
            "input": self._pc.to_payloads(spec.args),
            "run_timeout_ms": _ms(spec.run_timeout or info.run_timeout),
            "task_timeout_ms": _ms(spec.task_timeout or info.task_timeout),
            "memo": memo,
            "search_attributes": search,
            "header": dict(spec.headers),
            "retry_policy": retry.to_avro() if retry is not None else None,
            "backoff_start_interval_ms": _ms(spec.backoff_start_interval),
        }

    def _current_search_attributes(self) -> dict[str, Payload]:
        untyped = {
            k: v for k, v in self._search_untyped.items() if k not in self._search_typed_names()
        }
        return {
            **_search.encode_updates(untyped, self._pc),
            **_search.encode_typed(self._search_typed, self._pc),
        }

    def _search_typed_names(self) -> set[str]:
        return {pair.key.name for pair in self._search_typed}

    def _warn_unfinished_handlers(self) -> None:
        if self._replaying:
            return
        signals = [
            name
            for name, defn in self._running_signals
            if defn.unfinished_policy is HandlerUnfinishedPolicy.WARN_AND_ABANDON
        ]
        updates = [
            (state.name, state.update_id)
            for state, defn in self._running_updates.values()
            if defn.unfinished_policy is HandlerUnfinishedPolicy.WARN_AND_ABANDON
        ]
        if signals:
            _warn(
                f"[TMPRL1102] Workflow {self._workflow_id} finished while signal handlers are "
                f"still running: {signals}",
                UnfinishedSignalHandlersWarning,
            )
        if updates:
            _warn(
                f"[TMPRL1102] Workflow {self._workflow_id} finished while update handlers are "
                f"still running: {updates}",
                UnfinishedUpdateHandlersWarning,
            )

    def _stack_trace(self) -> str:
        """Where each task of the workflow waits, following ``await`` chains."""
        parts: list[str] = []
        for task in asyncio.all_tasks(self._loop):
            frames = []
            awaited: Any = task.get_coro()
            while awaited is not None:
                frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
                if frame is None:
                    break
                frames.append((frame, frame.f_lineno))
                awaited = getattr(awaited, "cr_await", None) or getattr(
                    awaited, "gi_yieldfrom", None
                )
            summary = traceback.StackSummary.extract(iter(frames))
            parts.append(f"{task.get_name()}:\n" + "".join(summary.format()))
        return "\n".join(sorted(parts))

    # ------------------------------------------------------------------
    # _Runtime: facts and deterministic sources.

    def workflow_info(self) -> Info:
        """See :meth:`_Runtime.workflow_info`."""
        if self._info is None:
            raise RuntimeError("The workflow has not started yet")
        if (
            self._info.search_attributes != self._search_untyped
            or self._info.typed_search_attributes is not self._search_typed
        ):
            self._info = dataclasses.replace(
                self._info,
                search_attributes=dict(self._search_untyped),
                typed_search_attributes=self._search_typed,
            )
        return self._info

    def workflow_instance(self) -> Any:
        """See :meth:`_Runtime.workflow_instance`."""
        return self._object

    def workflow_time_ns(self) -> int:
        """See :meth:`_Runtime.workflow_time_ns`."""
        return self._loop.time_ms * 1_000_000

    def workflow_random(self) -> Random:
        """See :meth:`_Runtime.workflow_random`."""
        if self._random is None:
            self._random = Random(_seed(self._run_id))
        return self._random

    def workflow_is_replaying(self) -> bool:
        """See :meth:`_Runtime.workflow_is_replaying`."""
        return self._replaying

    def workflow_payload_converter(self) -> PayloadConverter:
        """See :meth:`_Runtime.workflow_payload_converter`."""
        return self._pc

    def workflow_get_current_history_length(self) -> int:
        """See :meth:`_Runtime.workflow_get_current_history_length`."""
        return self._history_length

    def workflow_is_continue_as_new_suggested(self) -> bool:
        """See :meth:`_Runtime.workflow_is_continue_as_new_suggested`."""
        return self._history_length >= self._suggest_can_at

    def workflow_is_failure_exception(self, error: BaseException) -> bool:
        """See :meth:`_Runtime.workflow_is_failure_exception`."""
        return isinstance(error, FailureError) or isinstance(error, self._failure_types)

    def workflow_metric_meter(self) -> MetricMeter:
        """See :meth:`_Runtime.workflow_metric_meter`: made on first use, with the
        workflow's namespace, task queue and type as attributes (temporalio's)."""
        meter = self._metric_meter
        if meter is None:
            root = self._metric_root
            if root is MetricMeter.noop:
                meter = root
            else:
                info = self.workflow_info()
                meter = _ReplaySafeMetricMeter(
                    root.with_additional_attributes(
                        {
                            "namespace": info.namespace,
                            "task_queue": info.task_queue,
                            "workflow_type": info.workflow_type,
                        }
                    ),
                    self.workflow_is_replaying,
                )
            self._metric_meter = meter
        return meter

    # _Runtime: commands.

    def workflow_get_external_workflow_handle(
        self, workflow_id: str, *, run_id: str | None
    ) -> ExternalWorkflowHandle[Any]:
        """See :meth:`_Runtime.workflow_get_external_workflow_handle`."""
        return _ExternalWorkflowHandle(self, workflow_id, run_id)

    def workflow_continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        """See :meth:`_Runtime.workflow_continue_as_new`."""
        if self._read_only:
            raise ReadOnlyContextError("continue_as_new is not allowed in a query or validator")
        if self._interception is not None:
            self._interception.outbound.continue_as_new(input)
        self._continue_as_new_now(input)

    def _continue_as_new_now(self, input: ContinueAsNewInput) -> NoReturn:
        raise _ContinueAsNew(input)

    def workflow_info_for_code(self) -> Info:
        """See :meth:`_Runtime.workflow_info_for_code`."""
        if self._interception is None:
            return self.workflow_info()
        info: Info = self._interception.outbound.info()
        return info

    async def workflow_sleep(self, duration: float, *, summary: str | None) -> None:
        """See :meth:`_Runtime.workflow_sleep`."""
        del summary  # StartTimer has no summary field yet.
        await asyncio.sleep(duration)

    async def workflow_wait_condition(
        self,
        fn: Callable[[], bool],
        *,
        timeout: float | None,
        timeout_summary: str | None,
    ) -> None:
        """See :meth:`_Runtime.workflow_wait_condition`."""
        del timeout_summary
        future: asyncio.Future[None] = self._loop.create_future()
        self._conditions.append((fn, future))
        if timeout is None:
            await future
        else:
            await asyncio.wait_for(future, timeout)

    def workflow_patch(self, id: str, *, deprecated: bool) -> bool:
        """See :meth:`_Runtime.workflow_patch`."""
        if id in self._patches:
            return self._patches[id]
        use_new = not self._replaying or id in self._patches_in_task
        if use_new and not self._read_only:
            self._add_command(
                h.RECORD_MARKER,
                {
                    "marker_name": h.PATCH_MARKER,
                    "details": {
                        "patch_id": self._pc.to_payloads([id]),
                        "deprecated": self._pc.to_payloads([deprecated]),
                    },
                    "header": {},
                    "failure": None,
                },
            )
        if not self._read_only:
            self._patches[id] = use_new
        return use_new

    def workflow_upsert_search_attributes(
        self, attributes: Sequence[SearchAttributeUpdate[Any]] | SearchAttributes
    ) -> None:
        """See :meth:`_Runtime.workflow_upsert_search_attributes`."""
        encoded = _search.encode_updates(attributes, self._pc)
        self._add_command(h.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, {"search_attributes": encoded})
        self._search_untyped, self._search_typed = _search.apply(
            self._search_untyped, self._search_typed, encoded, self._pc
        )

    def workflow_memo(self) -> Mapping[str, Any]:
        """See :meth:`_Runtime.workflow_memo`."""
        return {k: self._pc.from_payload(v) for k, v in self._memo.items()}

    def workflow_memo_value(self, key: str, default: Any, *, type_hint: Any | None) -> Any:
        """See :meth:`_Runtime.workflow_memo_value`."""
        if key not in self._memo:
            if default is _arg_unset:
                raise KeyError(f"Memo has no key {key!r}")
            return default
        hints = [type_hint] if type_hint is not None else None
        return self._pc.from_payloads([self._memo[key]], hints)[0]

    def workflow_upsert_memo(self, updates: Mapping[str, Any]) -> None:
        """See :meth:`_Runtime.workflow_upsert_memo`."""
        encoded = {k: self._pc.to_payload(v) for k, v in updates.items()}
        self._add_command(h.MODIFY_WORKFLOW_PROPERTIES, {"upserted_memo": encoded})
        for key, value in updates.items():
            if value is None:
                self._memo.pop(key, None)
            else:
                self._memo[key] = encoded[key]

    # _Runtime: cron and retries.

    def workflow_has_last_completion_result(self) -> bool:
        """See :meth:`_Runtime.workflow_has_last_completion_result`."""
        return bool(self._start.get("last_completion_result"))

    def workflow_last_completion_result(self, type_hint: Any | None) -> Any | None:
        """See :meth:`_Runtime.workflow_last_completion_result`."""
        payloads = self._start.get("last_completion_result") or []
        if not payloads:
            return None
        return self._pc.from_payloads(payloads, [type_hint] if type_hint is not None else None)[0]

    def workflow_last_failure(self) -> BaseException | None:
        """See :meth:`_Runtime.workflow_last_failure`."""
        failure = self._start.get("continued_failure")
        return self._fc.from_failure(failure, self._pc) if failure else None


def _warn(message: str, category: type[Warning]) -> None:
    import warnings

    warnings.warn(message, category, stacklevel=2)
