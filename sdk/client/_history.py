"""Reading one workflow's events from the ``history`` topic.

History is keyed by workflow id, so a workflow's events all sit in one partition
(``partition_for(workflow id)``). Until the visibility projection serves history
over HTTP, the client reads that partition itself: from its first offset to the
end offset it has when the read starts, keeping the records of one workflow.
That costs a scan of the whole partition, shared by every workflow that hashes
to it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from .. import schemas
from .._murmur2 import partition_for
from .._settings import Settings
from .._transport import TransportError
from ..topics import history_topic

_STARTED = "cadenza.history.WorkflowExecutionStarted"
_POLL = 0.2
_STALL_TIMEOUT = 60.0
"""Seconds without a record (before the end offset) after which the read fails."""


def scan_history(
    settings: Settings,
    workflow_id: str,
    run_id: str | None,
    *,
    partitions: int,
    timeout: float | None = None,
) -> list[dict[str, Any]]:
    """The events of one run of ``workflow_id``, in the order the engine wrote them.

    Blocking: call it through ``asyncio.to_thread``.

    Args:
        settings: Cluster and namespace.
        workflow_id: Whose events to keep.
        run_id: Which run; ``None`` keeps the latest run (the last one that started).
        partitions: Partition count of the ``history`` topic.
        timeout: Seconds the whole read may take; ``None`` for no limit.

    Raises:
        TransportError: The partition cannot be read, or the read took too long.
    """
    topic = history_topic(settings)
    partition = partition_for(workflow_id.encode(), partitions)
    deadline = None if timeout is None else time.monotonic() + timeout
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"{settings.namespace}.history-reader.{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            # Reports the end of the partition even when its last offsets are
            # transaction markers, which are never delivered as records.
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        return _select_run(
            _read_partition(consumer, TopicPartition(topic, partition), workflow_id, deadline),
            run_id,
        )
    finally:
        consumer.close()


def _remaining(deadline: float | None) -> float:
    return 10.0 if deadline is None else max(0.1, deadline - time.monotonic())


def _read_partition(
    consumer: Consumer, where: TopicPartition, workflow_id: str, deadline: float | None
) -> list[dict[str, Any]]:
    label = f"{where.topic} partition {where.partition}"
    try:
        watermarks = consumer.get_watermark_offsets(where, timeout=_remaining(deadline))
    except KafkaException as exc:
        raise TransportError(f"cannot read the offsets of {label}: {exc}") from None
    if watermarks is None:
        raise TransportError(f"Kafka did not say where {label} ends")
    low, high = watermarks
    if high <= low:
        return []
    consumer.assign([TopicPartition(where.topic, where.partition, low)])
    key = workflow_id.encode()
    events: list[dict[str, Any]] = []
    last_progress = time.monotonic()
    while True:
        if deadline is not None and time.monotonic() > deadline:
            raise TransportError(f"reading {label} took longer than allowed")
        msg = consumer.poll(_POLL)
        if msg is None:
            if time.monotonic() - last_progress > _STALL_TIMEOUT:
                raise TransportError(f"no progress reading {label} for {_STALL_TIMEOUT:g}s")
            continue
        last_progress = time.monotonic()
        offset = msg.offset() or 0
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                if offset >= high:
                    return events
                continue
            raise TransportError(f"cannot read {label}: {error.str()}")
        value = msg.value()
        if msg.key() == key and isinstance(value, bytes):
            event = schemas.decode_as(value, schemas.HISTORY_EVENT)
            if event["workflow_id"] == workflow_id:
                events.append(event)
        if offset >= high - 1:
            return events


def _select_run(events: list[dict[str, Any]], run_id: str | None) -> list[dict[str, Any]]:
    if run_id is None:
        started = [e["run_id"] for e in events if e["attributes"][0] == _STARTED]
        if started:
            run_id = started[-1]
        elif events:
            run_id = events[-1]["run_id"]
        else:
            return []
    # A record written twice (a producer retry, an engine that crashed between writing
    # and committing) carries the same event id; the first copy is the one that counts.
    seen: set[int] = set()
    kept = []
    for event in events:
        if event["run_id"] != run_id or event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        kept.append(event)
    return kept


def event_name(event: Mapping[str, Any]) -> str:
    """The short name of an event's attributes, e.g. ``WorkflowExecutionStarted``."""
    return str(event["attributes"][0]).rsplit(".", 1)[-1]
