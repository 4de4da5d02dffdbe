"""``Client``: start workflows and get handles to them, over Kafka."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Concatenate, ParamSpec, overload

from .._settings import Settings
from .._transport import Transport
from ..common._enums import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from ..common._retry import RetryPolicy
from ..common._search_attributes import SearchAttributes, TypedSearchAttributes
from ..common._types import ReturnType, SelfType
from ..common._typing import _arg_or_args, _arg_unset
from ..converter import DataConverter
from ..runtime import Runtime
from ..topics import validate_task_queue
from ..workflow._definition import _Definition
from ..workflow._handlers import _SignalDefinition
from ._async_activity import AsyncActivityHandle, AsyncActivityIDReference
from ._handle import WorkflowHandle
from ._interceptor import (
    CountWorkflowsInput,
    Interceptor,
    ListWorkflowsInput,
    OutboundInterceptor,
    StartWorkflowInput,
    outbound_chain,
)
from ._list import WorkflowExecutionAsyncIterator, WorkflowExecutionCount
from ._wire import expect, new_id, start_workflow_body

_P = ParamSpec("_P")

DEFAULT_RPC_TIMEOUT = timedelta(seconds=10)
"""How long a client call waits for the engine's answer unless told otherwise."""


class Client:
    """A Cadenza client: starts workflows and talks to them through Kafka.

    Connect with :meth:`connect`; close with :meth:`close` (or ``async with``).
    One client holds one :class:`~cadenza._transport.Transport` (a producer and a
    reader of its own replies partition), which a ``Worker`` built on the client
    shares.

    Example::

        client = await Client.connect("localhost:9092", namespace="orders")
        handle = await client.start_workflow(
            OrderWorkflow.run, "order-42", id="order-42", task_queue="orders"
        )
        print(await handle.result())
    """

    def __init__(
        self,
        transport: Transport,
        *,
        data_converter: DataConverter = DataConverter.default,
        rpc_timeout: timedelta = DEFAULT_RPC_TIMEOUT,
        owns_transport: bool = True,
        runtime: Runtime | None = None,
        interceptors: Sequence[Interceptor] = (),
    ) -> None:
        """Create a client over a connected transport (prefer :meth:`connect`).

        Args:
            transport: The transport to send and receive through.
            data_converter: Converts arguments, results and failures.
            rpc_timeout: Default wait for the engine's answer to a call (not for
                :meth:`WorkflowHandle.result` or updates, which wait as long as
                the workflow takes).
            owns_transport: Whether :meth:`close` closes the transport.
            runtime: Where workers built on this client send their metrics
                (default: :meth:`Runtime.default`, as it is now).
            interceptors: Client interceptors, outermost first (see
                :class:`Interceptor`); those that are also worker interceptors
                are used by the workers built on this client too.
        """
        if rpc_timeout <= timedelta(0):
            raise ValueError(f"rpc_timeout must be positive, not {rpc_timeout}")
        self._runtime = runtime if runtime is not None else Runtime.default()
        self._transport = transport
        self._data_converter = data_converter
        self._rpc_timeout = rpc_timeout
        self._owns_transport = owns_transport
        self._interceptors = list(interceptors)
        self._outbound: OutboundInterceptor = outbound_chain(self, self._interceptors)
        """Every call goes through it: the interceptors, then the client's own code."""

    @classmethod
    async def connect(
        cls,
        bootstrap_servers: str | None = None,
        *,
        namespace: str | None = None,
        data_converter: DataConverter = DataConverter.default,
        identity: str | None = None,
        settings: Settings | None = None,
        rpc_timeout: timedelta = DEFAULT_RPC_TIMEOUT,
        connect_timeout: timedelta = timedelta(seconds=10),
        runtime: Runtime | None = None,
        interceptors: Sequence[Interceptor] = (),
    ) -> Client:
        """Connect to Kafka and the namespace's topics.

        Settings come from ``settings`` (default: :meth:`Settings.from_env`, the
        ``CADENZA_*`` environment), with ``bootstrap_servers`` and ``namespace``
        overriding theirs when given.

        Args:
            bootstrap_servers: Kafka bootstrap servers (default: the setting, else
                the local broker of ``cadenza kafka start``).
            namespace: Topic namespace (default: the setting, else ``cadenza``).
            data_converter: Converts arguments, results and failures.
            identity: Recorded in every command (default ``<pid>@<host>``).
            settings: Base settings instead of the environment.
            rpc_timeout: Default wait for the engine's answer to a call.
            connect_timeout: How long to wait for the cluster to answer.
            runtime: Where workers built on this client send their metrics
                (default: :meth:`Runtime.default`, as it is now: no metrics
                unless set with :meth:`Runtime.set_default`).
            interceptors: Client interceptors, outermost first (see
                :class:`Interceptor`); those that are also worker interceptors
                are used by the workers built on this client too.

        Raises:
            TransportError: Kafka cannot be reached, or the namespace's topics do
                not exist (run ``cadenza topics create --namespace <ns>``).
        """
        if settings is None:
            settings = Settings.from_env(bootstrap_servers=bootstrap_servers, namespace=namespace)
        else:
            overrides: dict[str, Any] = {}
            if bootstrap_servers is not None:
                overrides["bootstrap_servers"] = bootstrap_servers
            if namespace is not None:
                overrides["namespace"] = namespace
            if overrides:
                settings = dataclasses.replace(settings, **overrides)
        transport = await Transport.connect(
            settings, identity=identity, timeout=connect_timeout.total_seconds()
        )
        return cls(
            transport,
            data_converter=data_converter,
            rpc_timeout=rpc_timeout,
            runtime=runtime,
            interceptors=interceptors,
        )

    # -- properties --------------------------------------------------------------------

    @property
    def interceptors(self) -> Sequence[Interceptor]:
        """The client's interceptors."""
        return tuple(self._interceptors)

    @property
    def transport(self) -> Transport:
        """The Kafka transport (producer and replies reader) of this client."""
        return self._transport

    @property
    def settings(self) -> Settings:
        """The settings the client connected with."""
        return self._transport.settings

    @property
    def namespace(self) -> str:
        """The topic namespace."""
        return self._transport.settings.namespace

    @property
    def identity(self) -> str:
        """Identity recorded in every command."""
        return self._transport.identity

    @property
    def data_converter(self) -> DataConverter:
        """Converter of arguments, results and failures."""
        return self._data_converter

    @property
    def rpc_timeout(self) -> timedelta:
        """Default wait for the engine's answer to a call."""
        return self._rpc_timeout

    @property
    def runtime(self) -> Runtime:
        """Where workers built on this client send their metrics."""
        return self._runtime

    # -- lifecycle ---------------------------------------------------------------------

    async def close(self) -> None:
        """Close the transport (when this client owns it). Calling it twice is harmless."""
        if self._owns_transport:
            await self._transport.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- the wire ----------------------------------------------------------------------

    async def _request(
        self,
        workflow_id: str,
        body: tuple[str, dict[str, Any]],
        *,
        run_id: str | None,
        timeout: float | None,
    ) -> dict[str, Any] | None:
        """Send a command that wants a reply and return the reply (``timeout`` in seconds)."""
        return await self._transport.send_command(
            workflow_id, body, run_id=run_id, want_reply=True, timeout=timeout
        )

    # -- starting ----------------------------------------------------------------------

    @overload
    async def start_workflow(
        self,
        workflow: Callable[Concatenate[SelfType, _P], Awaitable[ReturnType]],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        id: str,
        task_queue: str,
        result_type: type | None = None,
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.UNSPECIFIED,
        retry_policy: RetryPolicy | None = None,
        cron_schedule: str = "",
        memo: Mapping[str, Any] | None = None,
        search_attributes: SearchAttributes | TypedSearchAttributes | None = None,
        start_delay: timedelta | None = None,
        start_signal: str | Callable[..., Any] | None = None,
        start_signal_args: Sequence[Any] = (),
        request_eager_start: bool = False,
        rpc_timeout: timedelta | None = None,
    ) -> WorkflowHandle[SelfType, ReturnType]: ...

    @overload
    async def start_workflow(
        self,
        workflow: str,
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        id: str,
        task_queue: str,
        result_type: type | None = None,
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.UNSPECIFIED,
        retry_policy: RetryPolicy | None = None,
        cron_schedule: str = "",
        memo: Mapping[str, Any] | None = None,
        search_attributes: SearchAttributes | TypedSearchAttributes | None = None,
        start_delay: timedelta | None = None,
        start_signal: str | Callable[..., Any] | None = None,
        start_signal_args: Sequence[Any] = (),
        request_eager_start: bool = False,
        rpc_timeout: timedelta | None = None,
    ) -> WorkflowHandle[Any, Any]: ...

    async def start_workflow(
        self,
        workflow: str | Callable[..., Awaitable[Any]],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        id: str,
        task_queue: str,
        result_type: type | None = None,
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.UNSPECIFIED,
        retry_policy: RetryPolicy | None = None,
        cron_schedule: str = "",
        memo: Mapping[str, Any] | None = None,
        search_attributes: SearchAttributes | TypedSearchAttributes | None = None,
        start_delay: timedelta | None = None,
        start_signal: str | Callable[..., Any] | None = None,
        start_signal_args: Sequence[Any] = (),
        request_eager_start: bool = False,
        rpc_timeout: timedelta | None = None,
    ) -> WorkflowHandle[Any, Any]:
        """Start a workflow and return its handle once the engine has started the run.

        Args:
            workflow: The ``@workflow.run`` method of a ``@workflow.defn`` class, or
                a workflow type name.
            arg: The single argument (or use ``args``).
            args: The arguments.
            id: Workflow id (unique among running workflows).
            task_queue: Task queue whose workers run the workflow.
            result_type: Type the result is converted to (default: the run
                method's return type hint).
            execution_timeout: Limit on the whole execution, all runs included.
            run_timeout: Limit on one run.
            task_timeout: Limit on one workflow task (engine default 10 s).
            id_reuse_policy: Whether the id of a closed workflow may be reused.
            id_conflict_policy: What to do when a workflow of this id is running.
            retry_policy: Retry the workflow on failure (default: never).
            cron_schedule: Run on this cron schedule.
            memo: Unindexed values attached to the workflow.
            search_attributes: Indexed values attached to the workflow.
            start_delay: Wait this long before the first workflow task.
            start_signal: Signal (name or ``@workflow.signal`` method) to deliver
                with the start: signal-with-start.
            start_signal_args: Arguments of ``start_signal``.
            request_eager_start: Eager workflow start: when a worker of ``task_queue``
                runs on this client's transport with a free workflow task slot, the
                engine hands the first workflow task back with the start's reply and
                that worker runs it at once, instead of through the task queue's
                topic. Without such a worker the start is an ordinary one.
            rpc_timeout: Wait this long for the engine (default: the client's).

        Raises:
            WorkflowAlreadyStartedError: A workflow of this id is running (or the
                reuse policy forbids the id).
            CadenzaServiceError: The engine rejected the start for another reason.
            RPCTimeoutOrCancelledError: No answer in time (is the engine running?).
            TopicNameError: ``task_queue`` cannot name a topic.
        """
        return await self._start_workflow(
            workflow,
            arg,
            args=args,
            id=id,
            task_queue=task_queue,
            result_type=result_type,
            execution_timeout=execution_timeout,
            run_timeout=run_timeout,
            task_timeout=task_timeout,
            id_reuse_policy=id_reuse_policy,
            id_conflict_policy=id_conflict_policy,
            retry_policy=retry_policy,
            cron_schedule=cron_schedule,
            memo=memo,
            search_attributes=search_attributes,
            start_delay=start_delay,
            start_signal=start_signal,
            start_signal_args=start_signal_args,
            rpc_timeout=rpc_timeout,
            result_reply_to=None,
            request_eager_start=request_eager_start,
        )

    async def _start_workflow(
        self,
        workflow: str | Callable[..., Awaitable[Any]],
        arg: Any,
        *,
        args: Sequence[Any],
        id: str,
        task_queue: str,
        result_type: type | None,
        execution_timeout: timedelta | None,
        run_timeout: timedelta | None,
        task_timeout: timedelta | None,
        id_reuse_policy: WorkflowIDReusePolicy,
        id_conflict_policy: WorkflowIDConflictPolicy,
        retry_policy: RetryPolicy | None,
        cron_schedule: str,
        memo: Mapping[str, Any] | None,
        search_attributes: SearchAttributes | TypedSearchAttributes | None,
        start_delay: timedelta | None,
        start_signal: str | Callable[..., Any] | None,
        start_signal_args: Sequence[Any],
        rpc_timeout: timedelta | None,
        result_reply_to: dict[str, Any] | None,
        request_eager_start: bool,
    ) -> WorkflowHandle[Any, Any]:
        """:meth:`start_workflow`; with ``result_reply_to`` the start also asks the
        engine to send the run's result there (``StartWorkflow.result_reply_to``)."""
        workflow_type, hinted = _Definition.get_name_and_result_type(workflow)
        signal_name = None
        if start_signal is not None:
            signal_name = _SignalDefinition.must_name_from_fn_or_str(start_signal)
        start = StartWorkflowInput(
            workflow=workflow_type,
            args=_arg_or_args(arg, args),
            id=id,
            task_queue=task_queue,
            execution_timeout=execution_timeout,
            run_timeout=run_timeout,
            task_timeout=task_timeout,
            id_reuse_policy=id_reuse_policy,
            id_conflict_policy=id_conflict_policy,
            retry_policy=retry_policy,
            cron_schedule=cron_schedule,
            memo=memo,
            search_attributes=search_attributes,
            start_delay=start_delay,
            headers={},
            start_signal=signal_name,
            start_signal_args=start_signal_args,
            ret_type=result_type or hinted,
            rpc_timeout=rpc_timeout,
            request_eager_start=request_eager_start,
            result_reply_to=result_reply_to,
        )
        return await self._outbound.start_workflow(start)

    async def _start_workflow_now(self, start: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        """The start itself (the interceptors' innermost link)."""
        if not start.id:
            raise ValueError("Workflow id cannot be empty")
        validate_task_queue(start.task_queue)
        id, task_queue, rpc_timeout = start.id, start.task_queue, start.rpc_timeout
        workflow_type, signal_name = start.workflow, start.start_signal
        body = await start_workflow_body(
            self._data_converter,
            workflow_type=workflow_type,
            args=start.args,
            task_queue=task_queue,
            request_id=new_id(),
            execution_timeout=start.execution_timeout,
            run_timeout=start.run_timeout,
            task_timeout=start.task_timeout,
            id_reuse_policy=start.id_reuse_policy,
            id_conflict_policy=start.id_conflict_policy,
            retry_policy=start.retry_policy,
            cron_schedule=start.cron_schedule,
            memo=start.memo,
            search_attributes=start.search_attributes,
            start_delay=start.start_delay,
            start_signal=signal_name,
            start_signal_args=start.start_signal_args,
            header=start.headers,
        )
        if start.result_reply_to is not None:
            body = (body[0], {**body[1], "result_reply_to": start.result_reply_to})
        # Eager start: only with a worker of the queue in this process and a slot on it.
        eager = (
            self._transport.eager_starts.reserve(task_queue) if start.request_eager_start else None
        )
        if eager is not None:
            body = (body[0], {**body[1], "request_eager_execution": True})
        try:
            reply = await self._request(
                id, body, run_id=None, timeout=(rpc_timeout or self._rpc_timeout).total_seconds()
            )
            started = expect(reply, "WorkflowStarted", workflow_type=workflow_type)
        except BaseException:
            if eager is not None:
                eager.release_eager()
            raise
        if eager is not None:
            task = started.get("eager_workflow_task")
            if task is None:
                eager.release_eager()
            else:
                eager.run_eager(task)
        run_id = str(started["run_id"])
        return WorkflowHandle(
            self,
            id,
            result_run_id=run_id,
            # A signal-with-start may have reached a run that was already going.
            first_execution_run_id=None if signal_name is not None else run_id,
            result_type=start.ret_type,
        )

    @overload
    async def execute_workflow(
        self,
        workflow: Callable[Concatenate[SelfType, _P], Awaitable[ReturnType]],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        id: str,
        task_queue: str,
        result_type: type | None = None,
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.UNSPECIFIED,
        retry_policy: RetryPolicy | None = None,
        cron_schedule: str = "",
        memo: Mapping[str, Any] | None = None,
        search_attributes: SearchAttributes | TypedSearchAttributes | None = None,
        start_delay: timedelta | None = None,
        start_signal: str | Callable[..., Any] | None = None,
        start_signal_args: Sequence[Any] = (),
        request_eager_start: bool = False,
        rpc_timeout: timedelta | None = None,
    ) -> ReturnType: ...

    @overload
    async def execute_workflow(
        self,
        workflow: str,
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        id: str,
        task_queue: str,
        result_type: type | None = None,
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.UNSPECIFIED,
        retry_policy: RetryPolicy | None = None,
        cron_schedule: str = "",
        memo: Mapping[str, Any] | None = None,
        search_attributes: SearchAttributes | TypedSearchAttributes | None = None,
        start_delay: timedelta | None = None,
        start_signal: str | Callable[..., Any] | None = None,
        start_signal_args: Sequence[Any] = (),
        request_eager_start: bool = False,
        rpc_timeout: timedelta | None = None,
    ) -> Any: ...

    async def execute_workflow(
        self,
        workflow: str | Callable[..., Awaitable[Any]],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        id: str,
        task_queue: str,
        result_type: type | None = None,
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.UNSPECIFIED,
        retry_policy: RetryPolicy | None = None,
        cron_schedule: str = "",
        memo: Mapping[str, Any] | None = None,
        search_attributes: SearchAttributes | TypedSearchAttributes | None = None,
        start_delay: timedelta | None = None,
        start_signal: str | Callable[..., Any] | None = None,
        start_signal_args: Sequence[Any] = (),
        request_eager_start: bool = False,
        rpc_timeout: timedelta | None = None,
    ) -> Any:
        """Start a workflow and wait for its result: :meth:`start_workflow`, then
        :meth:`WorkflowHandle.result` (which waits without a time limit).

        Raises:
            WorkflowFailureError: The workflow did not complete; ``cause`` says why.
            WorkflowAlreadyStartedError: As :meth:`start_workflow`.
        """
        # One command for both: the start asks for the result too (the engine
        # registers the wait with the start, as GetWorkflowResult would).
        result_reply_to, result = self._transport.new_reply_to()
        try:
            handle: WorkflowHandle[Any, Any] = await self._start_workflow(
                workflow,
                arg,
                args=args,
                id=id,
                task_queue=task_queue,
                result_type=result_type,
                execution_timeout=execution_timeout,
                run_timeout=run_timeout,
                task_timeout=task_timeout,
                id_reuse_policy=id_reuse_policy,
                id_conflict_policy=id_conflict_policy,
                retry_policy=retry_policy,
                cron_schedule=cron_schedule,
                memo=memo,
                search_attributes=search_attributes,
                start_delay=start_delay,
                start_signal=start_signal,
                start_signal_args=start_signal_args,
                rpc_timeout=rpc_timeout,
                result_reply_to=result_reply_to,
                request_eager_start=request_eager_start,
            )
            return await handle._result(first_reply=result)
        finally:
            result.cancel()  # a rejected start is never answered; stop waiting

    # -- handles -----------------------------------------------------------------------

    def get_workflow_handle(
        self,
        workflow_id: str,
        *,
        run_id: str | None = None,
        first_execution_run_id: str | None = None,
        result_type: type | None = None,
    ) -> WorkflowHandle[Any, Any]:
        """A handle to an existing workflow (nothing is sent until it is used).

        Args:
            workflow_id: Workflow id.
            run_id: Run to target; ``None`` targets the latest run.
            first_execution_run_id: First run of the chain (see
                :attr:`WorkflowHandle.first_execution_run_id`).
            result_type: Type the result is converted to.
        """
        return WorkflowHandle(
            self,
            workflow_id,
            run_id=run_id,
            result_run_id=run_id,
            first_execution_run_id=first_execution_run_id,
            result_type=result_type,
        )

    def get_async_activity_handle(
        self,
        *,
        workflow_id: str | None = None,
        run_id: str | None = None,
        activity_id: str | None = None,
        task_token: bytes | None = None,
    ) -> AsyncActivityHandle:
        """A handle to complete, fail, cancel or heartbeat an activity from outside its
        worker, after the activity called ``activity.raise_complete_async()``.

        Name it by ``task_token`` (``activity.info().task_token``: that attempt) or
        by ``workflow_id`` and ``activity_id`` (and ``run_id``, default the latest
        run: the attempt current when the command arrives).

        Raises:
            ValueError: Neither (or both) ways of naming it given, or a token that
                is not a Cadenza task token.
        """
        if task_token is not None:
            if workflow_id is not None or run_id is not None or activity_id is not None:
                raise ValueError("Give task_token, or workflow_id and activity_id, not both")
            return AsyncActivityHandle(self, task_token)
        if workflow_id is None or activity_id is None:
            raise ValueError("Give task_token, or workflow_id and activity_id")
        return AsyncActivityHandle(self, AsyncActivityIDReference(workflow_id, run_id, activity_id))

    def get_workflow_handle_for(
        self,
        workflow: Callable[Concatenate[SelfType, _P], Awaitable[ReturnType]],
        workflow_id: str,
        *,
        run_id: str | None = None,
        first_execution_run_id: str | None = None,
    ) -> WorkflowHandle[SelfType, ReturnType]:
        """A typed handle to an existing workflow, its result type from the run method."""
        _, result_type = _Definition.get_name_and_result_type(workflow)
        return WorkflowHandle(
            self,
            workflow_id,
            run_id=run_id,
            result_run_id=run_id,
            first_execution_run_id=first_execution_run_id,
            result_type=result_type,
        )

    # -- visibility --------------------------------------------------------------------

    def list_workflows(
        self,
        query: str | None = None,
        *,
        limit: int | None = None,
        page_size: int = 1000,
        next_page_token: bytes | None = None,
        rpc_timeout: timedelta | None = None,
    ) -> WorkflowExecutionAsyncIterator:
        """The workflow runs a visibility query matches, fetched a page at a time.

        The query is Temporal's list filter over ``WorkflowId``, ``RunId``,
        ``WorkflowType``, ``TaskQueue``, ``ExecutionStatus``, ``StartTime``,
        ``CloseTime``, ``ExecutionTime`` and search attributes by name, with ``=``,
        ``!=``, ``>``, ``>=``, ``<``, ``<=``, ``IN``, ``BETWEEN``, ``STARTS_WITH``,
        ``IS NULL``, ``AND``/``OR``/``NOT`` and ``ORDER BY StartTime|CloseTime|
        ExecutionTime [ASC|DESC]`` (default ``StartTime DESC``). Visibility is
        eventually consistent: a run shows up shortly after its events are written.

        Example::

            async for execution in client.list_workflows(
                "WorkflowType = 'OrderWorkflow' AND ExecutionStatus = 'Running'"
            ):
                print(execution.id, execution.start_time)

        Args:
            query: The filter; ``None`` lists every run.
            limit: Stop after this many runs.
            page_size: Runs per request.
            next_page_token: Resume after the page this token came from.
            rpc_timeout: Wait this long for each page (default: the client's).

        Raises:
            CadenzaServiceError: (while iterating) ``INVALID_ARGUMENT`` with the reason
                for a query that does not parse.
            RPCTimeoutOrCancelledError: (while iterating) no answer in time: the
                visibility processor is not running.
        """
        listing = ListWorkflowsInput(
            query=query,
            page_size=page_size,
            next_page_token=next_page_token,
            rpc_timeout=rpc_timeout,
            limit=limit,
        )
        return self._outbound.list_workflows(listing)

    def _list_workflows_now(self, listing: ListWorkflowsInput) -> WorkflowExecutionAsyncIterator:
        """The listing itself (the interceptors' innermost link)."""
        timeout = (listing.rpc_timeout or self._rpc_timeout).total_seconds()
        text = listing.query or ""

        async def fetch(size: int, token: bytes) -> tuple[list[dict[str, Any]], bytes]:
            body = (
                "cadenza.visibility.ListWorkflowsRequest",
                {"query": text, "page_size": size, "next_page_token": token},
            )
            reply = await self._transport.send_visibility_request(body, timeout=timeout)
            result = expect(reply, "ListWorkflowsResult")
            return list(result["executions"]), bytes(result["next_page_token"])

        return WorkflowExecutionAsyncIterator(
            fetch,
            self._data_converter,
            page_size=listing.page_size,
            next_page_token=listing.next_page_token,
            limit=listing.limit,
        )

    async def count_workflows(
        self, query: str | None = None, *, rpc_timeout: timedelta | None = None
    ) -> WorkflowExecutionCount:
        """How many workflow runs a visibility query matches (see :meth:`list_workflows`).

        Raises:
            CadenzaServiceError: ``INVALID_ARGUMENT`` with the reason for a query that
                does not parse.
            RPCTimeoutOrCancelledError: No answer in time: the visibility processor is
                not running.
        """
        counting = CountWorkflowsInput(query=query, rpc_timeout=rpc_timeout)
        return await self._outbound.count_workflows(counting)

    async def _count_workflows_now(self, counting: CountWorkflowsInput) -> WorkflowExecutionCount:
        """The count itself (the interceptors' innermost link)."""
        timeout = (counting.rpc_timeout or self._rpc_timeout).total_seconds()
        body = ("cadenza.visibility.CountWorkflowsRequest", {"query": counting.query or ""})
        reply = await self._transport.send_visibility_request(body, timeout=timeout)
        return WorkflowExecutionCount(count=int(expect(reply, "CountWorkflowsResult")["count"]))
