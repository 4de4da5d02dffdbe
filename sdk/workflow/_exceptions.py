"""Errors and enums of the workflow API itself."""

from __future__ import annotations

from enum import Enum

from ..exceptions import CadenzaError


class ReadOnlyContextError(CadenzaError):
    """A query handler or update validator tried to change workflow state.

    Raised by the runtime for commands (activities, timers, ...) issued where
    only reading is allowed.
    """

    def __init__(self, message: str) -> None:
        """Create the error."""
        super().__init__(message)
        self.message = message


class _NotInWorkflowEventLoopError(CadenzaError, RuntimeError):
    """A workflow API function was called outside a workflow."""

    def __init__(self, *args: object) -> None:
        message = "Not in workflow event loop"
        super().__init__(message)
        self.message = message


class VersioningIntent(Enum):
    """Temporal's worker-versioning hint for commands. Accepted and ignored by Cadenza."""

    COMPATIBLE = 1
    DEFAULT = 2
