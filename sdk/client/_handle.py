"""``WorkflowHandle``: one workflow, by id (and run id): result, signal, query, update, ..."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from ..common._enums import QueryRejectCondition
from ..common._types import ReturnType, SelfType
from ..common._typing import _arg_or_args, _arg_unset
from ..exceptions import RPCTimeoutOrCancelledError, WorkflowQueryFailedError
from ..topics import history_topic
from ..worker import WorkflowHistory
from ..workflow._handlers import _QueryDefinition, _SignalDefinition, _UpdateDefinition
from ._describe import WorkflowExecutionDescription
from ._history import scan_history
from ._interceptor import (
    CancelWorkflowInput,
    DescribeWorkflowInput,
    FetchWorkflowHistoryEventsInput,
    QueryWorkflowInput,
    SignalWorkflowInput,
    StartWorkflowUpdateInput,
    TerminateWorkflowInput,
)
from ._update import WorkflowUpdateHandle, WorkflowUpdateStage, update_body
from ._wire import COMMAND, FollowRun, decode_values, expect, new_id, workflow_result

if TYPE_CHECKING:
    from ._client import Client

_LR = TypeVar("_LR")


class WorkflowHandle(Generic[SelfType, ReturnType]):
    """A handle to one workflow: wait for its result, signal, query, update, cancel, ...

    Get one from ``Client.start_workflow`` or ``Client.get_workflow_handle``. Every
    call is a command on ``<ns>.commands`` answered on this client's replies
    partition; calls other than :meth:`result` and updates time out after the
    client's ``rpc_timeout`` unless given their own.
    """

    def __init__(
        self,
        client: Client,
        id: str,
        *,
        run_id: str | None = None,
        result_run_id: str | None = None,
        first_execution_run_id: str | None = None,
        result_type: type | None = None,
    ) -> None:
        """Create a handle (prefer ``Client.get_workflow_handle``).

        Args:
            client: The client that sends the handle's commands.
            id: Workflow id.
            run_id: Run that signal, query, update, cancel, terminate, describe
                and history target; ``None`` targets the latest run.
            result_run_id: Run whose result :meth:`result` waits for (default ``run_id``).
            first_execution_run_id: First run of the chain (kept for temporalio
                compatibility; Cadenza's commands do not check it).
            result_type: Type the result is converted to.
        """
        self._client = client
        self._id = id
        self._run_id = run_id
        self._result_run_id = result_run_id or run_id
        self._first_execution_run_id = first_execution_run_id
        self._result_type = result_type

    @property
    def id(self) -> str:
        """Workflow id."""
        return self._id

    @property
    def run_id(self) -> str | None:
        """Run targeted by signal, query, update, cancel, terminate and describe.

        Set only by ``get_workflow_handle``; ``start_workflow`` leaves it ``None``
        (the latest run is targeted) and sets :attr:`result_run_id` instead, as
        temporalio does.
        """
        return self._run_id

    @property
    def result_run_id(self) -> str | None:
        """Run whose result :meth:`result` waits for (following its successors)."""
        return self._result_run_id

    @property
    def first_execution_run_id(self) -> str | None:
        """First run of the chain of runs, when known."""
        return self._first_execution_run_id

    @property
    def client(self) -> Client:
        """The client this handle sends through."""
        return self._client

    def _timeout(self, rpc_timeout: timedelta | None) -> float:
        return (rpc_timeout or self._client.rpc_timeout).total_seconds()

    # -- result ------------------------------------------------------------------------

    async def result(
        self, *, follow_runs: bool = True, rpc_timeout: timedelta | None = None
    ) -> ReturnType:
        """Wait for the workflow to close and return its result.

        Waits without a time limit by default: a workflow may run for days. The
        engine answers at once for a closed run, else when it closes.

        Args:
            follow_runs: Follow the run's successors (continue-as-new, retries,
                cron) to the last one.
            rpc_timeout: Give up after this long.

        Raises:
            WorkflowFailureError: The workflow failed, was cancelled, terminated
                or timed out; ``cause`` says which.
            WorkflowContinuedAsNewError: It continued as new and ``follow_runs``
                is off.
            RPCTimeoutOrCancelledError: ``rpc_timeout`` passed first.
        """
        return await self._result(follow_runs=follow_runs, rpc_timeout=rpc_timeout)

    async def _result(
        self,
        *,
        follow_runs: bool = True,
        rpc_timeout: timedelta | None = None,
        first_reply: Awaitable[dict[str, Any]] | None = None,
    ) -> ReturnType:
        """:meth:`result`; ``first_reply`` is the answer to a result request already
        made (the one a start sent with ``result_reply_to``), awaited before asking
        again."""
        run_id = self._result_run_id
        converter = self._client.data_converter
        while True:
            if first_reply is not None:
                reply: dict[str, Any] | None = await first_reply
                first_reply = None
            else:
                reply = await self._client._request(
                    self._id,
                    (COMMAND + "GetWorkflowResult", {"follow_runs": follow_runs}),
                    run_id=run_id,
                    timeout=None if rpc_timeout is None else rpc_timeout.total_seconds(),
                )
            record = expect(reply, "WorkflowResult")
            outcome = await workflow_result(
                converter, record, result_type=self._result_type, follow_runs=follow_runs
            )
            if isinstance(outcome, FollowRun):
                run_id = outcome.run_id
                continue
            value: ReturnType = outcome
            return value

    # -- signal, query -----------------------------------------------------------------

    async def signal(
        self,
        signal: str | Callable[..., Any],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        rpc_timeout: timedelta | None = None,
    ) -> None:
        """Send a signal to the workflow; returns once the engine has taken it.

        Args:
            signal: A ``@workflow.signal`` method or a signal name.
            arg: The single argument (or use ``args``).
            args: The arguments.
            rpc_timeout: Wait this long for the engine (default: the client's).

        Raises:
            CadenzaServiceError: The engine rejected it (NOT_FOUND, ALREADY_CLOSED).
            RPCTimeoutOrCancelledError: No answer in time (the signal may still
                be delivered: Kafka has it).
        """
        signalling = SignalWorkflowInput(
            id=self._id,
            run_id=self._run_id,
            signal=_SignalDefinition.must_name_from_fn_or_str(signal),
            args=_arg_or_args(arg, args),
            headers={},
            rpc_timeout=rpc_timeout,
        )
        await self._client._outbound.signal_workflow(signalling)

    async def _signal_now(self, signalling: SignalWorkflowInput) -> None:
        body: dict[str, Any] = {
            "signal_name": signalling.signal,
            "input": await self._client.data_converter.encode(list(signalling.args)),
            "signal_id": new_id(),
            "header": dict(signalling.headers),
            "external": None,
        }
        reply = await self._client._request(
            signalling.id,
            (COMMAND + "SignalWorkflow", body),
            run_id=signalling.run_id,
            timeout=self._timeout(signalling.rpc_timeout),
        )
        expect(reply, "CommandAccepted")

    @overload
    async def query(
        self,
        query: Callable[..., Awaitable[_LR]],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        result_type: type | None = None,
        reject_condition: QueryRejectCondition | None = None,
        rpc_timeout: timedelta | None = None,
    ) -> _LR: ...

    @overload
    async def query(
        self,
        query: Callable[..., _LR],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        result_type: type | None = None,
        reject_condition: QueryRejectCondition | None = None,
        rpc_timeout: timedelta | None = None,
    ) -> _LR: ...

    @overload
    async def query(
        self,
        query: str,
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        result_type: type | None = None,
        reject_condition: QueryRejectCondition | None = None,
        rpc_timeout: timedelta | None = None,
    ) -> Any: ...

    async def query(
        self,
        query: str | Callable[..., Any],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        result_type: type | None = None,
        reject_condition: QueryRejectCondition | None = None,
        rpc_timeout: timedelta | None = None,
    ) -> Any:
        """Run a query handler of the workflow and return its answer.

        A worker of the workflow's task queue runs the query on the workflow's
        current state (replaying its history) and answers.

        Args:
            query: A ``@workflow.query`` method or a query name.
            arg: The single argument (or use ``args``).
            args: The arguments.
            result_type: Type to convert the answer to (default: the method's
                return type hint).
            reject_condition: Accepted for temporalio compatibility and ignored.
            rpc_timeout: Wait this long (default: the client's ``rpc_timeout``).

        Raises:
            WorkflowQueryFailedError: The handler raised, or there is no such query.
            RPCTimeoutOrCancelledError: No answer in time.
            CadenzaServiceError: The engine rejected the query (e.g. NOT_FOUND).
        """
        name, hinted = _QueryDefinition.get_name_and_result_type(query)
        asking = QueryWorkflowInput(
            id=self._id,
            run_id=self._run_id,
            query=name,
            args=_arg_or_args(arg, args),
            reject_condition=reject_condition,
            headers={},
            ret_type=result_type or hinted,
            rpc_timeout=rpc_timeout,
        )
        return await self._client._outbound.query_workflow(asking)

    async def _query_now(self, asking: QueryWorkflowInput) -> Any:
        converter = self._client.data_converter
        body = {
            "query_id": new_id(),
            "query_type": asking.query,
            "args": await converter.encode(list(asking.args)),
            "header": dict(asking.headers),
        }
        timeout = self._timeout(asking.rpc_timeout)
        try:
            reply = await self._client._request(
                asking.id, (COMMAND + "QueryWorkflow", body), run_id=asking.run_id, timeout=timeout
            )
        except RPCTimeoutOrCancelledError as exc:
            raise RPCTimeoutOrCancelledError(
                f"{exc}; a query is answered by a worker, so no worker may be polling the "
                "workflow's task queue"
            ) from None
        record = expect(reply, "QueryResult")
        failure = record.get("failure")
        if failure is not None:
            raise WorkflowQueryFailedError(str(failure.get("message", "")))
        return await decode_values(converter, record["result"], asking.ret_type)

    # -- updates -----------------------------------------------------------------------

    @overload
    async def execute_update(
        self,
        update: Callable[..., Awaitable[_LR]],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        id: str | None = None,
        result_type: type | None = None,
        rpc_timeout: timedelta | None = None,
    ) -> _LR: ...

    @overload
    async def execute_update(
        self,
        update: Callable[..., _LR],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        id: str | None = None,
        result_type: type | None = None,
        rpc_timeout: timedelta | None = None,
    ) -> _LR: ...

    @overload
    async def execute_update(
        self,
        update: str,
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        id: str | None = None,
        result_type: type | None = None,
        rpc_timeout: timedelta | None = None,
    ) -> Any: ...

    async def execute_update(
        self,
        update: str | Callable[..., Any],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        id: str | None = None,
        result_type: type | None = None,
        rpc_timeout: timedelta | None = None,
    ) -> Any:
        """Send an update and wait for its result (no time limit unless ``rpc_timeout``).

        Raises:
            WorkflowUpdateFailedError: The validator rejected it or the handler raised.
            RPCTimeoutOrCancelledError: ``rpc_timeout`` passed first.
            CadenzaServiceError: The engine rejected the update (e.g. NOT_FOUND).
        """
        handle: WorkflowUpdateHandle[Any] = await self.start_update(
            update,
            arg,
            args=args,
            id=id,
            result_type=result_type,
            wait_for_stage=WorkflowUpdateStage.COMPLETED,
            rpc_timeout=rpc_timeout,
        )
        return await handle.result(rpc_timeout=rpc_timeout)

    @overload
    async def start_update(
        self,
        update: Callable[..., Awaitable[_LR]],
        arg: Any = _arg_unset,
        *,
        wait_for_stage: WorkflowUpdateStage = WorkflowUpdateStage.ACCEPTED,
        args: Sequence[Any] = (),
        id: str | None = None,
        result_type: type | None = None,
        rpc_timeout: timedelta | None = None,
    ) -> WorkflowUpdateHandle[_LR]: ...

    @overload
    async def start_update(
        self,
        update: Callable[..., _LR],
        arg: Any = _arg_unset,
        *,
        wait_for_stage: WorkflowUpdateStage = WorkflowUpdateStage.ACCEPTED,
        args: Sequence[Any] = (),
        id: str | None = None,
        result_type: type | None = None,
        rpc_timeout: timedelta | None = None,
    ) -> WorkflowUpdateHandle[_LR]: ...

    @overload
    async def start_update(
        self,
        update: str,
        arg: Any = _arg_unset,
        *,
        wait_for_stage: WorkflowUpdateStage = WorkflowUpdateStage.ACCEPTED,
        args: Sequence[Any] = (),
        id: str | None = None,
        result_type: type | None = None,
        rpc_timeout: timedelta | None = None,
    ) -> WorkflowUpdateHandle[Any]: ...

    async def start_update(
        self,
        update: str | Callable[..., Any],
        arg: Any = _arg_unset,
        *,
        wait_for_stage: WorkflowUpdateStage = WorkflowUpdateStage.ACCEPTED,
        args: Sequence[Any] = (),
        id: str | None = None,
        result_type: type | None = None,
        rpc_timeout: timedelta | None = None,
    ) -> WorkflowUpdateHandle[Any]:
        """Send an update and return once it reaches ``wait_for_stage``.

        Args:
            update: A ``@workflow.update`` method or an update name.
            arg: The single argument (or use ``args``).
            wait_for_stage: ``ACCEPTED`` (default) or ``COMPLETED``.
            args: The arguments.
            id: Update id (default: a fresh uuid); an id the run has seen is not
                applied twice.
            result_type: Type to convert the result to (default: the method's
                return type hint).
            rpc_timeout: Give up waiting after this long (default: no limit).

        Raises:
            ValueError: ``wait_for_stage`` is ``ADMITTED``.
            RPCTimeoutOrCancelledError: ``rpc_timeout`` passed first.
            CadenzaServiceError: The engine rejected the update (e.g. NOT_FOUND).
        """
        if wait_for_stage is WorkflowUpdateStage.ADMITTED:
            raise ValueError("ADMITTED wait stage not supported")
        name, hinted = _UpdateDefinition.get_name_and_result_type(update)
        updating = StartWorkflowUpdateInput(
            id=self._id,
            run_id=self._run_id,
            first_execution_run_id=self._first_execution_run_id,
            update_id=id,
            update=name,
            args=_arg_or_args(arg, args),
            wait_for_stage=WorkflowUpdateStage(wait_for_stage),
            headers={},
            ret_type=result_type or hinted,
            rpc_timeout=rpc_timeout,
        )
        return await self._client._outbound.start_workflow_update(updating)

    async def _start_update_now(
        self, updating: StartWorkflowUpdateInput
    ) -> WorkflowUpdateHandle[Any]:
        update_id = updating.update_id or new_id()
        payloads = await self._client.data_converter.encode(list(updating.args))
        body = update_body(
            update_id=update_id,
            name=updating.update,
            args=payloads,
            identity=self._client.identity,
            wait_stage=updating.wait_for_stage,
            header=updating.headers,
        )
        rpc_timeout = updating.rpc_timeout
        reply = await self._client._request(
            updating.id,
            body,
            run_id=updating.run_id,
            timeout=None if rpc_timeout is None else rpc_timeout.total_seconds(),
        )
        record = expect(reply, "UpdateResult")
        assert reply is not None
        return WorkflowUpdateHandle(
            self._client,
            update_id,
            updating.id,
            workflow_run_id=reply.get("run_id") or updating.run_id,
            result_type=updating.ret_type,
            name=updating.update,
            args=payloads,
            known_outcome=record.get("outcome"),
        )

    # -- cancel, terminate, describe ---------------------------------------------------

    async def cancel(self, *, reason: str = "", rpc_timeout: timedelta | None = None) -> None:
        """Ask the workflow to cancel; returns once the engine has recorded the request.

        The workflow sees a cancellation and may clean up; :meth:`result` then
        raises ``WorkflowFailureError`` caused by ``CancelledError``.

        Args:
            reason: Why; recorded in the ``WorkflowExecutionCancelRequested`` event.
            rpc_timeout: Wait this long (default: the client's ``rpc_timeout``).

        Raises:
            CadenzaServiceError: The engine rejected it (NOT_FOUND, ALREADY_CLOSED).
            RPCTimeoutOrCancelledError: No answer in time.
        """
        cancelling = CancelWorkflowInput(
            id=self._id,
            run_id=self._run_id,
            first_execution_run_id=self._first_execution_run_id,
            rpc_timeout=rpc_timeout,
            reason=reason,
        )
        await self._client._outbound.cancel_workflow(cancelling)

    async def _cancel_now(self, cancelling: CancelWorkflowInput) -> None:
        body = {"reason": cancelling.reason, "request_id": new_id(), "external": None}
        reply = await self._client._request(
            cancelling.id,
            (COMMAND + "RequestCancelWorkflow", body),
            run_id=cancelling.run_id,
            timeout=self._timeout(cancelling.rpc_timeout),
        )
        expect(reply, "CommandAccepted")

    async def terminate(
        self, *args: Any, reason: str | None = None, rpc_timeout: timedelta | None = None
    ) -> None:
        """Close the workflow at once, without running its code.

        Args:
            args: Details recorded with the termination.
            reason: Why; recorded in history.
            rpc_timeout: Wait this long (default: the client's ``rpc_timeout``).

        Raises:
            CadenzaServiceError: The engine rejected it (NOT_FOUND, ALREADY_CLOSED).
            RPCTimeoutOrCancelledError: No answer in time.
        """
        terminating = TerminateWorkflowInput(
            id=self._id,
            run_id=self._run_id,
            first_execution_run_id=self._first_execution_run_id,
            args=args,
            reason=reason,
            rpc_timeout=rpc_timeout,
        )
        await self._client._outbound.terminate_workflow(terminating)

    async def _terminate_now(self, terminating: TerminateWorkflowInput) -> None:
        body = {
            "reason": terminating.reason or "",
            "details": await self._client.data_converter.encode(list(terminating.args)),
        }
        reply = await self._client._request(
            terminating.id,
            (COMMAND + "TerminateWorkflow", body),
            run_id=terminating.run_id,
            timeout=self._timeout(terminating.rpc_timeout),
        )
        expect(reply, "CommandAccepted")

    async def describe(
        self, *, rpc_timeout: timedelta | None = None
    ) -> WorkflowExecutionDescription:
        """The run's status, times, type, queue, memo and search attributes.

        Raises:
            CadenzaServiceError: NOT_FOUND when there is no such workflow.
            RPCTimeoutOrCancelledError: No answer in time.
        """
        describing = DescribeWorkflowInput(
            id=self._id, run_id=self._run_id, rpc_timeout=rpc_timeout
        )
        return await self._client._outbound.describe_workflow(describing)

    async def _describe_now(
        self, describing: DescribeWorkflowInput
    ) -> WorkflowExecutionDescription:
        reply = await self._client._request(
            describing.id,
            (COMMAND + "DescribeWorkflow", {"include_pending": True}),
            run_id=describing.run_id,
            timeout=self._timeout(describing.rpc_timeout),
        )
        record = expect(reply, "WorkflowDescription")
        assert reply is not None
        return WorkflowExecutionDescription.from_reply(
            describing.id,
            reply.get("run_id") or describing.run_id,
            record,
            self._client.data_converter,
        )

    # -- history -----------------------------------------------------------------------

    async def fetch_history(self, *, rpc_timeout: timedelta | None = None) -> WorkflowHistory:
        """The run's history events, read from the ``history`` topic.

        This reads the workflow's partition of ``<ns>.history`` (a partition holds
        the events of every workflow that hashes to it) back from its end until
        the run's start, keeping the events of this workflow id and of
        :attr:`run_id`, or of the latest run when the handle has no run id. A run
        that started long ago costs a read of everything written since. It needs
        no processor running. Payloads in the events are left encoded, as
        temporalio leaves them.

        Args:
            rpc_timeout: Give up after this long (default: no limit).

        Raises:
            TransportError: The partition cannot be read in time.
        """
        events = [event async for event in self.fetch_history_events(rpc_timeout=rpc_timeout)]
        return WorkflowHistory(self._id, events)

    def fetch_history_events(
        self, *, rpc_timeout: timedelta | None = None
    ) -> AsyncIterator[Mapping[str, Any]]:
        """The run's history events, one by one (see :meth:`fetch_history`).

        Example::

            async for event in handle.fetch_history_events():
                print(event["event_id"], event["attributes"][0])
        """

        reading = FetchWorkflowHistoryEventsInput(
            id=self._id, run_id=self._run_id, rpc_timeout=rpc_timeout
        )
        return self._client._outbound.fetch_workflow_history_events(reading)

    async def _history_events_now(
        self, reading: FetchWorkflowHistoryEventsInput
    ) -> AsyncIterator[Mapping[str, Any]]:
        transport = self._client.transport
        rpc_timeout = reading.rpc_timeout
        events = await asyncio.to_thread(
            scan_history,
            self._client.settings,
            reading.id,
            reading.run_id,
            partitions=transport.partitions_of(history_topic(self._client.settings)),
            timeout=None if rpc_timeout is None else rpc_timeout.total_seconds(),
        )
        for event in events:
            yield event
