"""What the parts of the workflow runtime share: its state, and issuing commands.

``WorkflowInstance`` (``_instance``: replay and running the code) is
assembled from :class:`_State` (this module), ``_Appliers`` (input history
events -> state), ``_Inbound`` (signals, updates and their handlers) and
``_Outbound`` (commands for activities, timers, children and other workflows).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from ..converter import FailureConverter, PayloadConverter
from ..exceptions import ActivityError, RetryState
from . import _history as h
from ._children import ContinueAsNewError
from ._context import ContinueAsNewInput
from ._definition import _Definition
from ._exceptions import ReadOnlyContextError
from ._handlers import _QueryDefinition, _SignalDefinition, _UpdateDefinition
from ._info import Info
from ._interception import Interception
from ._loop import DurableTimerHandle, _WorkflowEventLoop
from ._machines import ActivityState, ChildState, ExternalState, PendingCommand, UpdateState

_MS = timedelta(milliseconds=1)


def _ms(value: timedelta | None) -> int | None:
    return None if value is None else value // _MS


def _td(ms: int | None) -> timedelta | None:
    return None if ms is None else timedelta(milliseconds=ms)


class _ContinueAsNew(ContinueAsNewError):
    def __init__(self, input: ContinueAsNewInput) -> None:
        super().__init__("Continue as new")
        self.input = input


class _State:
    """The state of one workflow run that every part of the runtime reads."""

    # Every attribute of ``WorkflowInstance``, as slots: a worker caches thousands of
    # runs, and a per-run ``__dict__`` of ~50 keys (too many for a key-sharing dict)
    # costs ~1 KB more each. The mixins and ``WorkflowInstance`` add no slots of their own.
    __slots__ = (
        "__weakref__",
        "_activities",
        "_awaiting_events",
        "_buffered_signals",
        "_cancel_requested",
        "_cancelled_timers",
        "_children",
        "_closed",
        "_commands",
        "_conditions",
        "_definition",
        "_expected",
        "_externals",
        "_failure_types",
        "_fc",
        "_history_length",
        "_info",
        "_inputs",
        "_interception",
        "_live_scheduled_id",
        "_loop",
        "_main",
        "_memo",
        "_metric_meter",
        "_metric_root",
        "_namespace",
        "_object",
        "_open_task",
        "_open_task_started",
        "_patches",
        "_patches_in_task",
        "_pc",
        "_queries",
        "_random",
        "_read_only",
        "_replaying",
        "_run_id",
        "_running_signals",
        "_running_updates",
        "_search_typed",
        "_search_untyped",
        "_seq",
        "_signals",
        "_stale",
        "_start",
        "_started",
        "_suggest_can_at",
        "_task_failure",
        "_timers",
        "_updates",
        "_updates_seen",
        "_workflow_id",
        "_workflow_start_ms",
        "abandoned",
        "ran_ahead_to",
    )

    _definition: _Definition
    _interception: Interception | None
    _workflow_id: str
    _run_id: str
    _namespace: str
    _pc: PayloadConverter
    _fc: FailureConverter
    _loop: _WorkflowEventLoop
    _main: asyncio.Task[None] | None
    _replaying: bool
    _read_only: bool
    _closed: bool
    _cancel_requested: bool
    _commands: list[PendingCommand]
    _seq: dict[str, int]
    _activities: dict[int, ActivityState]
    _timers: dict[str, DurableTimerHandle]
    _cancelled_timers: set[str]
    _children: dict[int, ChildState]
    _externals: dict[int, ExternalState]
    _object: Any
    _signals: dict[str | None, _SignalDefinition]
    _queries: dict[str | None, _QueryDefinition]
    _updates: dict[str | None, _UpdateDefinition]
    _buffered_signals: list[Mapping[str, Any]]
    _running_signals: list[tuple[str, _SignalDefinition]]
    _running_updates: dict[str, tuple[UpdateState, _UpdateDefinition]]
    _updates_seen: set[str]

    # Defined by WorkflowInstance.

    def workflow_info(self) -> Info:
        raise NotImplementedError

    def _deliver_signal(self, attributes: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def _deliver_update(self, request: Mapping[str, Any], *, validate: bool) -> None:
        raise NotImplementedError

    def _warn_unfinished_handlers(self) -> None:
        raise NotImplementedError

    def _finish_with_exception(self, err: BaseException) -> None:
        raise NotImplementedError

    def workflow_is_failure_exception(self, error: BaseException) -> bool:
        raise NotImplementedError

    @contextmanager
    def _read_only_block(self) -> Iterator[None]:
        """Commands raise ``ReadOnlyContextError`` inside (queries, update validators)."""
        previous, self._read_only = self._read_only, True
        try:
            yield
        finally:
            self._read_only = previous

    def _add_command(
        self,
        name: str,
        record: dict[str, Any],
        *,
        on_recorded: Callable[[int], None] | None = None,
        expects_event: bool = True,
    ) -> PendingCommand:
        if self._read_only:
            raise ReadOnlyContextError(
                f"{h.short(name)} is not allowed in a query handler or update validator"
            )
        pending = PendingCommand((name, record), on_recorded, expects_event)
        if self._closed:
            pending.dropped = True  # nothing follows the workflow's closing command
        else:
            self._commands.append(pending)
            if name in h.TERMINAL_COMMANDS:
                self._closed = True
                self._warn_unfinished_handlers()
        return pending

    def _drop_if_unsent(self, pending: PendingCommand | None) -> bool:
        """Cancel a command produced in this activation: it is never sent."""
        if pending is not None and any(p is pending for p in self._commands):
            pending.dropped = True
            return True
        return False

    def _next_seq(self, kind: str) -> int:
        self._seq[kind] = self._seq.get(kind, 0) + 1
        return self._seq[kind]

    def _activity_error(
        self, activity: ActivityState, message: str, attributes: Mapping[str, Any], cause: Any
    ) -> ActivityError:
        retry_state = attributes.get("retry_state")
        error = ActivityError(
            message,
            scheduled_event_id=activity.scheduled_event_id,
            started_event_id=int(attributes.get("started_event_id") or activity.started_event_id),
            identity=str(attributes.get("identity") or ""),
            activity_type=activity.input.activity,
            activity_id=activity.activity_id,
            retry_state=RetryState.__members__.get(retry_state) if retry_state else None,
        )
        error.__cause__ = cause
        return error
