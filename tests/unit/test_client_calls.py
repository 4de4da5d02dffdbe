"""Client and WorkflowHandle calls against a scripted transport (no broker).

``ScriptedTransport`` stands where the Kafka transport would: it records each
command the client sends and answers with what the test scripted.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from cadenza import Settings, workflow
from cadenza._eager_start import EagerStarts
from cadenza._transport import Transport
from cadenza.client import (
    CadenzaServiceError,
    Client,
    CompleteAsyncActivityInput,
    CountWorkflowsInput,
    HeartbeatAsyncActivityInput,
    Interceptor,
    ListWorkflowsInput,
    OutboundInterceptor,
    WorkflowAlreadyStartedError,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from cadenza.common import SearchAttributeKey
from cadenza.converter import DataConverter
from cadenza.exceptions import ApplicationError
from cadenza.worker._activity_worker import TaskToken

Body = tuple[str, dict[str, Any]]
DC = DataConverter.default
COMMAND_PREFIX = "cadenza.command."


@dataclasses.dataclass
class Sent:
    workflow_id: str
    body: Body
    run_id: str | None
    want_reply: bool
    timeout: float | None

    @property
    def name(self) -> str:
        return self.body[0].rsplit(".", 1)[-1]

    @property
    def record(self) -> dict[str, Any]:
        return self.body[1]


class ScriptedTransport:
    """Answers each command with ``answer(sent)``: a reply body, or a whole reply dict."""

    def __init__(self, answer: Callable[[Sent], Any]) -> None:
        self.settings = Settings.defaults()
        self.identity = "tester@host"
        self.sent: list[Sent] = []
        self.answer = answer
        self.results: dict[str, asyncio.Future[dict[str, Any]]] = {}
        """Result requests a start carried (``result_reply_to``), by request id."""
        self.eager_starts = EagerStarts()

    async def send_command(
        self,
        workflow_id: str,
        body: Body,
        *,
        run_id: str | None = None,
        want_reply: bool = False,
        timeout: float | None = None,
    ) -> dict[str, Any] | None:
        sent = Sent(workflow_id, body, run_id, want_reply, timeout)
        self.sent.append(sent)
        answer = self._reply(sent)
        result_reply_to = body[1].get("result_reply_to")
        if result_reply_to is not None and answer and answer["body"][0].endswith("Started"):
            # As the engine does: the start also asked for the result.
            ask = (COMMAND_PREFIX + "GetWorkflowResult", {"follow_runs": True})
            started_run = answer["body"][1]["run_id"]
            result = self._reply(Sent(workflow_id, ask, started_run, True, None))
            self.results.pop(result_reply_to["request_id"]).set_result(result)
        return answer

    def _reply(self, sent: Sent) -> dict[str, Any] | None:
        answer = self.answer(sent)
        if answer is None or isinstance(answer, dict):
            return answer
        wid, run_id = sent.workflow_id, sent.run_id
        return {"request_id": "q", "workflow_id": wid, "run_id": run_id, "body": answer}

    def new_reply_to(self) -> tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]:
        request_id = f"result-{len(self.sent)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.results[request_id] = future
        return {"client_id": "c", "partition": 0, "request_id": request_id}, future

    async def send_visibility_request(
        self, body: Body, *, timeout: float | None = None
    ) -> dict[str, Any]:
        sent = Sent("", body, None, True, timeout)
        self.sent.append(sent)
        return {"request_id": "q", "workflow_id": "", "run_id": None, "body": self.answer(sent)}

    async def close(self) -> None:
        pass


def reply(name: str, record: dict[str, Any]) -> Body:
    return (f"cadenza.reply.{name}", record)


def client_for(answer: Callable[[Sent], Any]) -> tuple[Client, ScriptedTransport]:
    transport = ScriptedTransport(answer)
    return Client(cast(Transport, transport)), transport


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def payload(value: Any) -> Any:
    return DC.payload_converter.to_payload(value)


@dataclasses.dataclass
class Order:
    id: str
    qty: int


@workflow.defn
class OrderWorkflow:
    @workflow.run
    async def run(self, order: Order) -> Order:
        return order

    @workflow.signal
    def approve(self, who: str) -> None:
        pass

    @workflow.query
    def status(self) -> Order:
        return Order("x", 0)

    @workflow.update
    async def change(self, qty: int) -> Order:
        return Order("x", qty)


def started(sent: Sent) -> Any:
    if sent.name == "StartWorkflow":
        return reply("WorkflowStarted", {"run_id": "run-1", "started": True})
    if sent.name == "GetWorkflowResult":
        return reply(
            "WorkflowResult",
            {
                "run_id": "run-1",
                "status": "COMPLETED",
                "result": [payload({"id": "o-1", "qty": 2})],
                "failure": None,
                "new_run_id": None,
            },
        )
    raise AssertionError(f"unexpected {sent.name}")


# -- start -----------------------------------------------------------------------------


def test_start_by_run_method_and_typed_result() -> None:
    client, transport = client_for(started)

    async def main() -> None:
        handle = await client.start_workflow(
            OrderWorkflow.run, Order("o-1", 2), id="order-1", task_queue="orders"
        )
        assert (handle.id, handle.run_id, handle.result_run_id) == ("order-1", None, "run-1")
        assert handle.first_execution_run_id == "run-1"
        assert await handle.result() == Order("o-1", 2)  # the run method's return hint

    run(main())
    start, get = transport.sent
    assert start.workflow_id == "order-1" and start.run_id is None and start.want_reply
    assert start.timeout == 10.0  # the client's default rpc_timeout
    assert start.record["workflow_type"] == "OrderWorkflow"
    assert start.record["input"] == [payload({"id": "o-1", "qty": 2})]
    assert start.record["task_queue"] == "orders"
    assert get.run_id == "run-1" and get.record == {"follow_runs": True}
    assert get.timeout is None  # waiting for a result has no time limit


def test_start_by_name_with_args_and_a_fresh_request_id_each_time() -> None:
    client, transport = client_for(started)

    async def main() -> Any:
        await client.start_workflow("Other", args=[1, 2], id="w", task_queue="q")
        await client.start_workflow("Other", args=[1, 2], id="w", task_queue="q")
        return await client.execute_workflow("Other", id="w2", task_queue="q")

    assert run(main()) == {"id": "o-1", "qty": 2}  # untyped: a dict
    starts = [s for s in transport.sent if s.name == "StartWorkflow"]
    assert starts[0].record["input"] == [payload(1), payload(2)]
    ids = {s.record["request_id"] for s in starts}
    assert len(ids) == 3 and all(ids)


def test_start_options_and_signal_with_start() -> None:
    client, transport = client_for(started)

    async def main() -> WorkflowHandle[Any, Any]:
        return await client.start_workflow(
            "Other",
            id="w",
            task_queue="q",
            execution_timeout=timedelta(seconds=3),
            start_signal=OrderWorkflow.approve,
            start_signal_args=["boss"],
            memo={"k": "v"},
            rpc_timeout=timedelta(seconds=2),
            request_eager_start=True,
        )

    handle = run(main())
    assert handle.first_execution_run_id is None  # the signal may have hit a running run
    start = transport.sent[0]
    assert start.timeout == 2.0
    assert start.record["execution_timeout_ms"] == 3000
    assert start.record["signal"]["signal_name"] == "approve"
    assert start.record["signal"]["input"] == [payload("boss")]
    assert start.record["memo"] == {"k": payload("v")}
    # No worker of "q" shares the transport: an ordinary start.
    assert start.record["request_eager_execution"] is False


class EagerTarget:
    """Stands in for a workflow worker that takes eager starts."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.ran: list[bytes] = []

    def try_reserve_eager(self) -> bool:
        if self.slots == 0:
            return False
        self.slots -= 1
        return True

    def release_eager(self) -> None:
        self.slots += 1

    def run_eager(self, task: bytes) -> None:
        self.ran.append(task)


