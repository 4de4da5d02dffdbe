"""Running workflows and activities: the replayer and saved histories (the
Kafka worker comes later).

Example:
    >>> from cadenza.worker import Replayer, WorkflowHistory
    >>> history = WorkflowHistory.from_json("wf-1", '{"events": []}')
    >>> history.events
    []
"""

from ._history import WorkflowHistory
from ._replayer import Replayer, WorkflowReplayResult, WorkflowReplayResults

__all__ = [
    "Replayer",
    "WorkflowHistory",
    "WorkflowReplayResult",
    "WorkflowReplayResults",
]
