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
from ._interceptor import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ContinueAsNewInput,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    HandleQueryInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    SignalChildWorkflowInput,
    SignalExternalWorkflowInput,
    StartActivityInput,
    StartChildWorkflowInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from ._replayer import Replayer, WorkflowReplayResult, WorkflowReplayResults
from ._runners import SandboxedWorkflowRunner, UnsandboxedWorkflowRunner, WorkflowRunner
from ._shared import WorkerClient
from ._worker import Worker, WorkerConfig

__all__ = [
    "ActivityInboundInterceptor",
    "ActivityOutboundInterceptor",
    "ContinueAsNewInput",
    "ExecuteActivityInput",
    "ExecuteWorkflowInput",
    "HandleQueryInput",
    "HandleSignalInput",
    "HandleUpdateInput",
    "Interceptor",
    "Replayer",
    "SandboxedWorkflowRunner",
    "SignalChildWorkflowInput",
    "SignalExternalWorkflowInput",
    "StartActivityInput",
    "StartChildWorkflowInput",
    "StartLocalActivityInput",
    "UnsandboxedWorkflowRunner",
    "Worker",
    "WorkerClient",
    "WorkerConfig",
    "WorkflowHistory",
    "WorkflowInboundInterceptor",
    "WorkflowInterceptorClassInput",
    "WorkflowOutboundInterceptor",
    "WorkflowReplayResult",
    "WorkflowReplayResults",
    "WorkflowRunner",
]
