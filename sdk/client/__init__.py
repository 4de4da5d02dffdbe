"""Starting workflows and talking to them: the same names as ``temporalio.client``.

Every call is a command on ``<ns>.commands`` whose answer comes back on the
client's own partition of ``<ns>.replies`` (see ``schemas/README.md``)::

    from cadenza.client import Client

    client = await Client.connect("localhost:9092", namespace="orders")
    handle = await client.start_workflow(
        OrderWorkflow.run, "order-42", id="order-42", task_queue="orders"
    )
    await handle.signal(OrderWorkflow.approve)
    print(await handle.result())

The errors a client sees live in ``cadenza.exceptions`` and are re-exported here,
as temporalio keeps them in ``temporalio.client``.
"""

from .._transport import DeliveryError, TransportError
from ..common._enums import WorkflowExecutionStatus
from ..exceptions import (
    CadenzaServiceError,
    RPCTimeoutOrCancelledError,
    WorkflowAlreadyStartedError,
    WorkflowContinuedAsNewError,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from ..worker import WorkflowHistory
from ._async_activity import (
    AsyncActivityCancelledError,
    AsyncActivityHandle,
    AsyncActivityIDReference,
)
from ._client import DEFAULT_RPC_TIMEOUT, Client
from ._describe import WorkflowExecutionDescription
from ._handle import WorkflowHandle
from ._interceptor import (
    CancelWorkflowInput,
    CompleteAsyncActivityInput,
    CountWorkflowsInput,
    DescribeWorkflowInput,
    FailAsyncActivityInput,
    FetchWorkflowHistoryEventsInput,
    HeartbeatAsyncActivityInput,
    Interceptor,
    ListWorkflowsInput,
    OutboundInterceptor,
    QueryWorkflowInput,
    ReportCancellationAsyncActivityInput,
    SignalWorkflowInput,
    StartWorkflowInput,
    StartWorkflowUpdateInput,
    TerminateWorkflowInput,
)
from ._list import (
    WorkflowExecution,
    WorkflowExecutionAsyncIterator,
    WorkflowExecutionCount,
    WorkflowExecutionCountAggregationGroup,
)
from ._update import WorkflowUpdateHandle, WorkflowUpdateStage

__all__ = [
    "DEFAULT_RPC_TIMEOUT",
    "AsyncActivityCancelledError",
    "AsyncActivityHandle",
    "AsyncActivityIDReference",
    "CadenzaServiceError",
    "CancelWorkflowInput",
    "Client",
    "CompleteAsyncActivityInput",
    "CountWorkflowsInput",
    "DeliveryError",
    "DescribeWorkflowInput",
    "FailAsyncActivityInput",
    "FetchWorkflowHistoryEventsInput",
    "HeartbeatAsyncActivityInput",
    "Interceptor",
    "ListWorkflowsInput",
    "OutboundInterceptor",
    "QueryWorkflowInput",
    "RPCTimeoutOrCancelledError",
    "ReportCancellationAsyncActivityInput",
    "SignalWorkflowInput",
    "StartWorkflowInput",
    "StartWorkflowUpdateInput",
    "TerminateWorkflowInput",
    "TransportError",
    "WorkflowAlreadyStartedError",
    "WorkflowContinuedAsNewError",
    "WorkflowExecution",
    "WorkflowExecutionAsyncIterator",
    "WorkflowExecutionCount",
    "WorkflowExecutionCountAggregationGroup",
    "WorkflowExecutionDescription",
    "WorkflowExecutionStatus",
    "WorkflowFailureError",
    "WorkflowHandle",
    "WorkflowHistory",
    "WorkflowQueryFailedError",
    "WorkflowQueryRejectedError",
    "WorkflowUpdateFailedError",
    "WorkflowUpdateHandle",
    "WorkflowUpdateRPCTimeoutOrCancelledError",
    "WorkflowUpdateStage",
]
