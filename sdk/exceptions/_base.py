"""The exception root and the failures that cross process boundaries.

Every failure here round-trips through ``cadenza.converter.FailureConverter``
to the wire ``Failure`` dict and back, cause chain included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from enum import IntEnum
from typing import Any

from ..common._failure import Failure


class CadenzaError(Exception):
    """Root of every exception Cadenza raises (``TemporalError`` in Temporal)."""

    @property
    def cause(self) -> BaseException | None:
        """The exception's ``__cause__``."""
        return self.__cause__


class FailureError(CadenzaError):
    """Base of the failures of workflows, activities and child workflows.

    Attributes are read-only properties. When the error was decoded from the
    wire, :attr:`failure` is the original ``Failure`` dict and is re-sent
    unchanged if the error is raised on.
    """

    def __init__(
        self,
        message: str,
        *,
        failure: Failure | None = None,
        exc_args: tuple[Any, ...] | None = None,
    ) -> None:
        """Create a failure error.

        Args:
            message: The failure message.
            failure: The wire failure this error was decoded from, if any.
            exc_args: ``Exception.args`` if they differ from ``(message,)``.
        """
        super().__init__(*(exc_args if exc_args is not None else (message,)))
        self._message = message
        self._failure = failure

    @property
    def message(self) -> str:
        """The failure message."""
        return self._message

    @property
    def failure(self) -> Failure | None:
        """The wire ``Failure`` dict this error was decoded from, if any."""
        return self._failure


class ApplicationErrorCategory(IntEnum):
    """How an ``ApplicationError`` is logged and counted."""

    UNSPECIFIED = 0
    BENIGN = 1
    """Expected failures: logged at DEBUG, not counted as failures in metrics."""


class ApplicationError(FailureError):
    """A failure raised by user code in a workflow or activity.

    Retry behaviour lives on the error: ``non_retryable=True`` stops retries,
    ``next_retry_delay`` overrides the retry policy's backoff for this attempt.
    Any other exception from an activity is converted to an ``ApplicationError``
    whose :attr:`type` is the exception's class name.

    Example:
        >>> err = ApplicationError("card declined", {"code": 51}, type="Declined",
        ...                        non_retryable=True)
        >>> str(err), err.details, err.non_retryable
        ('Declined: card declined', ({'code': 51},), True)
    """

    def __init__(
        self,
        message: str,
        *details: Any,
        type: str | None = None,
        non_retryable: bool = False,
        next_retry_delay: timedelta | None = None,
        category: ApplicationErrorCategory = ApplicationErrorCategory.UNSPECIFIED,
    ) -> None:
        """Create an application error.

        Args:
            message: The failure message.
            details: Values carried with the failure (converted like arguments).
            type: A name for the kind of error, matched by
                ``RetryPolicy.non_retryable_error_types``.
            non_retryable: Never retry this failure, whatever the retry policy.
            next_retry_delay: Wait this long before the next attempt instead of
                the retry policy's backoff.
            category: Logging/metrics category.
        """
        super().__init__(message, exc_args=(f"{type}: {message}" if type else message,))
        self._details = details
        self._type = type
        self._non_retryable = non_retryable
        self._next_retry_delay = next_retry_delay
        self._category = category

    @property
    def details(self) -> Sequence[Any]:
        """Values carried with the failure."""
        return self._details

    @property
    def type(self) -> str | None:
        """The error type name, if any."""
        return self._type

    @property
    def non_retryable(self) -> bool:
        """Whether the error was marked non-retryable when raised.

        (Not whether the retry policy would retry it.)
        """
        return self._non_retryable

    @property
    def next_retry_delay(self) -> timedelta | None:
        """Delay before the next attempt, overriding the retry policy."""
        return self._next_retry_delay

    @property
    def category(self) -> ApplicationErrorCategory:
        """Logging/metrics category."""
        return self._category


class CancelledError(FailureError):
    """A workflow, activity or child workflow was cancelled."""

    def __init__(self, message: str = "Cancelled", *details: Any) -> None:
        """Create a cancelled error carrying optional ``details``."""
        super().__init__(message)
        self._details = details

    @property
    def details(self) -> Sequence[Any]:
        """Values carried with the cancellation."""
        return self._details


class TerminatedError(FailureError):
    """A workflow was terminated."""

    def __init__(self, message: str, *details: Any) -> None:
        """Create a terminated error; ``message`` is the termination reason."""
        super().__init__(message)
        self._details = details

    @property
    def details(self) -> Sequence[Any]:
        """Values carried with the termination (not sent on the wire)."""
        return self._details


class TimeoutType(IntEnum):
    """Which timeout of a :class:`TimeoutError` expired."""

    START_TO_CLOSE = 1
    SCHEDULE_TO_START = 2
    SCHEDULE_TO_CLOSE = 3
    HEARTBEAT = 4


class TimeoutError(FailureError):
    """A workflow or activity timed out.

    Shadows the builtin ``TimeoutError`` inside this module only, as Temporal's
    does; import it as ``cadenza.exceptions.TimeoutError``.
    """

    def __init__(
        self,
        message: str,
        *,
        type: TimeoutType | None,
        last_heartbeat_details: Sequence[Any],
    ) -> None:
        """Create a timeout error.

        Args:
            message: The failure message.
            type: Which timeout expired.
            last_heartbeat_details: Details of the activity's last heartbeat.
        """
        super().__init__(message)
        self._type = type
        self._last_heartbeat_details = last_heartbeat_details

    @property
    def type(self) -> TimeoutType | None:
        """Which timeout expired."""
        return self._type

    @property
    def last_heartbeat_details(self) -> Sequence[Any]:
        """Details of the last heartbeat, for heartbeating activities."""
        return self._last_heartbeat_details


