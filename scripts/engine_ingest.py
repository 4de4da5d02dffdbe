"""Measure the engine alone: how fast one engine process takes StartWorkflow commands.

    .venv/bin/python scripts/engine_ingest.py [--count 20000] [--partitions 4]

Produces N start commands to a fresh namespace first, then runs one engine
process over them and reports commands/s (each start writes three history
events, a state changelog record, a timer index entry and a workflow task, in
Kafka transactions), CPU microseconds per command, and the engine's peak RSS. Needs a broker
(CADENZA_BOOTSTRAP_SERVERS, or the local one).
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import tempfile
import threading
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

from cadenza import Settings, schemas
from cadenza.processors._runtime import tune_gc
from cadenza.processors.engine import Engine
from cadenza.topics import TopicAdmin, commands_topic, consumer_group


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    settings = dataclasses.replace(
        Settings.from_env(), namespace=f"bench{uuid.uuid4().hex[:8]}", partitions=args.partitions
    )
    admin = TopicAdmin(settings)
    admin.create(task_queues=["bench"])
    try:
        _run(settings, args.count, args.partitions)
    finally:
        admin.delete_namespace()  # a one-node broker runs out of open files otherwise


def _run(settings: Settings, count: int, partitions_count: int) -> None:
    producer = Producer({**settings.producer_config(), "linger.ms": 5})
    topic = commands_topic(settings)
    started = time.monotonic()
    for i in range(count):
        command = {
            "command_id": str(uuid.uuid4()),
            "workflow_id": f"wf-{i}",
            "run_id": None,
            "sent_time_ms": int(time.time() * 1000),
            "body": (
                "cadenza.command.StartWorkflow",
                {
                    "workflow_type": "W",
                    "task_queue": "bench",
                    "request_id": str(i),
                    "input": [{"metadata": {"encoding": b"json/plain"}, "data": b"1"}],
                },
            ),
        }
        while True:
            try:
                producer.produce(
                    topic, key=f"wf-{i}".encode(), value=schemas.encode(schemas.COMMAND, command)
                )
                break
            except BufferError:
                producer.poll(0.1)
    producer.flush()
    print(f"produced {count} starts in {time.monotonic() - started:.1f}s", flush=True)

    tune_gc()  # as `cadenza processors run` does
    engine = Engine(settings, data_dir=tempfile.mkdtemp())
    thread = threading.Thread(target=engine.run, daemon=True)
    probe = Consumer({**settings.kafka_config(), "group.id": consumer_group(settings, "engine")})
    partitions = [TopicPartition(topic, p) for p in range(partitions_count)]
    thread.start()
    first = None
    while True:
        time.sleep(0.5)
        committed = probe.committed(partitions, 10)
        done = sum(max(tp.offset, 0) for tp in committed)
        if done and first is None:
            first = (time.monotonic(), done, _cpu_seconds())
        if done >= count:
            break
    elapsed = time.monotonic() - first[0]
    cpu = _cpu_seconds() - first[2]
    engine.stop()
    thread.join(30)
    probe.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"engine: {count - first[1]} starts in {elapsed:.1f}s = "
        f"{(count - first[1]) / elapsed:,.0f} commands/s; peak RSS {rss:.0f} MiB; "
        f"{cpu / (count - first[1]) * 1e6:.0f} CPU-us per command "
        f"(= {(count - first[1]) / cpu:,.0f} commands per CPU-second)"
    )


def _cpu_seconds() -> float:
    """CPU time of this process (the engine thread and librdkafka's threads; the
    producer of the commands is done by then): robust where wall time is not, on a
    shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