def test_the_first_worker_of_the_queue_with_a_free_slot_takes_it() -> None:
    starts = EagerStarts()
    first, second, other = EagerTarget(1), EagerTarget(1), EagerTarget(5)
    starts.register("q", first)
    starts.register("q", second)
    starts.register("other", other)
    assert starts.reserve("q") is first
    assert starts.reserve("q") is second  # the first is full
    assert starts.reserve("q") is None  # both are
    assert starts.reserve("nobody") is None
    second.release_eager()
    starts.unregister("q", second)  # stopping: it takes no more
    assert starts.reserve("q") is None
    first.release_eager()
    assert starts.reserve("q") is first
    starts.unregister("q", first)
    starts.unregister("q", first)  # twice is harmless
    assert starts.reserve("q") is None
    assert starts.reserve("other") is other


def test_an_eager_start_hands_the_replys_task_to_the_local_worker() -> None:
    def answer(sent: Sent) -> Any:
        task = b"task" if sent.workflow_id == "with-task" else None
        if sent.workflow_id == "taken":
            return rejecting("ALREADY_STARTED")(sent)
        return reply(
            "WorkflowStarted", {"run_id": "r", "started": True, "eager_workflow_task": task}
        )

    client, transport = client_for(answer)
    target = EagerTarget(slots=1)
    transport.eager_starts.register("q", target)

    async def start(workflow_id: str, queue: str = "q") -> None:
        await client.start_workflow("W", id=workflow_id, task_queue=queue, request_eager_start=True)

    run(start("with-task"))
    assert transport.sent[-1].record["request_eager_execution"] is True
    assert target.ran == [b"task"] and target.slots == 0  # the task holds the slot
    target.slots = 1
    run(start("no-task"))  # e.g. a start delay: the slot comes back
    assert target.ran == [b"task"] and target.slots == 1
    with pytest.raises(WorkflowAlreadyStartedError):
        run(start("taken"))
    assert target.slots == 1
    target.slots = 0  # full: the start does not ask
    run(start("full"))
    assert transport.sent[-1].record["request_eager_execution"] is False
    run(start("elsewhere", queue="other"))  # no worker of that queue here
    assert transport.sent[-1].record["request_eager_execution"] is False


