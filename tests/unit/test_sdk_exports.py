"""The public faces of the SDK's foundation packages, pinned (STYLE 1)."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "cadenza.common": {
        "MetricAttributes",
        "MetricCommon",
        "MetricCounter",
        "MetricGauge",
        "MetricGaugeFloat",
        "MetricHistogram",
        "MetricHistogramFloat",
        "MetricHistogramTimedelta",
        "MetricMeter",
        "QueryRejectCondition",
        "RawValue",
        "RetryPolicy",
        "RetryPolicyAvro",
        "SearchAttributeIndexedValueType",
        "SearchAttributeKey",
        "SearchAttributePair",
        "SearchAttributeUpdate",
        "SearchAttributeValue",
        "SearchAttributeValueType",
        "SearchAttributeValues",
        "SearchAttributes",
        "TypedSearchAttributes",
        "WorkflowExecutionStatus",
        "WorkflowIDConflictPolicy",
        "WorkflowIDReusePolicy",
    },
    "cadenza.runtime": {"PrometheusConfig", "Runtime", "TelemetryConfig"},
    "cadenza.exceptions": {
        "ActivityError",
        "ApplicationError",
        "ApplicationErrorCategory",
        "CadenzaError",
        "CadenzaServiceError",
        "CancelledError",
        "ChildWorkflowError",
        "FailureError",
        "NondeterminismError",
        "RPCTimeoutOrCancelledError",
        "RetryState",
        "ServerError",
        "TemporalError",
        "TerminatedError",
        "TimeoutError",
        "TimeoutType",
        "WorkflowAlreadyStartedError",
        "WorkflowContinuedAsNewError",
        "WorkflowFailureError",
        "WorkflowQueryFailedError",
        "WorkflowQueryRejectedError",
        "WorkflowUpdateFailedError",
        "WorkflowUpdateRPCTimeoutOrCancelledError",
        "is_cancelled_exception",
    },
    "cadenza.converter": {
        "FAILURE_SOURCE",
        "ActivityFailureInfo",
        "AdvancedJSONEncoder",
        "ApplicationFailureInfo",
        "BinaryNullPayloadConverter",
        "BinaryPlainPayloadConverter",
        "BinaryProtoPayloadConverter",
        "CanceledFailureInfo",
        "ChildWorkflowFailureInfo",
        "CompositePayloadConverter",
        "DataConverter",
        "DefaultFailureConverter",
        "DefaultFailureConverterWithEncodedAttributes",
        "DefaultPayloadConverter",
        "EncodingPayloadConverter",
        "Failure",
        "FailureConverter",
        "JSONPlainPayloadConverter",
        "JSONProtoPayloadConverter",
        "JSONTypeConverter",
        "JSONTypeConverterUnhandled",
        "Payload",
        "PayloadCodec",
        "PayloadConverter",
        "ServerFailureInfo",
        "TerminatedFailureInfo",
        "TimeoutFailureInfo",
        "default",
        "value_to_type",
    },
    "cadenza.activity": {
        "ActivityCancellationDetails",
        "Info",
        "LoggerAdapter",
        "cancellation_details",
        "client",
        "defn",
        "heartbeat",
        "in_activity",
        "info",
        "is_cancelled",
        "is_worker_shutdown",
        "logger",
        "metric_meter",
        "payload_converter",
        "raise_complete_async",
        "shield_thread_cancel_exception",
        "wait_for_cancelled",
        "wait_for_cancelled_sync",
        "wait_for_worker_shutdown",
        "wait_for_worker_shutdown_sync",
    },
    "cadenza.workflow": {
        "ActivityCancellationType",
        "ActivityConfig",
        "ActivityHandle",
        "ChildWorkflowCancellationType",
        "ChildWorkflowConfig",
        "ChildWorkflowHandle",
        "ContinueAsNewError",
        "ExternalWorkflowHandle",
        "HandlerUnfinishedPolicy",
        "Info",
        "LoggerAdapter",
        "NondeterminismError",
        "ParentClosePolicy",
        "ParentInfo",
        "ReadOnlyContextError",
        "RootInfo",
        "UnfinishedSignalHandlersWarning",
        "UnfinishedUpdateHandlersWarning",
        "UpdateInfo",
        "UpdateMethodMultiParam",
        "VersioningIntent",
        "all_handlers_finished",
        "as_completed",
        "continue_as_new",
        "current_update_info",
        "defn",
        "deprecate_patch",
        "execute_activity",
        "execute_activity_class",
        "execute_activity_method",
        "execute_child_workflow",
        "execute_local_activity",
        "execute_local_activity_class",
        "execute_local_activity_method",
        "get_dynamic_query_handler",
        "get_dynamic_signal_handler",
        "get_dynamic_update_handler",
        "get_external_workflow_handle",
        "get_external_workflow_handle_for",
        "get_last_completion_result",
        "get_last_failure",
        "get_query_handler",
        "get_signal_handler",
        "get_update_handler",
        "has_last_completion_result",
        "in_workflow",
        "info",
        "init",
        "instance",
        "is_failure_exception",
        "logger",
        "memo",
        "memo_value",
        "metric_meter",
        "now",
        "patched",
        "payload_converter",
        "query",
        "random",
        "run",
        "set_dynamic_query_handler",
        "set_dynamic_signal_handler",
        "set_dynamic_update_handler",
        "set_query_handler",
        "set_signal_handler",
        "set_update_handler",
        "signal",
        "sleep",
        "start_activity",
        "start_activity_class",
        "start_activity_method",
        "start_child_workflow",
        "start_local_activity",
        "start_local_activity_class",
        "start_local_activity_method",
        "time",
        "time_ns",
        "unsafe",
        "update",
        "upsert_memo",
        "upsert_search_attributes",
        "uuid4",
        "wait",
        "wait_condition",
    },
}


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_exports_are_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert set(module.__all__) == EXPECTED[module_name]
    assert len(module.__all__) == len(set(module.__all__)), "duplicate names in __all__"
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.{name} is listed but missing"


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_public_names_come_from_private_modules(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        obj = getattr(module, name)
        defined_in = getattr(obj, "__module__", None)
        if isinstance(defined_in, str) and defined_in.startswith("cadenza."):
            assert "._" in defined_in, f"{module_name}.{name} is defined in {defined_in}"


def test_temporal_names_port_by_changing_the_import() -> None:
    # The names a typical temporalio workflow file imports are all here.
    from cadenza import activity, common, exceptions, workflow

    assert exceptions.TemporalError is exceptions.CadenzaError
    assert workflow.NondeterminismError is exceptions.NondeterminismError
    for name in ("defn", "run", "signal", "query", "update", "execute_activity", "sleep"):
        assert callable(getattr(workflow, name))
    assert callable(activity.defn)
    assert common.RetryPolicy().maximum_attempts == 0


def test_testing_exports() -> None:
    import cadenza.testing

    assert cadenza.testing.__all__ == ["WorkflowEnvironment"]
