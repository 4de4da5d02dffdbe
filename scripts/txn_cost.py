"""What one small Kafka transaction costs, in wall time and in the broker's CPU.

    .venv/bin/python scripts/txn_cost.py [--transactions 300]

An engine hop at light load is one transaction of a few records (the events,
the state, the task, the consumed offsets). This measures such a transaction
alone, with the engine's producer settings and five records over four
partitions: the first produce of a transaction (librdkafka registers the
partitions with the coordinator first: AddPartitionsToTxn), the same produce
once they are registered, send_offsets_to_transaction, commit_transaction; an
idempotent, non-transactional produce for comparison; and the CPU the broker
spends per transaction (the java process listening on the bootstrap port).
Needs a broker (CADENZA_BOOTSTRAP_SERVERS, or the local one).
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cadenza import Settings
from cadenza.bench._procs import find_listener_pid, sample_pid

PARTITIONS = 4
RECORDS = 5
VALUE = b"v" * 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=300)
    args = parser.parse_args()
    settings = Settings.from_env()
    bootstrap = settings.resolved_bootstrap_servers
    topic = f"txncost{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result()
    broker = find_listener_pid(int(bootstrap.split(",")[0].rsplit(":", 1)[1]))
    group = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}.group"})
    try:
        plain = Producer({**settings.producer_config(), "linger.ms": 0})
        _report(
            "idempotent produce + ack (no transaction)",
            _times(args.transactions, lambda: _produce(plain, topic)),
        )
        producer = Producer(
            {
                **settings.producer_config(),
                "transactional.id": f"{topic}.txn",
                "linger.ms": 1,
                "retry.backoff.ms": 2,
                "retry.backoff.max.ms": 100,
            }
        )
        producer.init_transactions(30)
        phases: dict[str, list[float]] = {
            "first produce + ack (AddPartitionsToTxn)": [],
            "second produce + ack (partitions registered)": [],
            "send_offsets_to_transaction": [],
            "commit_transaction": [],
        }
        cpu_before = _cpu(broker)
        started = time.monotonic()
        for i in range(args.transactions):
            producer.begin_transaction()
            steps: list[Callable[[], object]] = [
                lambda: _produce(producer, topic),
                lambda: _produce(producer, topic),
                lambda i=i: producer.send_offsets_to_transaction(
                    [TopicPartition(topic, 0, i)], group.consumer_group_metadata(), 30
                ),
                lambda: producer.commit_transaction(30),
            ]
            for samples, step in zip(phases.values(), steps, strict=True):
                t = time.perf_counter()
                step()
                samples.append(time.perf_counter() - t)
        wall = time.monotonic() - started
        cpu = _cpu(broker) - cpu_before
        for name, samples in phases.items():
            _report(name, samples)
        each = 1000 / args.transactions
        print(
            f"{args.transactions} transactions in {wall:.1f} s ({wall * each:.1f} ms each); "
            f"broker CPU {cpu * each:.2f} ms per transaction"
            + ("" if broker else " (broker process not found: not on this machine?)")
        )
    finally:
        group.close()
        admin.delete_topics([topic])


def _produce(producer: Producer, topic: str) -> None:
    for k in range(RECORDS):
        producer.produce(topic, VALUE, key=b"k", partition=k % PARTITIONS)
    producer.flush(30)


def _times(n: int, step: Callable[[], None]) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        step()
        out.append(time.perf_counter() - t)
    return out


def _report(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p50, p90 = ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.9)]
    print(f"{name:46} p50 {p50 * 1000:6.2f} ms  p90 {p90 * 1000:6.2f} ms")


def _cpu(pid: int | None) -> float:
    sample = sample_pid(pid) if pid else None
    return sample.cpu_seconds if sample else 0.0


if __name__ == "__main__":
    main()