def test_bad_start_arguments_fail_before_sending() -> None:
    client, transport = client_for(started)
    with pytest.raises(ValueError, match="Cannot give both"):
        run(client.start_workflow("W", 1, args=[2], id="w", task_queue="q"))
    with pytest.raises(ValueError, match="id cannot be empty"):
        run(client.start_workflow("W", id="", task_queue="q"))
    with pytest.raises(ValueError):
        run(client.start_workflow("W", id="w", task_queue="no spaces allowed"))
    with pytest.raises(TypeError, match="not the @workflow.run method"):
        run(client.start_workflow(OrderWorkflow.approve, id="w", task_queue="q"))  # type: ignore[arg-type]
    assert transport.sent == []


def rejecting(code: str) -> Callable[[Sent], Any]:
    return lambda sent: reply("CommandRejected", {"code": code, "message": "no"})


def test_already_started_and_other_rejections() -> None:
    client, _ = client_for(rejecting("ALREADY_STARTED"))
    with pytest.raises(WorkflowAlreadyStartedError) as info:
        run(client.start_workflow(OrderWorkflow.run, Order("a", 1), id="w", task_queue="q"))
    assert info.value.workflow_type == "OrderWorkflow" and info.value.workflow_id == "w"
    client, _ = client_for(rejecting("INVALID_ARGUMENT"))
    with pytest.raises(CadenzaServiceError) as err:
        run(client.start_workflow("W", id="w", task_queue="q"))
    assert err.value.code == "INVALID_ARGUMENT"


def test_execute_workflow_is_one_command_that_also_asks_for_the_result() -> None:
    client, transport = client_for(started)
    got = run(client.execute_workflow(OrderWorkflow.run, Order("o-1", 2), id="w", task_queue="q"))
    assert got == Order("o-1", 2)
    [start] = transport.sent  # no GetWorkflowResult of its own
    assert start.name == "StartWorkflow"
    assert start.record["result_reply_to"]["request_id"].startswith("result-")
    assert transport.results == {}


def test_a_rejected_execute_stops_waiting_for_the_result() -> None:
    client, transport = client_for(rejecting("ALREADY_STARTED"))
    futures: list[asyncio.Future[Any]] = []
    new_reply_to = transport.new_reply_to

    def keep() -> tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]:
        reply_to, future = new_reply_to()
        futures.append(future)
        return reply_to, future

    transport.new_reply_to = keep  # type: ignore[method-assign]
    with pytest.raises(WorkflowAlreadyStartedError):
        run(client.execute_workflow("W", id="w", task_queue="q"))
    [future] = futures
    assert future.cancelled()


# -- result ----------------------------------------------------------------------------


