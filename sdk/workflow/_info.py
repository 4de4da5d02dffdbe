"""Facts about the running workflow and the running update handler."""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..common._payload import Payload
from ..common._retry import RetryPolicy
from ..common._search_attributes import SearchAttributes, TypedSearchAttributes

if TYPE_CHECKING:
    from ._context import _Runtime


def _runtime() -> _Runtime:
    from ._context import _Runtime

    return _Runtime.current()


@dataclass(frozen=True)
class ParentInfo:
    """The workflow that started this one as a child."""

    namespace: str
    run_id: str
    workflow_id: str


@dataclass(frozen=True)
class RootInfo:
    """The top-most ancestor of this child workflow."""

    run_id: str
    workflow_id: str


@dataclass(frozen=True, kw_only=True)
class Info:
    """Facts about the running workflow; read with ``workflow.info()``.

    Built by the runtime; tests may build one directly. The search attribute
    fields reflect ``workflow.upsert_search_attributes`` calls.
    """

    attempt: int
    """Attempt number of this run (retries of the workflow), starting at 1."""
    continued_run_id: str | None = None
    """Run id of the run that continued as new into this one."""
    cron_schedule: str | None = None
    """Cron schedule of the workflow, if any."""
    execution_timeout: timedelta | None = None
    """Limit for the whole execution, across runs and retries."""
    first_execution_run_id: str
    """Run id of the first run of this execution chain."""
    headers: Mapping[str, Payload] = field(default_factory=dict)
    """Headers given at start."""
    namespace: str
    """The workflow's namespace."""
    parent: ParentInfo | None = None
    """The parent workflow, for a child."""
    root: RootInfo | None = None
    """The root workflow, for a child."""
    raw_memo: Mapping[str, Payload] = field(default_factory=dict)
    """The memo, unconverted (see ``workflow.memo()``)."""
    retry_policy: RetryPolicy | None = None
    """The workflow's retry policy, if any."""
    run_id: str
    """This run's id."""
    run_timeout: timedelta | None = None
    """Limit for this run."""
    search_attributes: SearchAttributes = field(default_factory=dict)
    """Untyped search attributes (deprecated in Temporal; prefer the typed ones)."""
    start_time: datetime
    """When the first workflow task of this run started."""
    task_queue: str
    """The workflow's task queue."""
    task_timeout: timedelta
    """Limit for one workflow task."""
    typed_search_attributes: TypedSearchAttributes = TypedSearchAttributes.empty
    """Typed search attributes."""
    workflow_id: str
    """The workflow's id."""
    workflow_start_time: datetime | None = None
    """When the workflow execution was started."""
    workflow_type: str
    """The workflow's type name."""

    def get_current_history_length(self) -> int:
        """Number of events in the workflow's history so far."""
        return _runtime().workflow_get_current_history_length()

    def is_continue_as_new_suggested(self) -> bool:
        """Whether the history has grown large enough that continuing as new is advised."""
        return _runtime().workflow_is_continue_as_new_suggested()

    def _logger_details(self) -> Mapping[str, Any]:
        return {
            "attempt": self.attempt,
            "namespace": self.namespace,
            "run_id": self.run_id,
            "task_queue": self.task_queue,
            "workflow_id": self.workflow_id,
            "workflow_type": self.workflow_type,
        }


@dataclass(frozen=True)
class UpdateInfo:
    """The update a handler is running for; read with :func:`current_update_info`."""

    id: str
    """The update's id."""
    name: str
    """The update's name."""

    @property
    def _logger_details(self) -> Mapping[str, Any]:
        return {"update_id": self.id, "update_name": self.name}


_current_update_info: contextvars.ContextVar[UpdateInfo] = contextvars.ContextVar(
    "cadenza_current_update_info"
)


def _set_current_update_info(info: UpdateInfo) -> None:
    """Called by the runtime in the task that runs an update handler."""
    _current_update_info.set(info)


def current_update_info() -> UpdateInfo | None:
    """The update the calling code runs for, or ``None`` outside update handlers.

    Follows :mod:`contextvars`: valid in the handler and the tasks it starts.
    """
    return _current_update_info.get(None)
