"""Errors a client sees: workflow outcomes, queries, updates, rejected commands.

Temporal keeps most of these in ``temporalio.client``; Cadenza declares them
here, beside the failures they wrap, and ``cadenza.client`` re-exports them.
"""

from __future__ import annotations

from ..common._enums import WorkflowExecutionStatus
from ._base import CadenzaError


class WorkflowFailureError(CadenzaError):
    """A workflow the client waited on did not complete; :attr:`cause` says why.

    The cause is the decoded failure: ``ApplicationError``, ``CancelledError``,
    ``TerminatedError``, ``TimeoutError``, ...
    """

    def __init__(self, *, cause: BaseException) -> None:
        """Create a workflow failure error wrapping ``cause``."""
        super().__init__("Workflow execution failed")
        self.__cause__ = cause

    @property
    def cause(self) -> BaseException:
        """Why the workflow failed."""
        assert self.__cause__ is not None
        return self.__cause__


class WorkflowContinuedAsNewError(CadenzaError):
    """The awaited run continued as new (and result following was disabled)."""

    def __init__(self, new_execution_run_id: str) -> None:
        """Create the error naming the new run."""
        super().__init__("Workflow continued as new")
        self._new_execution_run_id = new_execution_run_id

    @property
    def new_execution_run_id(self) -> str:
        """Run id of the run it continued to."""
        return self._new_execution_run_id


class WorkflowQueryRejectedError(CadenzaError):
    """A query was rejected by its ``QueryRejectCondition``."""

    def __init__(self, status: WorkflowExecutionStatus | None) -> None:
        """Create the error with the status that caused the rejection."""
        super().__init__(f"Query rejected, status: {status.name if status else None}")
        self._status = status

    @property
    def status(self) -> WorkflowExecutionStatus | None:
        """The workflow's status when the query was rejected."""
        return self._status


class WorkflowQueryFailedError(CadenzaError):
    """A query handler raised, or the query named no handler."""

    def __init__(self, message: str) -> None:
        """Create the error with the handler's failure message."""
        super().__init__(message)
        self._message = message

    @property
    def message(self) -> str:
        """Why the query failed."""
        return self._message


class WorkflowUpdateFailedError(CadenzaError):
    """An update was rejected by its validator or its handler raised."""

    def __init__(self, cause: BaseException) -> None:
        """Create the error wrapping the update's failure."""
        super().__init__("Workflow update failed")
        self.__cause__ = cause

    @property
    def cause(self) -> BaseException:
        """Why the update failed."""
        assert self.__cause__ is not None
        return self.__cause__


class RPCTimeoutOrCancelledError(CadenzaError):
    """A client call timed out or was cancelled while waiting for its reply."""


class WorkflowUpdateRPCTimeoutOrCancelledError(RPCTimeoutOrCancelledError):
    """Waiting for an update's reply timed out or was cancelled.

    The update itself may still run; only the wait ended.
    """

    def __init__(self) -> None:
        """Create the error."""
        super().__init__("Timeout or cancellation waiting for update")


class CadenzaServiceError(CadenzaError):
    """The engine rejected a command (Cadenza's counterpart of Temporal's ``RPCError``).

    Example:
        >>> err = CadenzaServiceError("workflow 'w1' not found", "NOT_FOUND")
        >>> err.code, err.message
        ('NOT_FOUND', "workflow 'w1' not found")
    """

    def __init__(self, message: str, code: str) -> None:
        """Create the error.

        Args:
            message: Human-readable reason the engine gave.
            code: Machine-readable reason: a ``RejectionCode`` symbol of the
                reply schema (``NOT_FOUND``, ``ALREADY_STARTED``,
                ``ALREADY_CLOSED``, ``INVALID_ARGUMENT``, ``DUPLICATE``,
                ``STALE``, ``INTERNAL``).
        """
        super().__init__(f"{code}: {message}" if code else message)
        self._message = message
        self._code = code

    @property
    def message(self) -> str:
        """Human-readable reason."""
        return self._message

    @property
    def code(self) -> str:
        """Machine-readable reason."""
        return self._code