def test_result_follows_successor_runs() -> None:
    answers = iter(
        [
            {"run_id": "r1", "status": "CONTINUED_AS_NEW", "new_run_id": "r2"},
            {"run_id": "r2", "status": "FAILED", "new_run_id": "r3"},
            {"run_id": "r3", "status": "COMPLETED", "result": [payload(7)]},
        ]
    )

    def answer(sent: Sent) -> Any:
        base = {"result": [], "failure": None, "new_run_id": None}
        return reply("WorkflowResult", {**base, **next(answers)})

    client, transport = client_for(answer)
    handle = client.get_workflow_handle("w", run_id="r1")
    assert run(handle.result(rpc_timeout=timedelta(seconds=5))) == 7
    assert [s.run_id for s in transport.sent] == ["r1", "r2", "r3"]
    assert {s.timeout for s in transport.sent} == {5.0}


def test_result_failure_is_workflow_failure_error() -> None:
    failure = run(DC.encode_failure(ApplicationError("card declined", type="Declined")))

    def answer(sent: Sent) -> Any:
        record = {"run_id": "r", "status": "FAILED", "result": [], "failure": failure}
        return reply("WorkflowResult", {**record, "new_run_id": None})

    client, transport = client_for(answer)
    with pytest.raises(WorkflowFailureError) as info:
        run(client.get_workflow_handle("w").result(follow_runs=False))
    assert isinstance(info.value.cause, ApplicationError)
    assert info.value.cause.type == "Declined"
    assert transport.sent[0].record == {"follow_runs": False}
    assert transport.sent[0].run_id is None


def test_handle_for_takes_the_result_type_of_the_run_method() -> None:
    client, _ = client_for(started)
    handle = client.get_workflow_handle_for(OrderWorkflow.run, "w", run_id="run-1")
    assert handle.run_id == "run-1" and handle.result_run_id == "run-1"
    assert run(handle.result()) == Order("o-1", 2)


# -- signal, query, cancel, terminate --------------------------------------------------


def accepted(sent: Sent) -> Any:
    return reply("CommandAccepted", {"note": ""})


def test_signal_by_method_and_name() -> None:
    client, transport = client_for(accepted)
    handle = client.get_workflow_handle("w", run_id="r1")
    run(handle.signal(OrderWorkflow.approve, "boss"))
    run(handle.signal("approve", args=["a", "b"], rpc_timeout=timedelta(seconds=1)))
    first, second = transport.sent
    assert first.name == "SignalWorkflow" and first.run_id == "r1"
    assert first.record["signal_name"] == "approve"
    assert first.record["input"] == [payload("boss")]
    assert first.record["signal_id"] and first.record["signal_id"] != second.record["signal_id"]
    assert first.timeout == 10.0 and second.timeout == 1.0
    assert second.record["input"] == [payload("a"), payload("b")]


def test_signal_rejection_is_a_service_error() -> None:
    client, _ = client_for(
        lambda sent: reply("CommandRejected", {"code": "NOT_FOUND", "message": "no such"})
    )
    with pytest.raises(CadenzaServiceError) as info:
        run(client.get_workflow_handle("w").signal("s"))
    assert info.value.code == "NOT_FOUND"


def test_query_answer_is_typed_by_the_method() -> None:
    def answer(sent: Sent) -> Any:
        return reply(
            "QueryResult",
            {
                "query_id": sent.record["query_id"],
                "result": [payload({"id": "o", "qty": 5})],
                "failure": None,
            },
        )

    client, transport = client_for(answer)
    handle = client.get_workflow_handle("w")
    assert run(handle.query(OrderWorkflow.status)) == Order("o", 5)
    assert run(handle.query("status", "arg")) == {"id": "o", "qty": 5}
    first, second = transport.sent
    assert first.name == "QueryWorkflow" and first.record["query_type"] == "status"
    assert first.record["args"] == [] and second.record["args"] == [payload("arg")]
    assert first.record["query_id"] != second.record["query_id"]


def test_query_failure_is_workflow_query_failed_error() -> None:
    failure = run(DC.encode_failure(ApplicationError("no handler for 'x'")))
    client, _ = client_for(
        lambda sent: reply("QueryResult", {"query_id": "q", "result": [], "failure": failure})
    )
    with pytest.raises(WorkflowQueryFailedError, match="no handler for 'x'"):
        run(client.get_workflow_handle("w").query("x"))


