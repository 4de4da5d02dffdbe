"""``cadenza.client`` on a real broker, answered by ``EngineStandIn``.

The stand-in (from ``test_client_transport.py``) plays a toy engine here: it
exercises only the client's request/reply plumbing (commands out on
``<ns>.commands``, replies back on the client's partition of ``<ns>.replies``).
The end-to-end tests against the real engine come with the engine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
from confluent_kafka import Producer

from cadenza import Settings, schemas, workflow
from cadenza._murmur2 import partition_for
from cadenza.client import (
    CadenzaServiceError,
    Client,
    RPCTimeoutOrCancelledError,
    TransportError,
    WorkflowAlreadyStartedError,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
)
from cadenza.converter import DataConverter
from cadenza.exceptions import CancelledError, TerminatedError
from cadenza.topics import TopicAdmin, history_topic
from tests.integration.test_client_transport import Body, EngineStandIn

DC = DataConverter.default
PC = DC.payload_converter


@dataclasses.dataclass
class Cart:
    items: list[str]


@workflow.defn
class CartWorkflow:
    """Only its definition is used: the stand-in answers in its place."""

    @workflow.run
    async def run(self, cart: Cart) -> Cart:
        return cart

    @workflow.signal
    def add(self, item: str) -> None:
        pass

    @workflow.signal
    def checkout(self) -> None:
        pass

    @workflow.query
    def size(self) -> int:
        return 0


@dataclasses.dataclass
class ToyRun:
    run_id: str
    workflow_type: str
    items: list[str]
    status: str = "RUNNING"
    result: list[Any] = dataclasses.field(default_factory=list)
    failure: Any = None
    waiters: list[dict[str, Any]] = dataclasses.field(default_factory=list)


class ToyEngine:
    """Decides just enough for the client calls: start, result, signal, query, cancel,
    terminate, describe. Runs on the stand-in's thread."""

    def __init__(self) -> None:
        self.runs: dict[str, ToyRun] = {}
        self.standin: EngineStandIn | None = None
        self.lock = threading.Lock()

    def __call__(self, command: dict[str, Any]) -> Body | None:
        with self.lock:
            return self.decide(command)

    def decide(self, command: dict[str, Any]) -> Body | None:
        name, body = command["body"]
        name = name.rsplit(".", 1)[-1]
        wid = command["workflow_id"]
        found = self.runs.get(wid)
        if name == "StartWorkflow":
            if found is not None and found.status == "RUNNING":
                return rejected("ALREADY_STARTED", f"{wid} is running")
            cart = PC.from_payload(body["input"][0], Cart)
            self.runs[wid] = ToyRun(str(uuid.uuid4()), body["workflow_type"], cart.items)
            return (
                "cadenza.reply.WorkflowStarted",
                {"run_id": self.runs[wid].run_id, "started": True},
            )
        if found is None:
            return rejected("NOT_FOUND", f"workflow {wid} not found")
        if name == "GetWorkflowResult":
            if found.status == "RUNNING":
                found.waiters.append(command)
                return None
            return self.result_of(found)
        if name == "DescribeWorkflow":
            assert self.standin is not None
            self.standin.reply(command, description(found), run_id=found.run_id)
            return None
        if found.status != "RUNNING" and name != "QueryWorkflow":
            return rejected("ALREADY_CLOSED", f"workflow {wid} is closed")
        if name == "SignalWorkflow":
            if body["signal_name"] == "add":
                found.items.append(PC.from_payload(body["input"][0], str))
            elif body["signal_name"] == "checkout":
                self.close(found, "COMPLETED", result=[PC.to_payload(Cart(found.items))])
            return ("cadenza.reply.CommandAccepted", {"note": ""})
        if name == "QueryWorkflow":
            if body["query_type"] != "size":
                failure = DC.failure_converter.to_failure(
                    ValueError(f"no query handler {body['query_type']!r}"), PC
                )
                return (
                    "cadenza.reply.QueryResult",
                    {"query_id": body["query_id"], "failure": failure},
                )
            return (
                "cadenza.reply.QueryResult",
                {"query_id": body["query_id"], "result": [PC.to_payload(len(found.items))]},
            )
        if name == "RequestCancelWorkflow":
            self.close(
                found, "CANCELED", failure=DC.failure_converter.to_failure(CancelledError(), PC)
            )
            return ("cadenza.reply.CommandAccepted", {"note": ""})
        if name == "TerminateWorkflow":
            failure = DC.failure_converter.to_failure(TerminatedError(body["reason"]), PC)
            self.close(found, "TERMINATED", failure=failure)
            return ("cadenza.reply.CommandAccepted", {"note": ""})
        return rejected("INVALID_ARGUMENT", f"the toy engine does not do {name}")

    def close(self, run: ToyRun, status: str, *, result: Any = (), failure: Any = None) -> None:
        run.status, run.result, run.failure = status, list(result), failure
        assert self.standin is not None
        for waiter in run.waiters:
            self.standin.reply(waiter, self.result_of(run), run_id=run.run_id)
        run.waiters.clear()

    @staticmethod
    def result_of(run: ToyRun) -> Body:
        return (
            "cadenza.reply.WorkflowResult",
            {
                "run_id": run.run_id,
                "status": run.status,
                "result": run.result,
                "failure": run.failure,
                "new_run_id": None,
            },
        )


