"""Running workflows and activities: the Kafka ``Worker``, the ``Replayer`` and saved
histories.

Example:
    >>> from cadenza.worker import Replayer, WorkflowHistory
    >>> history = WorkflowHistory.from_json("wf-1", '{"events": []}')
    >>> history.events
    []

A worker serves one task queue::

    from cadenza.worker import Worker

    async with Worker(client, task_queue="orders", workflows=[OrderWorkflow],
                      activities=[charge]):
        ...
"""

from ._history import WorkflowHistory
from ._replayer import Replayer, WorkflowReplayResult, WorkflowReplayResults
from ._shared import WorkerClient
from ._worker import Worker, WorkerConfig

__all__ = [
    "Replayer",
    "Worker",
    "WorkerClient",
    "WorkerConfig",
    "WorkflowHistory",
    "WorkflowReplayResult",
    "WorkflowReplayResults",
]