def test_cancel_and_terminate() -> None:
    client, transport = client_for(accepted)
    handle = client.get_workflow_handle("w", run_id="r9")
    run(handle.cancel())
    run(handle.terminate("detail", 2, reason="enough"))
    cancel, terminate = transport.sent
    assert cancel.name == "RequestCancelWorkflow" and cancel.run_id == "r9"
    assert cancel.record["request_id"]
    assert terminate.name == "TerminateWorkflow"
    assert terminate.record == {"reason": "enough", "details": [payload("detail"), payload(2)]}


# -- updates ---------------------------------------------------------------------------


def test_execute_update_waits_for_completion() -> None:
    def answer(sent: Sent) -> Any:
        request = sent.record["request"]
        outcome = {"success": [payload({"id": "x", "qty": request["args"] and 3})], "failure": None}
        return reply(
            "UpdateResult",
            {"update_id": request["update_id"], "stage": "COMPLETED", "outcome": outcome},
        )

    client, transport = client_for(answer)
    handle = client.get_workflow_handle("w")
    assert run(handle.execute_update(OrderWorkflow.change, 3, id="u-1")) == Order("x", 3)
    sent = transport.sent[0]
    assert sent.name == "UpdateWorkflow"
    assert sent.record["wait_stage"] == "COMPLETED"
    assert sent.record["request"] == {
        "update_id": "u-1",
        "name": "change",
        "args": [payload(3)],
        "header": {},
        "identity": "tester@host",
    }
    assert sent.timeout is None


def test_start_update_then_result_asks_again_for_completion() -> None:
    def answer(sent: Sent) -> Any:
        request = sent.record["request"]
        if sent.record["wait_stage"] == "ACCEPTED":
            return reply(
                "UpdateResult",
                {"update_id": request["update_id"], "stage": "ACCEPTED", "outcome": None},
            )
        outcome = {"success": [payload(42)], "failure": None}
        return reply(
            "UpdateResult",
            {"update_id": request["update_id"], "stage": "COMPLETED", "outcome": outcome},
        )

    client, transport = client_for(answer)
    handle = client.get_workflow_handle("w", run_id="r1")

    async def main() -> Any:
        update = await handle.start_update("change", 1)
        assert update.workflow_id == "w" and update.workflow_run_id == "r1"
        return update.id, await update.result()

    update_id, value = run(main())
    assert value == 42
    first, second = transport.sent
    assert first.record["wait_stage"] == "ACCEPTED" and second.record["wait_stage"] == "COMPLETED"
    assert first.record["request"] == second.record["request"]  # same id: not applied twice
    assert first.record["request"]["update_id"] == update_id


def test_rejected_update_is_workflow_update_failed_error() -> None:
    failure = run(DC.encode_failure(ApplicationError("negative", type="Invalid")))

    def answer(sent: Sent) -> Any:
        outcome = {"success": [], "failure": failure}
        return reply("UpdateResult", {"update_id": "u", "stage": "COMPLETED", "outcome": outcome})

    client, _ = client_for(answer)
    with pytest.raises(WorkflowUpdateFailedError) as info:
        run(client.get_workflow_handle("w").execute_update("change", -1))
    assert isinstance(info.value.cause, ApplicationError)
    assert info.value.cause.type == "Invalid"


def test_admitted_is_not_a_wait_stage() -> None:
    client, transport = client_for(accepted)
    with pytest.raises(ValueError, match="ADMITTED"):
        run(
            client.get_workflow_handle("w").start_update(
                "u", wait_for_stage=WorkflowUpdateStage.ADMITTED
            )
        )
    assert transport.sent == []


# -- describe, visibility --------------------------------------------------------------