def rejected(code: str, message: str) -> Body:
    return ("cadenza.reply.CommandRejected", {"code": code, "message": message})


def description(run: ToyRun) -> Body:
    return (
        "cadenza.reply.WorkflowDescription",
        {
            "workflow_type": run.workflow_type,
            "task_queue": "carts",
            "status": run.status,
            "start_time_ms": 1_700_000_000_000,
            "execution_time_ms": 1_700_000_000_000,
            "history_length": 3,
        },
    )


@pytest.fixture
def topics(settings: Settings) -> Settings:
    TopicAdmin(settings).create()
    return settings


@pytest.fixture
def toy(topics: Settings) -> Any:
    engine = ToyEngine()
    with EngineStandIn(topics, engine) as standin:
        engine.standin = standin
        yield engine


def test_connect_names_the_missing_topics(settings: Settings) -> None:
    with pytest.raises(TransportError, match="cadenza topics create"):
        asyncio.run(Client.connect(settings=settings))


def test_start_signal_query_and_result(topics: Settings, toy: ToyEngine) -> None:
    async def main() -> None:
        async with await Client.connect(settings=topics, identity="shop-1") as client:
            assert client.namespace == topics.namespace
            handle = await client.start_workflow(
                CartWorkflow.run, Cart(["apple"]), id="cart-1", task_queue="carts"
            )
            assert handle.result_run_id == toy.runs["cart-1"].run_id
            waiting = asyncio.create_task(handle.result())
            await handle.signal(CartWorkflow.add, "pear")
            assert await handle.query(CartWorkflow.size) == 2
            with pytest.raises(WorkflowQueryFailedError, match="no query handler 'nope'"):
                await handle.query("nope")
            await asyncio.sleep(0.2)
            assert not waiting.done()  # the result waits for the run to close
            await handle.signal("checkout")
            assert await asyncio.wait_for(waiting, 10) == Cart(["apple", "pear"])
            # A closed run answers at once, to any client.
            assert await client.get_workflow_handle("cart-1").result() == {
                "items": ["apple", "pear"]
            }
            description = await handle.describe()
            assert description.status is WorkflowExecutionStatus.COMPLETED
            assert description.run_id == handle.result_run_id

    asyncio.run(main())


def test_another_client_process_gets_the_result(topics: Settings, toy: ToyEngine) -> None:
    async def main() -> None:
        async with (
            await Client.connect(settings=topics) as starter,
            await Client.connect(settings=topics) as watcher,
        ):
            assert starter.transport.client_id != watcher.transport.client_id
            await starter.start_workflow(
                CartWorkflow.run, Cart([]), id="cart-2", task_queue="carts"
            )
            handle = watcher.get_workflow_handle_for(CartWorkflow.run, "cart-2")
            waiting = asyncio.create_task(handle.result())
            await asyncio.sleep(0.2)
            await starter.get_workflow_handle("cart-2").signal(CartWorkflow.checkout)
            assert await asyncio.wait_for(waiting, 10) == Cart([])

    asyncio.run(main())


def test_start_twice_is_already_started(topics: Settings, toy: ToyEngine) -> None:
    async def main() -> None:
        async with await Client.connect(settings=topics) as client:
            await client.start_workflow(CartWorkflow.run, Cart([]), id="cart-3", task_queue="carts")
            with pytest.raises(WorkflowAlreadyStartedError) as info:
                await client.start_workflow(
                    CartWorkflow.run, Cart([]), id="cart-3", task_queue="carts"
                )
            assert info.value.workflow_type == "CartWorkflow"

    asyncio.run(main())


