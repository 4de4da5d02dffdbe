"""Defining workflows, and the API available inside them.

The same names as ``temporalio.workflow``::

    from datetime import timedelta
    from cadenza import workflow

    with workflow.unsafe.imports_passed_through():
        from myapp.activities import charge

    @workflow.defn
    class OrderWorkflow:
        @workflow.run
        async def run(self, order_id: str) -> str:
            return await workflow.execute_activity(
                charge, order_id, start_to_close_timeout=timedelta(seconds=30)
            )

Decorators check the class at import time. The functions that act on the
running workflow raise ``RuntimeError("Not in workflow event loop")`` outside
one; they delegate to the workflow runtime through
``cadenza.workflow._context._Runtime``.
"""

from ..exceptions import NondeterminismError
from ._activities import (
    ActivityConfig,
    execute_activity,
    execute_activity_class,
    execute_activity_method,
    execute_local_activity,
    execute_local_activity_class,
    execute_local_activity_method,
    start_activity,
    start_activity_class,
    start_activity_method,
    start_local_activity,
    start_local_activity_class,
    start_local_activity_method,
)
from ._api import (
    all_handlers_finished,
    deprecate_patch,
    get_dynamic_query_handler,
    get_dynamic_signal_handler,
    get_dynamic_update_handler,
    get_last_completion_result,
    get_last_failure,
    get_query_handler,
    get_signal_handler,
    get_update_handler,
    has_last_completion_result,
    in_workflow,
    info,
    instance,
    is_failure_exception,
    memo,
    memo_value,
    metric_meter,
    now,
    patched,
    payload_converter,
    random,
    set_dynamic_query_handler,
    set_dynamic_signal_handler,
    set_dynamic_update_handler,
    set_query_handler,
    set_signal_handler,
    set_update_handler,
    sleep,
    time,
    time_ns,
    upsert_memo,
    upsert_search_attributes,
    uuid4,
    wait_condition,
)
from ._asyncio import as_completed, wait
from ._children import (
    ChildWorkflowConfig,
    ContinueAsNewError,
    continue_as_new,
    execute_child_workflow,
    get_external_workflow_handle,
    get_external_workflow_handle_for,
    start_child_workflow,
)
from ._definition import defn, init, run
from ._enums import ActivityCancellationType, ChildWorkflowCancellationType, ParentClosePolicy
from ._exceptions import ReadOnlyContextError, VersioningIntent
from ._handlers import (
    HandlerUnfinishedPolicy,
    UnfinishedSignalHandlersWarning,
    UnfinishedUpdateHandlersWarning,
    UpdateMethodMultiParam,
    query,
    signal,
    update,
)
from ._handles import ActivityHandle, ChildWorkflowHandle, ExternalWorkflowHandle
from ._info import Info, ParentInfo, RootInfo, UpdateInfo, current_update_info
from ._logging import LoggerAdapter, logger, unsafe

__all__ = [
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
]
