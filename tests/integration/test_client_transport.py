"""The Transport on a real broker: partitioning, acknowledgements, request and reply.

``EngineStandIn`` (also used by ``test_client_workflows.py``) answers commands in
place of the engine; it exercises only the client's request/reply plumbing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from cadenza import Settings, schemas
from cadenza._murmur2 import partition_for
from cadenza._transport import DeliveryError, Transport, TransportError
from cadenza.exceptions import RPCTimeoutOrCancelledError
from cadenza.topics import TopicAdmin, commands_topic, replies_topic

Body = tuple[str, dict[str, Any]]
Handler = Callable[[dict[str, Any]], Body | None]


@dataclasses.dataclass(frozen=True)
class ReceivedCommand:
    """A command the stand-in read, and where it was."""

    partition: int
    offset: int
    key: bytes
    command: dict[str, Any]


class EngineStandIn:
    """Answers commands in place of the engine, to test the client's request/reply plumbing.

    It exercises only the client's request/reply plumbing: it reads every partition
    of ``<ns>.commands`` from the beginning, records each command with its partition,
    and, for a command with a ``reply_to``, produces the body ``handler`` returns as a
    ``Reply`` to the partition the request names (``None``: no answer now;
    :meth:`reply` can answer later). Nothing here decides like the engine does; the
    end-to-end tests against the real engine come with the engine.
    """

    def __init__(self, settings: Settings, handler: Handler | None = None) -> None:
        self.settings = settings
        self.handler: Handler = handler or (lambda command: None)
        self.received: list[ReceivedCommand] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._producer = Producer(settings.producer_config())
        self._consumer = Consumer(
            {
                **settings.kafka_config(),
                "group.id": f"standin-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
            }
        )
        topic = commands_topic(settings)
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> EngineStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()
        self._producer.flush(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._consumer.poll(0.05)
            if msg is None or msg.error() is not None:
                continue
            value = msg.value()
            key = msg.key()
            assert isinstance(value, bytes) and isinstance(key, bytes)
            command = schemas.decode_as(value, schemas.COMMAND)
            received = ReceivedCommand(msg.partition() or 0, msg.offset() or 0, key, command)
            with self._cond:
                self.received.append(received)
                self._cond.notify_all()
            if command["reply_to"] is None:
                continue
            body = self.handler(command)
            if body is not None:
                self.reply(command, body)

    def reply(self, command: dict[str, Any], body: Body, *, run_id: str | None = None) -> None:
        """Produce ``body`` as the Reply to ``command`` (which must have a reply_to)."""
        reply_to = command["reply_to"]
        reply = {
            "request_id": reply_to["request_id"],
            "workflow_id": command["workflow_id"],
            "run_id": run_id if run_id is not None else command["run_id"],
            "body": body,
        }
        self._producer.produce(
            replies_topic(self.settings),
            schemas.encode(schemas.REPLY, reply),
            reply_to["request_id"].encode(),
            partition=reply_to["partition"],
        )
        self._producer.flush(10)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedCommand]:
        """The first ``count`` commands, once that many have arrived."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} commands arrived, wanted {count}")
            return list(self.received[:count])

    def bodies(self, name: str) -> list[ReceivedCommand]:
        """The commands received so far whose body is ``cadenza.command.<name>``."""
        with self._cond:
            return [r for r in self.received if r.command["body"][0] == f"cadenza.command.{name}"]


@pytest.fixture
def topics(settings: Settings) -> Settings:
    TopicAdmin(settings).create()
    return settings


def accepted(command: dict[str, Any]) -> Body:
    return ("cadenza.reply.CommandAccepted", {"note": command["command_id"]})


def test_connect_fails_clearly_without_topics(settings: Settings) -> None:
    expected = f"cadenza topics create --namespace {settings.namespace}"
    with pytest.raises(TransportError, match=expected):
        asyncio.run(Transport.connect(settings))