def test_cancel_and_terminate_end_the_result(topics: Settings, toy: ToyEngine) -> None:
    async def main() -> None:
        async with await Client.connect(settings=topics) as client:
            cancelled = await client.start_workflow(
                CartWorkflow.run, Cart([]), id="cart-4", task_queue="carts"
            )
            await cancelled.cancel()
            with pytest.raises(WorkflowFailureError) as info:
                await cancelled.result()
            assert isinstance(info.value.cause, CancelledError)

            terminated = await client.start_workflow(
                CartWorkflow.run, Cart([]), id="cart-5", task_queue="carts"
            )
            waiting = asyncio.create_task(terminated.result())
            await asyncio.sleep(0.1)
            await terminated.terminate(reason="fraud")
            with pytest.raises(WorkflowFailureError) as info:
                await asyncio.wait_for(waiting, 10)
            assert isinstance(info.value.cause, TerminatedError)
            assert info.value.cause.message == "fraud"
            with pytest.raises(CadenzaServiceError) as rejected:
                await terminated.signal(CartWorkflow.add, "late")
            assert rejected.value.code == "ALREADY_CLOSED"
            with pytest.raises(CadenzaServiceError) as missing:
                await client.get_workflow_handle("no-such-cart").cancel()
            assert missing.value.code == "NOT_FOUND"

    asyncio.run(main())


def test_no_engine_means_a_timeout_naming_it(topics: Settings) -> None:
    async def main() -> None:
        async with await Client.connect(
            settings=topics, rpc_timeout=timedelta(milliseconds=500)
        ) as client:
            with pytest.raises(RPCTimeoutOrCancelledError, match="cadenza processors run"):
                await client.start_workflow(CartWorkflow.run, Cart([]), id="c", task_queue="carts")
            with pytest.raises(RPCTimeoutOrCancelledError, match="no worker"):
                await client.get_workflow_handle("c").query(CartWorkflow.size)

    asyncio.run(main())


# -- fetch_history ---------------------------------------------------------------------


def event(workflow_id: str, run_id: str, event_id: int, attributes: Body) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_time_ms": 1_700_000_000_000 + event_id,
        "workflow_id": workflow_id,
        "run_id": run_id,
        "attributes": attributes,
    }


def started(run_id: str) -> Body:
    return (
        "cadenza.history.WorkflowExecutionStarted",
        {
            "workflow_type": "CartWorkflow",
            "task_queue": "carts",
            "first_execution_run_id": "r1",
            "original_execution_run_id": run_id,
        },
    )


def signaled(name: str) -> Body:
    return ("cadenza.history.WorkflowExecutionSignaled", {"signal_name": name})


def continued(new_run_id: str) -> Body:
    return (
        "cadenza.history.WorkflowExecutionContinuedAsNew",
        {
            "new_execution_run_id": new_run_id,
            "workflow_type": "CartWorkflow",
            "task_queue": "carts",
        },
    )


def neighbour_of(workflow_id: str, partitions: int) -> str:
    """Another workflow id whose history shares ``workflow_id``'s partition."""
    target = partition_for(workflow_id.encode(), partitions)
    for i in range(10_000):
        candidate = f"other-{i}"
        if partition_for(candidate.encode(), partitions) == target:
            return candidate
    raise AssertionError("no neighbour found")


