"""Options enums of activities and child workflows started from a workflow."""

from __future__ import annotations

from enum import IntEnum


class ActivityCancellationType(IntEnum):
    """What cancelling an activity from the workflow waits for."""

    TRY_CANCEL = 0
    """Request cancellation and report the activity cancelled at once (default)."""
    WAIT_CANCELLATION_COMPLETED = 1
    """Request cancellation and wait until the activity acknowledges it."""
    ABANDON = 2
    """Do not request cancellation; report it cancelled at once."""


class ChildWorkflowCancellationType(IntEnum):
    """What cancelling a child workflow from its parent waits for."""

    ABANDON = 0
    """Do not request cancellation of the child."""
    TRY_CANCEL = 1
    """Request cancellation; do not wait for it to be delivered."""
    WAIT_CANCELLATION_COMPLETED = 2
    """Request cancellation and wait until the child closes (default)."""
    WAIT_CANCELLATION_REQUESTED = 3
    """Request cancellation and wait until the request is delivered."""


class ParentClosePolicy(IntEnum):
    """What happens to a child workflow when its parent closes."""

    UNSPECIFIED = 0
    """Engine default (``TERMINATE``)."""
    TERMINATE = 1
    """Terminate the child (default)."""
    ABANDON = 2
    """Let the child run on."""
    REQUEST_CANCEL = 3
    """Request cancellation of the child."""
