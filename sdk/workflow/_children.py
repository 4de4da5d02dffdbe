"""Child workflows, external workflows and continue-as-new, from inside a workflow."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, NoReturn, TypedDict, TypeVar, overload

from ..common._enums import WorkflowIDReusePolicy
from ..common._retry import RetryPolicy
from ..common._search_attributes import SearchAttributes, TypedSearchAttributes
from ..common._typing import _arg_or_args, _arg_unset
from ._api import uuid4
from ._context import ContinueAsNewInput, StartChildWorkflowInput, _Runtime
from ._definition import _Definition
from ._enums import ChildWorkflowCancellationType, ParentClosePolicy
from ._exceptions import VersioningIntent
from ._handles import ChildWorkflowHandle, ExternalWorkflowHandle

_R = TypeVar("_R")
_S = TypeVar("_S")


class ChildWorkflowConfig(TypedDict, total=False):
    """Child workflow options as a dict, to share them between calls."""

    id: str | None
    task_queue: str | None
    cancellation_type: ChildWorkflowCancellationType
    parent_close_policy: ParentClosePolicy
    execution_timeout: timedelta | None
    run_timeout: timedelta | None
    task_timeout: timedelta | None
    id_reuse_policy: WorkflowIDReusePolicy
    retry_policy: RetryPolicy | None
    cron_schedule: str
    memo: Mapping[str, Any] | None
    search_attributes: SearchAttributes | TypedSearchAttributes | None
    versioning_intent: VersioningIntent | None
    static_summary: str | None
    static_details: str | None


def _check_timeouts(**timeouts: Any) -> None:
    for name, value in timeouts.items():
        if value is not None and not isinstance(value, timedelta):
            raise TypeError(f"{name} must be a timedelta, got {type(value).__name__} {value!r}")


@overload
async def start_child_workflow(
    workflow: Callable[..., Awaitable[_R]],
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    id: str | None = None,
    task_queue: str | None = None,
    result_type: type | None = None,
    cancellation_type: ChildWorkflowCancellationType = (
        ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED
    ),
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
    execution_timeout: timedelta | None = None,
    run_timeout: timedelta | None = None,
    task_timeout: timedelta | None = None,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    retry_policy: RetryPolicy | None = None,
    cron_schedule: str = "",
    memo: Mapping[str, Any] | None = None,
    search_attributes: SearchAttributes | TypedSearchAttributes | None = None,
    versioning_intent: VersioningIntent | None = None,
    static_summary: str | None = None,
    static_details: str | None = None,
) -> ChildWorkflowHandle[Any, _R]: ...


@overload
async def start_child_workflow(
    workflow: str,
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    id: str | None = None,
    task_queue: str | None = None,
    result_type: type | None = None,
    cancellation_type: ChildWorkflowCancellationType = (
        ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED
    ),
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
    execution_timeout: timedelta | None = None,
    run_timeout: timedelta | None = None,
    task_timeout: timedelta | None = None,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    retry_policy: RetryPolicy | None = None,
    cron_schedule: str = "",
    memo: Mapping[str, Any] | None = None,
    search_attributes: SearchAttributes | TypedSearchAttributes | None = None,
    versioning_intent: VersioningIntent | None = None,
    static_summary: str | None = None,
    static_details: str | None = None,
) -> ChildWorkflowHandle[Any, Any]: ...


async def start_child_workflow(
    workflow: Any,
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    id: str | None = None,
    task_queue: str | None = None,
    result_type: type | None = None,
    cancellation_type: ChildWorkflowCancellationType = (
        ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED
    ),
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
    execution_timeout: timedelta | None = None,
    run_timeout: timedelta | None = None,
    task_timeout: timedelta | None = None,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    retry_policy: RetryPolicy | None = None,
    cron_schedule: str = "",
    memo: Mapping[str, Any] | None = None,
    search_attributes: SearchAttributes | TypedSearchAttributes | None = None,
    versioning_intent: VersioningIntent | None = None,
    static_summary: str | None = None,
    static_details: str | None = None,
) -> ChildWorkflowHandle[Any, Any]:
    """Start a child workflow; returns once it has started.

    Args:
        workflow: The child's ``@workflow.run`` method or its type name.
        arg: The single argument.
        args: Several arguments (instead of ``arg``).
        id: Child workflow id. Defaults to :func:`uuid4` (deterministic).
        task_queue: Task queue. Defaults to the parent's.
        result_type: Type to convert the result to (for workflows by name).
        cancellation_type: What cancelling the handle waits for.
        parent_close_policy: What happens to the child when the parent closes.
        execution_timeout: Limit for the child's whole execution.
        run_timeout: Limit for one run of the child.
        task_timeout: Limit for one workflow task of the child.
        id_reuse_policy: Whether a closed workflow's id may be reused.
        retry_policy: How the child is retried on failure (default: not retried).
        cron_schedule: Run the child on this cron schedule.
        memo: Memo of the child (unindexed values).
        search_attributes: Search attributes of the child.
        versioning_intent: Accepted for Temporal compatibility; ignored.
        static_summary: One-line summary shown in the UI.
        static_details: Longer details shown in the UI.

    Returns:
        The child's handle; await it for the result.

    Raises:
        cadenza.exceptions.WorkflowAlreadyStartedError: The id is in use.
    """
    del versioning_intent  # Cadenza has no worker versioning.
    name, defined_result_type = _Definition.get_name_and_result_type(workflow)
    _check_timeouts(
        execution_timeout=execution_timeout, run_timeout=run_timeout, task_timeout=task_timeout
    )
    runtime = _Runtime.current()
    return await runtime.workflow_start_child_workflow(
        StartChildWorkflowInput(
            workflow=name,
            args=list(_arg_or_args(arg, args)),
            id=id or str(uuid4()),
            task_queue=task_queue,
            result_type=result_type if result_type is not None else defined_result_type,
            cancellation_type=ChildWorkflowCancellationType(cancellation_type),
            parent_close_policy=ParentClosePolicy(parent_close_policy),
            execution_timeout=execution_timeout,
            run_timeout=run_timeout,
            task_timeout=task_timeout,
            id_reuse_policy=WorkflowIDReusePolicy(id_reuse_policy),
            retry_policy=retry_policy,
            cron_schedule=cron_schedule,
            memo=memo,
            search_attributes=search_attributes,
            static_summary=static_summary,
            static_details=static_details,
        )
    )


@overload
async def execute_child_workflow(
    workflow: Callable[..., Awaitable[_R]],
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    id: str | None = None,
    task_queue: str | None = None,
    result_type: type | None = None,
    cancellation_type: ChildWorkflowCancellationType = (
        ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED
    ),
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
    execution_timeout: timedelta | None = None,
    run_timeout: timedelta | None = None,
    task_timeout: timedelta | None = None,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    retry_policy: RetryPolicy | None = None,
    cron_schedule: str = "",
    memo: Mapping[str, Any] | None = None,
    search_attributes: SearchAttributes | TypedSearchAttributes | None = None,
    versioning_intent: VersioningIntent | None = None,
    static_summary: str | None = None,
    static_details: str | None = None,
) -> _R: ...


@overload
async def execute_child_workflow(
    workflow: str,
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    id: str | None = None,
    task_queue: str | None = None,
    result_type: type | None = None,
    cancellation_type: ChildWorkflowCancellationType = (
        ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED
    ),
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
    execution_timeout: timedelta | None = None,
    run_timeout: timedelta | None = None,
    task_timeout: timedelta | None = None,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    retry_policy: RetryPolicy | None = None,
    cron_schedule: str = "",
    memo: Mapping[str, Any] | None = None,
    search_attributes: SearchAttributes | TypedSearchAttributes | None = None,
    versioning_intent: VersioningIntent | None = None,
    static_summary: str | None = None,
    static_details: str | None = None,
) -> Any: ...


async def execute_child_workflow(
    workflow: Any,
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    id: str | None = None,
    task_queue: str | None = None,
    result_type: type | None = None,
    cancellation_type: ChildWorkflowCancellationType = (
        ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED
    ),
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
    execution_timeout: timedelta | None = None,
    run_timeout: timedelta | None = None,
    task_timeout: timedelta | None = None,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    retry_policy: RetryPolicy | None = None,
    cron_schedule: str = "",
    memo: Mapping[str, Any] | None = None,
    search_attributes: SearchAttributes | TypedSearchAttributes | None = None,
    versioning_intent: VersioningIntent | None = None,
    static_summary: str | None = None,
    static_details: str | None = None,
) -> Any:
    """Run a child workflow and return its result: ``await (await start_child_workflow(...))``.

    See :func:`start_child_workflow` for the options.

    Raises:
        cadenza.exceptions.ChildWorkflowError: The child failed; its ``cause``
            says why.
    """
    handle = await start_child_workflow(
        workflow,
        arg,
        args=args,
        id=id,
        task_queue=task_queue,
        result_type=result_type,
        cancellation_type=cancellation_type,
        parent_close_policy=parent_close_policy,
        execution_timeout=execution_timeout,
        run_timeout=run_timeout,
        task_timeout=task_timeout,
        id_reuse_policy=id_reuse_policy,
        retry_policy=retry_policy,
        cron_schedule=cron_schedule,
        memo=memo,
        search_attributes=search_attributes,
        versioning_intent=versioning_intent,
        static_summary=static_summary,
        static_details=static_details,
    )
    return await handle


def get_external_workflow_handle(
    workflow_id: str, *, run_id: str | None = None
) -> ExternalWorkflowHandle[Any]:
    """A handle to signal or cancel another workflow by id.

    Args:
        workflow_id: The workflow's id.
        run_id: A specific run, or ``None`` for the latest.
    """
    return _Runtime.current().workflow_get_external_workflow_handle(workflow_id, run_id=run_id)


def get_external_workflow_handle_for(
    workflow: Callable[..., Awaitable[Any]],
    workflow_id: str,
    *,
    run_id: str | None = None,
) -> ExternalWorkflowHandle[Any]:
    """:func:`get_external_workflow_handle`, typed by the workflow's run method (not checked)."""
    del workflow
    return get_external_workflow_handle(workflow_id, run_id=run_id)