def test_fetch_history_reads_the_workflow_partition(topics: Settings) -> None:
    wid = "cart-history"
    other = neighbour_of(wid, topics.partitions)
    records = [
        event(wid, "r1", 1, started("r1")),
        event(other, "x1", 1, started("x1")),
        event(wid, "r1", 2, signaled("add")),
        event(wid, "r1", 3, continued("r2")),
        event(wid, "r2", 1, started("r2")),
        event(other, "x1", 2, signaled("add")),
        event(wid, "r2", 2, signaled("checkout")),
        event(wid, "r2", 2, signaled("checkout")),  # written twice: kept once
    ]
    producer = Producer(topics.producer_config())
    for record in records:
        producer.produce(
            history_topic(topics),
            schemas.encode(schemas.HISTORY_EVENT, record),
            record["workflow_id"].encode(),
        )
    assert producer.flush(10) == 0

    async def main() -> None:
        async with await Client.connect(settings=topics) as client:
            latest = await client.get_workflow_handle(wid).fetch_history()
            assert latest.workflow_id == wid
            assert [(e["run_id"], e["event_id"]) for e in latest.events] == [("r2", 1), ("r2", 2)]
            assert latest.run_id == "r2"
            first = await client.get_workflow_handle(wid, run_id="r1").fetch_history()
            assert [e["event_id"] for e in first.events] == [1, 2, 3]
            assert (
                first.events[0]["attributes"]
                == schemas.decode_as(
                    schemas.encode(schemas.HISTORY_EVENT, records[0]), schemas.HISTORY_EVENT
                )["attributes"]
            )
            streamed = [
                e async for e in client.get_workflow_handle(wid, run_id="r1").fetch_history_events()
            ]
            assert streamed == list(first.events)
            nothing = await client.get_workflow_handle("never-ran").fetch_history()
            assert nothing.events == []

    asyncio.run(main())


def test_history_is_read_back_only_as_far_as_the_run_started(
    topics: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads go back from the partition's end in growing ranges, stopping at the
    range that holds the run's start, and a resumed read reads only what is new."""
    from cadenza.client import _history

    wid = "cart-long-partition"
    other = neighbour_of(wid, topics.partitions)
    topic = history_topic(topics)
    producer = Producer(topics.producer_config())

    def write(*records: dict[str, Any]) -> None:
        for record in records:
            producer.produce(
                topic,
                schemas.encode(schemas.HISTORY_EVENT, record),
                record["workflow_id"].encode(),
            )
        assert producer.flush(10) == 0

    fillers = 30_000  # more than the first two ranges (4,096 and 16,384 records)
    write(event(wid, "r1", 1, started("r1")), event(wid, "r1", 2, signaled("add")))
    write(*(event(other, "x", i + 1, signaled("noise")) for i in range(fillers)))
    write(event(wid, "r1", 3, continued("r2")), event(wid, "r2", 1, started("r2")))
    write(*(event(other, "x", fillers + i + 1, signaled("noise")) for i in range(100)))

    ranges: list[tuple[int, int]] = []
    read = _history._Reader.read

    def spy(self: Any, start: int, end: int) -> list[dict[str, Any]]:
        ranges.append((start, end))
        return read(self, start, end)

    monkeypatch.setattr(_history._Reader, "read", spy)
    partitions = topics.partitions

    latest = _history.read_history(topics, wid, None, partitions=partitions)
    assert latest.run_id == "r2"
    assert [e["event_id"] for e in latest.events] == [1]
    assert len(ranges) == 1, "r2 started within the first range back from the end"
    end = latest.next_offset
    assert ranges[0] == (end - 4096, end)

    ranges.clear()
    pinned = _history.read_history(topics, wid, "r1", partitions=partitions)
    assert [e["event_id"] for e in pinned.events] == [1, 2, 3]
    assert ranges[-1][0] == 0, "r1 started at the partition's beginning"
    assert [b - a for a, b in ranges] == [4096, 16384, end - 4096 - 16384]

    # Resumed reads: r2 goes on, then continues as new into r3.
    write(event(wid, "r2", 2, signaled("checkout")), event(other, "x", 0, signaled("noise")))
    ranges.clear()
    assert _history.read_history(topics, wid, None, partitions=partitions, since=latest) is latest
    assert ranges == [(end, latest.next_offset)]
    assert [e["event_id"] for e in latest.events] == [1, 2]
    pinned_before = list(pinned.events)
    _history.read_history(topics, wid, "r1", partitions=partitions, since=pinned)
    assert pinned.events == pinned_before, "r1 closed: nothing new for it"

    write(
        event(wid, "r2", 2, signaled("checkout")),  # written twice: kept once
        event(wid, "r2", 3, continued("r3")),
        event(wid, "r3", 1, started("r3")),
    )
    _history.read_history(topics, wid, None, partitions=partitions, since=latest)
    assert latest.run_id == "r3", "following the latest run moves on to the new run"
    assert [(e["run_id"], e["event_id"]) for e in latest.events] == [("r3", 1)]
    full = _history.read_history(topics, wid, "r2", partitions=partitions)
    assert [e["event_id"] for e in full.events] == [1, 2, 3]
