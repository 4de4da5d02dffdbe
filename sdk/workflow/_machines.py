"""The state of each command a workflow issued, and the handles workflow code holds.

One small class per command kind. The runtime creates them when the code asks
(schedule an activity, start a child, ...), records the history event id
once the event that records the command is matched, and resolves them from
the events that answer them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..common._typing import _arg_or_args, _arg_unset
from ._context import StartActivityInput, StartChildWorkflowInput
from ._handlers import _SignalDefinition
from ._handles import ActivityHandle, ChildWorkflowHandle, ExternalWorkflowHandle
from ._history import Command

if TYPE_CHECKING:
    from ._outbound import _Outbound


@dataclass(eq=False)
class PendingCommand:
    """A command produced by the code, until the event recording it is matched."""

    command: Command
    on_recorded: Callable[[int], None] | None = None
    """Called with the id of the event that records the command."""
    expects_event: bool = True
    """Whether history records it (rejected updates leave no event)."""
    dropped: bool = False
    """Cancelled before it was ever sent: never sent, never matched."""


@dataclass(eq=False)
class ActivityState:
    """An activity scheduled by the workflow."""

    input: StartActivityInput
    activity_id: str
    command: PendingCommand | None = None
    result: asyncio.Future[Any] | None = None
    scheduled_event_id: int = 0
    started_event_id: int = 0
    cancel_requested: bool = False


@dataclass(eq=False)
class ChildState:
    """A child workflow started by the workflow."""

    input: StartChildWorkflowInput
    command: PendingCommand | None = None
    started: asyncio.Future[None] | None = None
    result: asyncio.Future[Any] | None = None
    initiated_event_id: int = 0
    started_event_id: int = 0
    run_id: str | None = None
    cancel_requested: bool = False


@dataclass(eq=False)
class ExternalState:
    """A signal or cancellation sent to another workflow."""

    result: asyncio.Future[None]
    workflow_id: str
    command: PendingCommand | None = None
    initiated_event_id: int = 0


@dataclass(eq=False)
class UpdateState:
    """An accepted update whose handler runs."""

    update_id: str
    name: str
    task: asyncio.Task[None] | None = None


class _ActivityHandle(ActivityHandle[Any]):
    """The runtime's activity handle: a task awaiting the activity's resolution."""

    _cadenza_on_cancel: Callable[[], None] | None = None

    def cancel(self, msg: Any | None = None) -> bool:
        """Request cancellation of the activity (per its cancellation type)."""
        # Also when the task has not taken its first step yet (its coroutine
        # would then never see the CancelledError).
        if not self.done() and self._cadenza_on_cancel is not None:
            self._cadenza_on_cancel()
        return super().cancel(msg)


class _ChildWorkflowHandle(ChildWorkflowHandle[Any, Any]):
    """The runtime's child workflow handle: a task awaiting the child's close."""

    _cadenza_instance: _Outbound
    _cadenza_child: ChildState

    @property
    def id(self) -> str:
        """The child's workflow id."""
        return self._cadenza_child.input.id

    @property
    def first_execution_run_id(self) -> str | None:
        """The child's first run id, once started."""
        return self._cadenza_child.run_id

    async def signal(
        self,
        signal: str | Callable[..., Any],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
    ) -> None:
        """Signal the child."""
        await self._cadenza_instance._signal_external(
            self.id,
            None,
            _SignalDefinition.must_name_from_fn_or_str(signal),
            _arg_or_args(arg, args),
            child_workflow_only=True,
        )


class _ExternalWorkflowHandle(ExternalWorkflowHandle[Any]):
    """The runtime's handle to another workflow."""

    def __init__(self, instance: _Outbound, workflow_id: str, run_id: str | None) -> None:
        self._instance = instance
        self._id = workflow_id
        self._run_id = run_id

    @property
    def id(self) -> str:
        """The workflow's id."""
        return self._id

    @property
    def run_id(self) -> str | None:
        """The run addressed, or ``None`` for the latest run."""
        return self._run_id

    async def signal(
        self,
        signal: str | Callable[..., Any],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
    ) -> None:
        """Signal the workflow (returns once the signal is delivered)."""
        await self._instance._signal_external(
            self._id,
            self._run_id,
            _SignalDefinition.must_name_from_fn_or_str(signal),
            _arg_or_args(arg, args),
            child_workflow_only=False,
        )

    async def cancel(self, *, reason: str = "") -> None:
        """Request cancellation of the workflow (returns once the request is delivered)."""
        await self._instance._cancel_external(
            self._id, self._run_id, reason=reason, child_workflow_only=False
        )