class ContinueAsNewError(BaseException):
    """Raised by :func:`continue_as_new`; do not catch it.

    It derives from ``BaseException`` so ``except Exception`` in workflow code
    does not swallow it. The runtime raises a subclass carrying the options;
    it cannot be created directly.
    """

    def __init__(self, *args: object) -> None:
        """Not for direct use: call :func:`continue_as_new`."""
        if type(self) is ContinueAsNewError:
            raise RuntimeError("Use workflow.continue_as_new() instead of ContinueAsNewError()")
        super().__init__(*args)


def continue_as_new(
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    workflow: Callable[..., Any] | str | None = None,
    task_queue: str | None = None,
    run_timeout: timedelta | None = None,
    task_timeout: timedelta | None = None,
    backoff_start_interval: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    memo: Mapping[str, Any] | None = None,
    search_attributes: SearchAttributes | TypedSearchAttributes | None = None,
    versioning_intent: VersioningIntent | None = None,
) -> NoReturn:
    """End this run and start a new run of the workflow with a fresh history.

    Use it to keep histories short in long-running workflows. Unset options
    keep the current run's values. Wait for handlers to finish first
    (:func:`all_handlers_finished`).

    Args:
        arg: The single argument of the new run.
        args: Several arguments (instead of ``arg``).
        workflow: Run method or type name to continue as. Defaults to this one.
        task_queue: Task queue of the new run.
        run_timeout: Run timeout of the new run.
        task_timeout: Workflow task timeout of the new run.
        backoff_start_interval: Delay before the new run starts.
        retry_policy: Retry policy of the new run.
        memo: Memo of the new run.
        search_attributes: Search attributes of the new run.
        versioning_intent: Accepted for Temporal compatibility; ignored.

    Raises:
        ContinueAsNewError: Always; let it propagate.
    """
    del versioning_intent  # Cadenza has no worker versioning.
    name = None if workflow is None else _Definition.get_name_and_result_type(workflow)[0]
    _check_timeouts(
        run_timeout=run_timeout,
        task_timeout=task_timeout,
        backoff_start_interval=backoff_start_interval,
    )
    _Runtime.current().workflow_continue_as_new(
        ContinueAsNewInput(
            workflow=name,
            args=list(_arg_or_args(arg, args)),
            task_queue=task_queue,
            run_timeout=run_timeout,
            task_timeout=task_timeout,
            backoff_start_interval=backoff_start_interval,
            retry_policy=retry_policy,
            memo=memo,
            search_attributes=search_attributes,
        )
    )
