"""The public face of ``cadenza.client``, pinned (STYLE 1)."""

from __future__ import annotations

import cadenza.client
import cadenza.exceptions

EXPECTED = {
    "CompleteAsyncActivityInput",
    "FailAsyncActivityInput",
    "HeartbeatAsyncActivityInput",
    "ReportCancellationAsyncActivityInput",
    "AsyncActivityCancelledError",
    "AsyncActivityHandle",
    "AsyncActivityIDReference",
    "CancelWorkflowInput",
    "CountWorkflowsInput",
    "DescribeWorkflowInput",
    "FetchWorkflowHistoryEventsInput",
    "Interceptor",
    "ListWorkflowsInput",
    "OutboundInterceptor",
    "QueryWorkflowInput",
    "SignalWorkflowInput",
    "StartWorkflowInput",
    "StartWorkflowUpdateInput",
    "TerminateWorkflowInput",
    "DEFAULT_RPC_TIMEOUT",
    "CadenzaServiceError",
    "Client",
    "DeliveryError",
    "RPCTimeoutOrCancelledError",
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
}


def test_all_is_pinned() -> None:
    assert set(cadenza.client.__all__) == EXPECTED
    assert len(cadenza.client.__all__) == len(EXPECTED)


def test_every_export_exists_and_is_public() -> None:
    for name in cadenza.client.__all__:
        value = getattr(cadenza.client, name)
        module = getattr(value, "__module__", "cadenza.client")
        assert module.startswith("cadenza."), name


def test_client_errors_are_the_ones_in_cadenza_exceptions() -> None:
    # Raised in one place, caught under either import path, as in temporalio.
    for name in (
        "WorkflowFailureError",
        "WorkflowContinuedAsNewError",
        "WorkflowQueryFailedError",
        "WorkflowQueryRejectedError",
        "WorkflowUpdateFailedError",
        "WorkflowUpdateRPCTimeoutOrCancelledError",
        "RPCTimeoutOrCancelledError",
        "CadenzaServiceError",
        "WorkflowAlreadyStartedError",
    ):
        assert getattr(cadenza.client, name) is getattr(cadenza.exceptions, name)


def test_transport_errors_are_cadenza_errors() -> None:
    assert issubclass(cadenza.client.TransportError, cadenza.exceptions.CadenzaError)
    assert issubclass(cadenza.client.DeliveryError, cadenza.client.TransportError)
