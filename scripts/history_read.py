"""Measure reading one run's history from the ``history`` topic, as the client,
the CLI's ``workflow show`` and the web UI read it.

    .venv/bin/python scripts/history_read.py --namespace NS [--repeat 3]

Fill a namespace first, e.g. ``cadenza bench replay --count 40000 --partitions 1
--namespace NS --keep-topics`` (three events per workflow, all in one partition).
For the workflows whose records sit at the partition's start, middle and end it
times a first read (``fetch_history``) and a resumed read (what following a run
reads each time), and prints the records the partition holds. Needs a broker
(CADENZA_BOOTSTRAP_SERVERS, or the local one).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
import uuid

from confluent_kafka import Consumer, TopicPartition

from cadenza import Settings
from cadenza.client._history import read_history
from cadenza.topics import history_topic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    settings = dataclasses.replace(Settings.from_env(), namespace=args.namespace)
    topic = history_topic(settings)
    consumer = Consumer(
        {**settings.kafka_config(), "group.id": uuid.uuid4().hex, "enable.auto.commit": False}
    )
    partitions = len(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    print(f"{topic}: {partitions} partitions; partition 0 holds offsets {low}..{high}")
    places = {"start": low, "middle": (low + high) // 2, "end": max(low, high - 10)}
    for place, offset in places.items():
        workflow_id = _key_at(consumer, TopicPartition(topic, 0, offset))
        first, resumed = [], []
        for _ in range(args.repeat):
            began = time.perf_counter()
            history = read_history(settings, workflow_id, None, partitions=partitions)
            first.append(time.perf_counter() - began)
            began = time.perf_counter()
            read_history(settings, workflow_id, None, partitions=partitions, since=history)
            resumed.append(time.perf_counter() - began)
        print(
            f"run at the {place:<6} ({workflow_id}, {len(history.events)} events): "
            f"first read {statistics.median(first) * 1000:7.1f} ms, "
            f"resumed {statistics.median(resumed) * 1000:5.1f} ms (median of {args.repeat})"
        )
    consumer.close()


def _key_at(consumer: Consumer, where: TopicPartition) -> str:
    consumer.assign([where])
    while True:
        msg = consumer.poll(5)
        if msg is not None and msg.error() is None and msg.key():
            return bytes(msg.key()).decode()


if __name__ == "__main__":
    main()
