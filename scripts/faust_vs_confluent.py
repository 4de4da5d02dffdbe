"""Why the engine is not a faust agent: the same fold on faust vs confluent-kafka.

    .venv/bin/python scripts/faust_vs_confluent.py [--count 50000]   # needs a running broker

Produces N Avro commands to a fresh 4-partition topic, then folds them twice:
(1) confluent-kafka consumer + RocksDB write batch + one produced event per
command; (2) a faust-streaming agent doing the same with a RocksDB table and
``topic.send``. Prints commands/s for each. Measured on the 2-core machine:
confluent-kafka 69,341/s, faust 2,054/s (50,000 commands).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from rocksdict import Rdict, WriteBatch

from cadenza import Settings, schemas


def _command(i: int) -> bytes:
    body = {"signal_name": "s", "input": [{"metadata": {}, "data": b"1"}], "signal_id": str(i)}
    return schemas.encode(
        schemas.COMMAND,
        {
            "command_id": str(i),
            "workflow_id": f"wf-{i}",
            "run_id": None,
            "sent_time_ms": 0,
            "body": ("cadenza.command.SignalWorkflow", body),
        },
    )


def _event(command: dict) -> bytes:  # type: ignore[type-arg]
    body = command["body"][1]
    return schemas.encode(
        schemas.HISTORY_EVENT,
        {
            "event_id": 1,
            "event_time_ms": 0,
            "workflow_id": command["workflow_id"],
            "run_id": "r",
            "attributes": (
                "cadenza.history.WorkflowExecutionSignaled",
                {"signal_name": "s", "input": body["input"], "signal_id": body["signal_id"]},
            ),
        },
    )


def confluent_fold(servers: str, topic: str, n: int, db_path: str) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"ck-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    producer = Producer(
        {"bootstrap.servers": servers, "linger.ms": 1, "acks": "all", "enable.idempotence": True}
    )
    db = Rdict(db_path)
    got, started = 0, 0.0
    while got < n:
        msgs = consumer.consume(1000, 1.0)
        if not msgs:
            continue
        started = started or time.monotonic()
        wb = WriteBatch()
        for m in msgs:
            command = schemas.decode_as(m.value(), schemas.COMMAND)
            value = _event(command)
            wb.put(command["workflow_id"].encode(), value)
            producer.produce(topic + "-out", key=m.key(), value=value, partition=m.partition())
            got += 1
        db.write(wb)
        producer.poll(0)
        consumer.commit(asynchronous=True)
    producer.flush()
    elapsed = time.monotonic() - started
    consumer.close()
    db.close()
    return got / elapsed


def faust_fold(servers: str, topic: str, n: int, data_dir: str) -> float:
    import faust

    app = faust.App(
        f"fa-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{servers}",
        store="rocksdb://",
        datadir=data_dir,
        topic_partitions=4,
        web_enabled=False,
    )
    src = app.topic(topic, key_type=bytes, value_type=bytes, value_serializer="raw")
    out = app.topic(
        topic + "-fout", key_type=bytes, value_type=bytes, value_serializer="raw", partitions=4
    )
    table = app.Table("state", default=None, partitions=4, key_type=bytes, value_type=bytes)
    state = {"n": 0, "t": 0.0, "rate": 0.0}

    @app.agent(src)
    async def fold(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            state["t"] = state["t"] or time.monotonic()
            command = schemas.decode_as(event.value, schemas.COMMAND)
            value = _event(command)
            table[event.key] = value
            await out.send(key=event.key, value=value)
            state["n"] += 1
            if state["n"] == n:
                state["rate"] = n / (time.monotonic() - state["t"])
                # Printed here: faust's own shutdown can wait on in-flight events.
                print(f"faust agent fold:     {state['rate']:,.0f} commands/s", flush=True)
                await app.stop()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = faust.Worker(app, loglevel="WARNING", loop=loop)
    try:
        worker.execute_from_commandline()
    except SystemExit:
        pass
    return state["rate"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=50_000)
    args = parser.parse_args()
    settings = Settings.from_env()
    servers = settings.resolved_bootstrap_servers
    topic = f"bench-fold-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": servers})
    for f in admin.create_topics(
        [NewTopic(t, 4, 1) for t in (topic, topic + "-out", topic + "-fout")]
    ).values():
        f.result()
    producer = Producer({"bootstrap.servers": servers, "linger.ms": 5})
    for i in range(args.count):
        producer.produce(topic, key=f"wf-{i}".encode(), value=_command(i))
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush()
    tmp = tempfile.mkdtemp()
    try:
        rate = confluent_fold(servers, topic, args.count, tmp + "/ck")
        print(f"confluent-kafka fold: {rate:,.0f} commands/s", flush=True)
        faust_fold(servers, topic, args.count, tmp + "/fa")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        admin.delete_topics([topic, topic + "-out", topic + "-fout"])


if __name__ == "__main__":
    main()