def test_describe_maps_the_description() -> None:
    customer = SearchAttributeKey.for_keyword("CustomerId")
    attribute = payload("c-42")
    attribute["metadata"]["type"] = b"Keyword"

    def answer(sent: Sent) -> Any:
        assert sent.record == {"include_pending": True}
        description = {
            "workflow_type": "OrderWorkflow",
            "task_queue": "orders",
            "status": "COMPLETED",
            "start_time_ms": 1_700_000_000_000,
            "close_time_ms": 1_700_000_001_500,
            "execution_time_ms": 1_700_000_000_250,
            "history_length": 11,
            "parent": {
                "workflow_id": "parent",
                "run_id": "pr",
                "initiated_event_id": 5,
                "parent_close_policy": "TERMINATE",
            },
            "memo": {"note": payload({"id": "m", "qty": 1})},
            "search_attributes": {"CustomerId": attribute},
            "pending_activities": [],
            "pending_children": [],
        }
        return {
            "request_id": "q",
            "workflow_id": "w",
            "run_id": "run-7",
            "body": reply("WorkflowDescription", description),
        }

    client, _ = client_for(answer)
    desc = run(client.get_workflow_handle("w").describe())
    assert (desc.id, desc.run_id, desc.workflow_type, desc.task_queue) == (
        "w",
        "run-7",
        "OrderWorkflow",
        "orders",
    )
    assert desc.status is WorkflowExecutionStatus.COMPLETED
    assert desc.start_time == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert desc.close_time == desc.start_time + timedelta(milliseconds=1500)
    assert desc.execution_time == desc.start_time + timedelta(milliseconds=250)
    assert desc.history_length == 11
    assert (desc.parent_id, desc.parent_run_id) == ("parent", "pr")
    assert desc.typed_search_attributes[customer] == "c-42"
    assert desc.search_attributes == {"CustomerId": ["c-42"]}
    assert run(desc.memo()) == {"note": {"id": "m", "qty": 1}}
    assert run(desc.memo_value("note", type_hint=Order)) == Order("m", 1)
    assert run(desc.memo_value("missing", "dflt")) == "dflt"
    with pytest.raises(KeyError):
        run(desc.memo_value("missing"))
    assert desc.raw_description["history_length"] == 11


def _info(n: int, status: str = "RUNNING") -> dict[str, Any]:
    return {
        "workflow_id": f"wf-{n}",
        "run_id": f"run-{n}",
        "workflow_type": "OrderWorkflow",
        "task_queue": "orders",
        "status": status,
        "start_time_ms": 1_700_000_000_000 + n,
        "close_time_ms": None if status == "RUNNING" else 1_700_000_001_000,
        "execution_time_ms": 1_700_000_000_000 + n,
        "history_length": 3,
        "parent_workflow_id": "parent" if n == 0 else None,
        "parent_run_id": "pr" if n == 0 else None,
        "memo": {"note": payload({"id": "m", "qty": 1})},
        "search_attributes": {},
    }


def test_list_workflows_pages_through_the_visibility_requests() -> None:
    pages = {b"": ([_info(0), _info(1)], b"t1"), b"t1": ([_info(2, "COMPLETED")], b"")}

    def answer(sent: Sent) -> Body:
        token = sent.record["next_page_token"]
        infos, next_token = pages[token]
        return reply("ListWorkflowsResult", {"executions": infos, "next_page_token": next_token})

    client, transport = client_for(answer)

    async def collect() -> list[Any]:
        return [e async for e in client.list_workflows("WorkflowType = 'X'", page_size=2)]

    executions = run(collect())
    assert [e.id for e in executions] == ["wf-0", "wf-1", "wf-2"]
    assert [s.name for s in transport.sent] == ["ListWorkflowsRequest"] * 2
    assert transport.sent[0].record == {
        "query": "WorkflowType = 'X'",
        "page_size": 2,
        "next_page_token": b"",
    }
    first = executions[0]
    assert first.status is WorkflowExecutionStatus.RUNNING and first.close_time is None
    assert first.start_time == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert (first.parent_id, first.parent_run_id) == ("parent", "pr")
    assert run(first.memo_value("note", type_hint=Order)) == Order("m", 1)
    assert executions[2].status is WorkflowExecutionStatus.COMPLETED

    async def limited() -> list[str]:
        return [e.id async for e in client.list_workflows(limit=1)]

    assert run(limited()) == ["wf-0"]


def test_count_workflows_and_an_invalid_query() -> None:
    def answer(sent: Sent) -> Body:
        if sent.record["query"] == "bad":
            return reply("CommandRejected", {"code": "INVALID_ARGUMENT", "message": "no"})
        return reply("CountWorkflowsResult", {"count": 7})

    client, transport = client_for(answer)
    count = run(client.count_workflows("ExecutionStatus = 'Running'"))
    assert (count.count, list(count.groups)) == (7, [])
    assert transport.sent[0].body == (
        "cadenza.visibility.CountWorkflowsRequest",
        {"query": "ExecutionStatus = 'Running'"},
    )
    with pytest.raises(CadenzaServiceError, match="INVALID_ARGUMENT: no"):
        run(client.count_workflows("bad"))


