"""Another team, another language: start and signal a workflow with a plain Kafka producer and
the .avsc files alone, and follow it to completion on `history` with a plain consumer.

Nothing from Cadenza's client or codec is used on that side (only fastavro and
confluent-kafka); the engine and a Cadenza worker run the workflow.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from io import BytesIO
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import Consumer, Producer
from fastavro.repository.base import AbstractSchemaRepository
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form

from cadenza import Settings, workflow
from cadenza.client import Client
from cadenza.worker import Worker

from .engine_support import running_engine

AVRO = Path(__file__).resolve().parents[2] / "schemas" / "avro"


class _Files(AbstractSchemaRepository):  # type: ignore[misc]
    def load(self, name: str) -> Any:
        _, ns, short = name.split(".")
        return json.loads((AVRO / ns / f"{short}.avsc").read_text())


def _schema(name: str) -> tuple[Any, bytes]:
    schema = load_schema(name, repo=_Files())
    return schema, bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


@workflow.defn(name="OrderWorkflow")
class OrderWorkflow:
    def __init__(self) -> None:
        self.paid = False

    @workflow.run
    async def run(self, order: dict[str, Any]) -> str:
        await workflow.wait_condition(lambda: self.paid)
        return f"order {order['order']} shipped"

    @workflow.signal(name="paid")
    def on_paid(self) -> None:
        self.paid = True


def test_start_and_signal_with_plain_kafka(settings: Settings, tmp_path: Path) -> None:
    command_schema, command_fp = _schema("cadenza.command.Command")
    event_schema, event_fp = _schema("cadenza.history.HistoryEvent")
    ns = settings.namespace

    def command(body: tuple[str, dict[str, Any]]) -> bytes:
        out = BytesIO()
        fastavro.schemaless_writer(
            out,
            command_schema,
            {
                "command_id": f"native-{time.monotonic_ns()}",
                "workflow_id": "order-42",
                "run_id": None,
                "sent_time_ms": int(time.time() * 1000),
                "body": body,
            },
        )
        return b"\xc3\x01" + command_fp + out.getvalue()

    from cadenza.topics import TopicAdmin

    TopicAdmin(settings).create(task_queues=["orders"])
    stop = threading.Event()

    def worker() -> None:
        async def main() -> None:
            client = await Client.connect(settings=settings)
            async with Worker(client, task_queue="orders", workflows=[OrderWorkflow]):
                while not stop.is_set():
                    await asyncio.sleep(0.1)
            await client.close()

        asyncio.run(main())

    thread = threading.Thread(target=worker, daemon=True)
    with running_engine(settings, str(tmp_path)):
        thread.start()
        # The producer partitions as Kafka's Java client does (murmur2), as the contract says.
        producer = Producer(
            {
                "bootstrap.servers": settings.resolved_bootstrap_servers,
                "partitioner": "murmur2_random",
                "acks": "all",
            }
        )
        start = {
            "workflow_type": "OrderWorkflow",
            "task_queue": "orders",
            "request_id": "start-order-42",
            "input": [{"metadata": {"encoding": b"json/plain"}, "data": b'{"order": 42}'}],
        }
        producer.produce(
            f"{ns}.commands",
            key=b"order-42",
            value=command(("cadenza.command.StartWorkflow", start)),
        )
        producer.produce(
            f"{ns}.commands",
            key=b"order-42",
            value=command(
                ("cadenza.command.SignalWorkflow", {"signal_name": "paid", "signal_id": "pay-1"})
            ),
        )
        producer.flush(10)

        consumer = Consumer(
            {
                "bootstrap.servers": settings.resolved_bootstrap_servers,
                "group.id": "native-reader",
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
            }
        )
        consumer.subscribe([f"{ns}.history"])
        seen: list[str] = []
        result = None
        deadline = time.monotonic() + 30
        while result is None and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() or msg.key() != b"order-42":
                continue
            value = msg.value()
            assert value[:2] == b"\xc3\x01" and value[2:10] == event_fp
            event = fastavro.schemaless_reader(
                BytesIO(value[10:]), event_schema, None, return_record_name=True
            )
            name, attrs = event["attributes"]
            seen.append(name.rsplit(".", 1)[1])
            if name == "cadenza.history.WorkflowExecutionCompleted":
                result = json.loads(attrs["result"][0]["data"])
        consumer.close()
        stop.set()
        thread.join(20)
    assert result == "order 42 shipped"
    assert seen[0] == "WorkflowExecutionStarted" and "WorkflowExecutionSignaled" in seen