class ServerError(FailureError):
    """A failure made by the Cadenza engine rather than by user code."""

    def __init__(self, message: str, *, non_retryable: bool = False) -> None:
        """Create a server error."""
        super().__init__(message)
        self._non_retryable = non_retryable

    @property
    def non_retryable(self) -> bool:
        """Whether the failure must not be retried."""
        return self._non_retryable


class RetryState(IntEnum):
    """Where retrying stood when an activity or child workflow failed."""

    IN_PROGRESS = 1
    NON_RETRYABLE_FAILURE = 2
    TIMEOUT = 3
    MAXIMUM_ATTEMPTS_REACHED = 4
    RETRY_POLICY_NOT_SET = 5
    INTERNAL_SERVER_ERROR = 6
    CANCEL_REQUESTED = 7


class ActivityError(FailureError):
    """An activity called from a workflow failed; :attr:`cause` says why."""

    def __init__(
        self,
        message: str,
        *,
        scheduled_event_id: int,
        started_event_id: int,
        identity: str,
        activity_type: str,
        activity_id: str,
        retry_state: RetryState | None,
    ) -> None:
        """Create an activity error (normally done by the workflow runtime)."""
        super().__init__(message)
        self._scheduled_event_id = scheduled_event_id
        self._started_event_id = started_event_id
        self._identity = identity
        self._activity_type = activity_type
        self._activity_id = activity_id
        self._retry_state = retry_state

    @property
    def scheduled_event_id(self) -> int:
        """History event id of the ``ActivityTaskScheduled`` event."""
        return self._scheduled_event_id

    @property
    def started_event_id(self) -> int:
        """History event id of the ``ActivityTaskStarted`` event."""
        return self._started_event_id

    @property
    def identity(self) -> str:
        """Identity of the worker that ran the last attempt."""
        return self._identity

    @property
    def activity_type(self) -> str:
        """The activity's type name."""
        return self._activity_type

    @property
    def activity_id(self) -> str:
        """The activity's id."""
        return self._activity_id

    @property
    def retry_state(self) -> RetryState | None:
        """Why retrying stopped."""
        return self._retry_state


class ChildWorkflowError(FailureError):
    """A child workflow failed; :attr:`cause` says why."""

    def __init__(
        self,
        message: str,
        *,
        namespace: str,
        workflow_id: str,
        run_id: str,
        workflow_type: str,
        initiated_event_id: int,
        started_event_id: int,
        retry_state: RetryState | None,
    ) -> None:
        """Create a child workflow error (normally done by the workflow runtime)."""
        super().__init__(message)
        self._namespace = namespace
        self._workflow_id = workflow_id
        self._run_id = run_id
        self._workflow_type = workflow_type
        self._initiated_event_id = initiated_event_id
        self._started_event_id = started_event_id
        self._retry_state = retry_state

    @property
    def namespace(self) -> str:
        """The child's namespace."""
        return self._namespace

    @property
    def workflow_id(self) -> str:
        """The child's workflow id."""
        return self._workflow_id

    @property
    def run_id(self) -> str:
        """The child's run id."""
        return self._run_id

    @property
    def workflow_type(self) -> str:
        """The child's workflow type name."""
        return self._workflow_type

    @property
    def initiated_event_id(self) -> int:
        """Parent history event id of ``StartChildWorkflowExecutionInitiated``."""
        return self._initiated_event_id

    @property
    def started_event_id(self) -> int:
        """Parent history event id of ``ChildWorkflowExecutionStarted``."""
        return self._started_event_id

    @property
    def retry_state(self) -> RetryState | None:
        """Why retrying stopped."""
        return self._retry_state


class WorkflowAlreadyStartedError(FailureError):
    """A workflow with this id is already running (or the reuse policy forbids it).

    Attributes:
        workflow_id: Id of the existing workflow.
        workflow_type: Type name of the existing workflow.
        run_id: Run id of the existing workflow, when known.
    """

    def __init__(self, workflow_id: str, workflow_type: str, *, run_id: str | None = None) -> None:
        """Create a workflow-already-started error."""
        super().__init__("Workflow execution already started")
        self.workflow_id = workflow_id
        self.workflow_type = workflow_type
        self.run_id = run_id


def is_cancelled_exception(exception: BaseException) -> bool:
    """Whether ``exception`` means "cancelled".

    True for :class:`asyncio.CancelledError`, :class:`CancelledError`, and an
    :class:`ActivityError` or :class:`ChildWorkflowError` caused by a
    :class:`CancelledError`. Use it in ``except`` blocks inside workflows.

    Example:
        >>> is_cancelled_exception(CancelledError())
        True
        >>> is_cancelled_exception(ValueError())
        False
    """
    if isinstance(exception, asyncio.CancelledError | CancelledError):
        return True
    return isinstance(exception, ActivityError | ChildWorkflowError) and isinstance(
        exception.cause, CancelledError
    )
