"""Errors raised by the workflow runtime itself."""

from __future__ import annotations

from ._base import CadenzaError


class NondeterminismError(CadenzaError):
    """Replay produced commands that differ from the workflow's history.

    The message names the history event and the command the code produced.
    Re-exported as ``cadenza.workflow.NondeterminismError``.
    """

    def __init__(self, message: str) -> None:
        """Create the error."""
        super().__init__(message)
        self.message = message
