"""Cadenza's exceptions: one root, :class:`CadenzaError`, as Temporal's ``TemporalError``.

Failures (:class:`FailureError` and subclasses) cross process boundaries: an
activity's ``ApplicationError`` reaches the workflow as the cause of an
``ActivityError``, and a failed workflow reaches the client as the cause of a
``WorkflowFailureError``. Control-flow exceptions that user code must not
swallow derive from ``BaseException`` and live with their API
(``cadenza.workflow.ContinueAsNewError``).
"""

from ._base import (
    ActivityError,
    ApplicationError,
    ApplicationErrorCategory,
    CadenzaError,
    CancelledError,
    ChildWorkflowError,
    FailureError,
    RetryState,
    ServerError,
    TerminatedError,
    TimeoutError,
    TimeoutType,
    WorkflowAlreadyStartedError,
    is_cancelled_exception,
)
from ._client import (
    CadenzaServiceError,
    RPCTimeoutOrCancelledError,
    WorkflowContinuedAsNewError,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from ._workflow import NondeterminismError

TemporalError = CadenzaError
"""Alias of :class:`CadenzaError`, so ``except TemporalError`` ports unchanged."""

__all__ = [
    "ActivityError",
    "ApplicationError",
    "ApplicationErrorCategory",
    "CadenzaError",
    "CadenzaServiceError",
    "CancelledError",
    "ChildWorkflowError",
    "FailureError",
    "NondeterminismError",
    "RPCTimeoutOrCancelledError",
    "RetryState",
    "ServerError",
    "TemporalError",
    "TerminatedError",
    "TimeoutError",
    "TimeoutType",
    "WorkflowAlreadyStartedError",
    "WorkflowContinuedAsNewError",
    "WorkflowFailureError",
    "WorkflowQueryFailedError",
    "WorkflowQueryRejectedError",
    "WorkflowUpdateFailedError",
    "WorkflowUpdateRPCTimeoutOrCancelledError",
    "is_cancelled_exception",
]