def test_connect_fails_clearly_without_kafka(settings: Settings) -> None:
    nowhere = dataclasses.replace(settings, bootstrap_servers="127.0.0.1:1")
    with pytest.raises(TransportError, match="cannot reach Kafka at 127.0.0.1:1"):
        asyncio.run(Transport.connect(nowhere, timeout=1))


def test_round_trip_through_the_stand_in(topics: Settings) -> None:
    async def main() -> None:
        transport = await Transport.connect(topics, identity="tester")
        try:
            assert 0 <= transport.reply_partition < topics.reply_partitions
            reply = await transport.send_command(
                "wf-1",
                ("cadenza.command.SignalWorkflow", {"signal_name": "go", "signal_id": "s1"}),
                want_reply=True,
                timeout=10,
            )
            assert reply is not None
            assert reply["workflow_id"] == "wf-1"
            name, body = reply["body"]
            assert name == "cadenza.reply.CommandAccepted"
            command = standin.wait_for(1)[0].command
            assert body["note"] == command["command_id"]
            assert command["identity"] == "tester"
            assert command["reply_to"]["client_id"] == transport.client_id
            assert command["reply_to"]["partition"] == transport.reply_partition
            assert reply["request_id"] == command["reply_to"]["request_id"]
            assert abs(command["sent_time_ms"] - time.time() * 1000) < 60_000
        finally:
            await transport.close()

    with EngineStandIn(topics, accepted) as standin:
        asyncio.run(main())


def test_many_concurrent_requests_get_their_own_replies(topics: Settings) -> None:
    async def main() -> None:
        async with await Transport.connect(topics) as transport:
            replies = await asyncio.gather(
                *(
                    transport.send_command(
                        f"wf-{i}",
                        ("cadenza.command.DescribeWorkflow", {"include_pending": False}),
                        want_reply=True,
                        timeout=20,
                    )
                    for i in range(40)
                )
            )
            assert [r["workflow_id"] for r in replies if r] == [f"wf-{i}" for i in range(40)]

    with EngineStandIn(topics, accepted):
        asyncio.run(main())


def test_commands_land_on_the_murmur2_partition(topics: Settings) -> None:
    ids = [f"order-{i}" for i in range(30)] + ["ünïcödé-id", "x"]

    async def main() -> None:
        async with await Transport.connect(topics) as transport:
            for workflow_id in ids:
                await transport.send_command(
                    workflow_id, ("cadenza.command.TerminateWorkflow", {"reason": "t"})
                )

    with EngineStandIn(topics) as standin:
        asyncio.run(main())
        received = standin.wait_for(len(ids))
    partitions = topics.partitions
    seen = {r.command["workflow_id"]: r for r in received}
    for workflow_id in ids:
        assert seen[workflow_id].key == workflow_id.encode()
        assert seen[workflow_id].partition == partition_for(workflow_id.encode(), partitions)
    assert len({r.partition for r in received}) > 1


def test_a_plain_murmur2_producer_agrees_with_partition_for(topics: Settings) -> None:
    # confluent-kafka with the producer config every Cadenza producer uses.
    config = topics.producer_config()
    assert config["partitioner"] == "murmur2_random"
    producer = Producer(config)
    topic = commands_topic(topics)
    placed: dict[bytes, int] = {}

    def on_delivery(err: Any, msg: Any) -> None:
        assert err is None
        placed[msg.key()] = msg.partition()

    keys = [f"k{i}".encode() for i in range(100)]
    for key in keys:
        producer.produce(topic, b"x", key, on_delivery=on_delivery)
    assert producer.flush(20) == 0
    assert {k: partition_for(k, topics.partitions) for k in keys} == placed