class _Narrowing(OutboundInterceptor):
    """Rewrites list and count queries (an interceptor may change the input)."""

    def list_workflows(self, input: ListWorkflowsInput) -> Any:
        input.query = f"({input.query}) AND TaskQueue = 'mine'"
        return self.next.list_workflows(input)

    async def count_workflows(self, input: CountWorkflowsInput) -> Any:
        input.query = "TaskQueue = 'mine'"
        return await self.next.count_workflows(input)


class _Narrow(Interceptor):
    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Narrowing(next)


def test_list_and_count_go_through_the_client_interceptors() -> None:
    def answer(sent: Sent) -> Body:
        if sent.name == "CountWorkflowsRequest":
            return reply("CountWorkflowsResult", {"count": 2})
        return reply("ListWorkflowsResult", {"executions": [_info(0)], "next_page_token": b""})

    transport = ScriptedTransport(answer)
    client = Client(cast(Transport, transport), interceptors=[_Narrow()])

    async def collect() -> list[str]:
        return [e.id async for e in client.list_workflows("WorkflowType = 'X'")]

    assert run(collect()) == ["wf-0"]
    assert run(client.count_workflows()).count == 2
    queries = [s.record["query"] for s in transport.sent]
    assert queries == ["(WorkflowType = 'X') AND TaskQueue = 'mine'", "TaskQueue = 'mine'"]
    with pytest.raises(TypeError, match="cadenza.client.Interceptor instances"):
        Client(cast(Transport, transport), interceptors=[object()])  # type: ignore[list-item]


class _Recording(OutboundInterceptor):
    async def complete_async_activity(self, input: CompleteAsyncActivityInput) -> None:
        input.result = f"{input.result} (seen)"
        await self.next.complete_async_activity(input)

    async def heartbeat_async_activity(self, input: HeartbeatAsyncActivityInput) -> None:
        input.details = [*input.details, "seen"]
        await self.next.heartbeat_async_activity(input)


class _Record(Interceptor):
    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Recording(next)


def test_async_activity_completion_goes_through_the_client_interceptors() -> None:
    def answer(sent: Sent) -> Body:
        if sent.name == "ActivityTaskHeartbeat":
            return reply("HeartbeatResponse", {"run_id": "r", "cancel_requested": False})
        return reply("CommandAccepted", {"run_id": "r"})

    transport = ScriptedTransport(answer)
    client = Client(cast(Transport, transport), interceptors=[_Record()])
    token = TaskToken("wf", "r", "act-1", 5, 2).encode()
    handle = client.get_async_activity_handle(task_token=token)
    run(handle.heartbeat("half"))
    run(handle.complete("done"))
    beat, done = transport.sent
    assert (beat.workflow_id, beat.run_id) == ("wf", "r")
    assert [DC.payload_converter.from_payload(p) for p in beat.record["details"]] == [
        "half",
        "seen",
    ]
    assert {k: done.record[k] for k in ("scheduled_event_id", "attempt", "activity_id")} == {
        "scheduled_event_id": 5,
        "attempt": 2,
        "activity_id": "act-1",
    }
    assert DC.payload_converter.from_payload(done.record["result"][0]) == "done (seen)"
    # By ids: the current attempt (scheduled event id 0, attempt 0).
    run(client.get_async_activity_handle(workflow_id="wf", activity_id="act-1").complete(1))
    by_ids = transport.sent[-1]
    assert (by_ids.record["scheduled_event_id"], by_ids.record["attempt"]) == (0, 0)


def test_client_properties() -> None:
    client, transport = client_for(accepted)
    assert client.transport is cast(Transport, transport)
    assert client.namespace == "cadenza"
    assert client.identity == "tester@host"
    assert client.data_converter is DataConverter.default
    assert client.rpc_timeout == timedelta(seconds=10)
    with pytest.raises(ValueError, match="rpc_timeout"):
        Client(cast(Transport, transport), rpc_timeout=timedelta(0))
