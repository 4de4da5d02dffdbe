"""Enums shared by the client, the workflow API and the wire records.

Every member's ``name`` is the symbol of the matching Avro enum, so
``Policy[symbol]`` reads a wire value and ``policy.name`` writes one. The
integer values are Temporal's, so code comparing them keeps working.
"""

from __future__ import annotations

from enum import IntEnum


class WorkflowIDReusePolicy(IntEnum):
    """Whether a workflow id whose previous run is closed may be started again.

    Example:
        >>> WorkflowIDReusePolicy["REJECT_DUPLICATE"].name
        'REJECT_DUPLICATE'
    """

    ALLOW_DUPLICATE = 1
    """Start a new run whatever the previous one ended with (the default)."""
    ALLOW_DUPLICATE_FAILED_ONLY = 2
    """Start a new run only if the previous one failed, was cancelled, was
    terminated or timed out."""
    REJECT_DUPLICATE = 3
    """Never reuse the id."""
    TERMINATE_IF_RUNNING = 4
    """Terminate a running workflow of this id, then start. Deprecated in
    Temporal in favour of ``WorkflowIDConflictPolicy.TERMINATE_EXISTING``."""


class WorkflowIDConflictPolicy(IntEnum):
    """What starting a workflow does when one of the same id is running."""

    UNSPECIFIED = 0
    """Let the engine decide (it fails the start, as ``FAIL``)."""
    FAIL = 1
    """Fail the start with ``WorkflowAlreadyStartedError``."""
    USE_EXISTING = 2
    """Return a handle to the running workflow instead."""
    TERMINATE_EXISTING = 3
    """Terminate the running workflow, then start a new one."""


class QueryRejectCondition(IntEnum):
    """When a query is rejected instead of answered."""

    NONE = 1
    """Never reject."""
    NOT_OPEN = 2
    """Reject if the workflow is closed."""
    NOT_COMPLETED_CLEANLY = 3
    """Reject if the workflow closed other than by completing."""


class WorkflowExecutionStatus(IntEnum):
    """Status of a workflow execution.

    Temporal keeps this in ``temporalio.client``; Cadenza declares it here so
    ``cadenza.exceptions`` can use it, and ``cadenza.client`` re-exports it.
    """

    RUNNING = 1
    COMPLETED = 2
    FAILED = 3
    CANCELED = 4
    TERMINATED = 5
    CONTINUED_AS_NEW = 6
    TIMED_OUT = 7