def test_no_reply_times_out_naming_the_engine(topics: Settings) -> None:
    async def main() -> None:
        async with await Transport.connect(topics) as transport:
            started = time.monotonic()
            with pytest.raises(RPCTimeoutOrCancelledError, match="cadenza processors run") as e:
                await transport.send_command(
                    "wf-1",
                    ("cadenza.command.DescribeWorkflow", {"include_pending": True}),
                    want_reply=True,
                    timeout=0.5,
                )
            assert time.monotonic() - started < 5
            assert not transport._pending  # the waiter was forgotten
            # It says where the command is, for comparing with the engine's offsets.
            partition = partition_for(b"wf-1", topics.partitions)
            where = f"(the command is at {commands_topic(topics)}[{partition}]@0)"
            assert where in str(e.value), str(e.value)
            position = await transport.send(commands_topic(topics), b"wf-1", b"x")
            assert position == (partition, 1)

    asyncio.run(main())


def test_replies_for_unknown_requests_are_dropped(topics: Settings) -> None:
    async def main() -> None:
        async with await Transport.connect(topics) as transport:
            stray = {"client_id": "other", "partition": transport.reply_partition}
            await transport.send_reply(
                {**stray, "request_id": "nobody-waits"},
                workflow_id="wf",
                run_id=None,
                body=("cadenza.reply.CommandAccepted", {"note": ""}),
            )
            # A reply produced by send_reply reaches a waiting new_reply_to future.
            reply_to, future = transport.new_reply_to()
            await transport.send_reply(
                reply_to,
                workflow_id="wf",
                run_id="r1",
                body=("cadenza.reply.WorkflowStarted", {"run_id": "r1", "started": True}),
            )
            reply = await asyncio.wait_for(future, 10)
            assert reply["run_id"] == "r1"
            assert reply["body"] == (
                "cadenza.reply.WorkflowStarted",
                {"run_id": "r1", "started": True, "eager_workflow_task": None},  # its default
            )

    asyncio.run(main())


def test_replies_arriving_together_each_reach_their_request(topics: Settings) -> None:
    # Read in one batch: a burst of replies, with a record that is not a reply and
    # one nobody waits for in the middle; every waiting future gets its own.
    async def main() -> None:
        async with await Transport.connect(topics) as transport:
            waiting = [transport.new_reply_to() for _ in range(60)]
            producer = Producer({**topics.producer_config(), "linger.ms": 50})
            topic = replies_topic(topics)
            for i, (reply_to, _) in enumerate(waiting):
                if i == 30:
                    producer.produce(topic, b"not avro", partition=transport.reply_partition)
                    stray = {**reply_to, "request_id": "nobody-waits"}
                    producer.produce(topic, _reply(stray, "stray"), partition=stray["partition"])
                producer.produce(topic, _reply(reply_to, f"r{i}"), partition=reply_to["partition"])
            assert producer.flush(10) == 0
            replies = await asyncio.wait_for(asyncio.gather(*(f for _, f in waiting)), 10)
            assert [r["run_id"] for r in replies] == [f"r{i}" for i in range(60)]

    asyncio.run(main())


def _reply(reply_to: dict[str, Any], run_id: str) -> bytes:
    return schemas.encode(
        schemas.REPLY,
        {
            "request_id": reply_to["request_id"],
            "workflow_id": "wf",
            "run_id": run_id,
            "body": ("cadenza.reply.WorkflowStarted", {"run_id": run_id, "started": True}),
        },
    )


def test_send_to_a_missing_partition_raises_delivery_error(topics: Settings) -> None:
    async def main() -> None:
        async with await Transport.connect(topics) as transport:
            with pytest.raises(DeliveryError):
                await transport.send(
                    replies_topic(topics), b"k", b"v", partition=topics.reply_partitions + 5
                )

    asyncio.run(main())


def test_close_fails_pending_requests(topics: Settings) -> None:
    async def main() -> None:
        transport = await Transport.connect(topics)
        _, future = transport.new_reply_to()
        await transport.close()
        with pytest.raises(TransportError, match="closed"):
            await future
        await transport.close()  # harmless twice
        with pytest.raises(TransportError, match="closed"):
            transport.new_reply_to()

    asyncio.run(main())
