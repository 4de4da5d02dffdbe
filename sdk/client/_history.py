"""Reading one workflow's events from the ``history`` topic.

History is keyed by workflow id, so a workflow's events all sit in one partition
(``partition_for(workflow id)``), shared with every workflow that hashes to it.
The client reads that partition itself, so history can be read without the
engine. It reads backwards in growing ranges from the partition's end, until a
range holds the start of the run it wants: a run that started recently costs a
read of the records written since, not of the whole partition. A run that began
long ago (or whose start Kafka's retention has deleted) still costs a read back
to its start (or to the partition's beginning).

:func:`read_history` also resumes: given what an earlier read returned, it reads
only the records written since, which is what following a running workflow needs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from .. import schemas
from .._murmur2 import partition_for
from .._settings import Settings
from .._transport import TransportError
from ..topics import history_topic

_STARTED = "cadenza.history.WorkflowExecutionStarted"
_POLL = 0.2
_BATCH = 1000
_FIRST_RANGE = 4096
"""Records read first, back from the partition's end."""
_GROWTH = 4
"""Each further range back is this many times longer than the one before."""
_STALL_TIMEOUT = 60.0
"""Seconds without a record (before the range's end) after which the read fails."""


@dataclass
class RunHistory:
    """One run's events as read so far, and where a later read resumes.

    Attributes:
        workflow_id: The workflow.
        run_id: The run the events belong to; ``None`` when none was found.
        events: Its events in the order the engine wrote them, each event once.
        partition: The ``history`` partition they were read from.
        next_offset: The offset a later read of the partition starts at.
        latest: True when the run was asked for as "the latest run", so a later
            read moves on to a newer run of the workflow when one starts.
    """

    workflow_id: str
    run_id: str | None
    events: list[dict[str, Any]]
    partition: int
    next_offset: int
    latest: bool
    _seen: set[int] = field(default_factory=set, repr=False)


def scan_history(
    settings: Settings,
    workflow_id: str,
    run_id: str | None,
    *,
    partitions: int,
    timeout: float | None = None,
) -> list[dict[str, Any]]:
    """The events of one run of ``workflow_id`` (see :func:`read_history`)."""
    return read_history(
        settings, workflow_id, run_id, partitions=partitions, timeout=timeout
    ).events


def read_history(
    settings: Settings,
    workflow_id: str,
    run_id: str | None,
    *,
    partitions: int,
    timeout: float | None = None,
    since: RunHistory | None = None,
) -> RunHistory:
    """The events of one run of ``workflow_id``, in the order the engine wrote them.

    Blocking: call it through ``asyncio.to_thread``.

    Args:
        settings: Cluster and namespace.
        workflow_id: Whose events to keep.
        run_id: Which run; ``None`` keeps the latest run (the last one that started).
        partitions: Partition count of the ``history`` topic.
        timeout: Seconds the whole read may take; ``None`` for no limit.
        since: An earlier read of the same workflow and ``run_id``: read only what
            was written after it, and return it extended (the same object).

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
            # The broker holds a fetch that finds nothing new (at the partition's
            # end) this long, and a read of the next range waits behind it: the
            # default (500 ms) made every read take half a second.
            "fetch.wait.max.ms": 10,
        }
    )
    try:
        reader = _Reader(consumer, topic, partition, workflow_id, deadline)
        low, high = reader.watermarks()
        if (
            since is not None
            and since.run_id is not None
            and since.partition == partition
            and low <= since.next_offset <= high
        ):
            _extend(since, reader.read(since.next_offset, high))
            since.next_offset = high
            return since
        return _latest_read(reader, low, high, run_id)
    finally:
        consumer.close()


def _latest_read(reader: _Reader, low: int, high: int, run_id: str | None) -> RunHistory:
    """Read back from ``high`` until the start of the run (or ``low``)."""
    ranges: list[list[dict[str, Any]]] = []
    end, length = high, _FIRST_RANGE
    while end > low:
        start = max(low, end - length)
        found = reader.read(start, end)
        ranges.append(found)
        if any(_starts(e, run_id) for e in found):
            break
        end, length = start, length * _GROWTH
    events = [event for found in reversed(ranges) for event in found]
    run = run_id if run_id is not None else _latest_run(events)
    history = RunHistory(reader.workflow_id, run, [], reader.partition, high, run_id is None)
    if run is not None:
        _keep(history, events)
    return history


def _extend(history: RunHistory, new: list[dict[str, Any]]) -> None:
    if history.latest:
        started = [e for e in new if e["attributes"][0] == _STARTED]
        if started and started[-1]["run_id"] != history.run_id:
            # The workflow started a newer run (continued as new, or started again).
            history.run_id = str(started[-1]["run_id"])
            history.events = []
            history._seen = set()
    _keep(history, new)


def _keep(history: RunHistory, events: list[dict[str, Any]]) -> None:
    # A record written twice (a producer retry, an engine that crashed between writing
    # and committing) carries the same event id; the first copy is the one that counts.
    for event in events:
        if event["run_id"] != history.run_id or event["event_id"] in history._seen:
            continue
        history._seen.add(event["event_id"])
        history.events.append(event)


def _starts(event: Mapping[str, Any], run_id: str | None) -> bool:
    return event["attributes"][0] == _STARTED and (run_id is None or event["run_id"] == run_id)


def _latest_run(events: list[dict[str, Any]]) -> str | None:
    started = [e["run_id"] for e in events if e["attributes"][0] == _STARTED]
    if started:
        return str(started[-1])
    return str(events[-1]["run_id"]) if events else None


class _Reader:
    """Reads the records of one workflow from ranges of one partition."""

    def __init__(
        self,
        consumer: Consumer,
        topic: str,
        partition: int,
        workflow_id: str,
        deadline: float | None,
    ) -> None:
        self.consumer = consumer
        self.topic = topic
        self.partition = partition
        self.workflow_id = workflow_id
        self.deadline = deadline
        self.label = f"{topic} partition {partition}"
        self.key = workflow_id.encode()

    def watermarks(self) -> tuple[int, int]:
        where = TopicPartition(self.topic, self.partition)
        try:
            watermarks = self.consumer.get_watermark_offsets(where, timeout=self._remaining())
        except KafkaException as exc:
            raise TransportError(f"cannot read the offsets of {self.label}: {exc}") from None
        if watermarks is None:
            raise TransportError(f"Kafka did not say where {self.label} ends")
        low, high = watermarks
        return low, max(low, high)

    def read(self, start: int, end: int) -> list[dict[str, Any]]:
        """The workflow's events among the records at offsets ``[start, end)``."""
        events: list[dict[str, Any]] = []
        if end <= start:
            return events
        self.consumer.assign([TopicPartition(self.topic, self.partition, start)])
        last_progress = time.monotonic()
        while True:
            if self.deadline is not None and time.monotonic() > self.deadline:
                raise TransportError(f"reading {self.label} took longer than allowed")
            # consume() waits for a whole batch; poll() waits for the first record.
            batch = self.consumer.consume(_BATCH, 0)
            if not batch:
                msg = self.consumer.poll(_POLL)
                batch = [] if msg is None else [msg]
            if not batch:
                if time.monotonic() - last_progress > _STALL_TIMEOUT:
                    raise TransportError(
                        f"no progress reading {self.label} for {_STALL_TIMEOUT:g}s"
                    )
                continue
            last_progress = time.monotonic()
            for msg in batch:
                offset = msg.offset() or 0
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        if offset >= end:
                            return events
                        continue
                    raise TransportError(f"cannot read {self.label}: {error.str()}")
                if offset < start:
                    continue  # fetched for an earlier range
                if offset >= end:
                    # The range ended in records that are never delivered (the
                    # markers of transactions, or records of aborted ones).
                    return events
                value = msg.value()
                if msg.key() == self.key and isinstance(value, bytes):
                    event = schemas.decode_as(value, schemas.HISTORY_EVENT)
                    if event["workflow_id"] == self.workflow_id:
                        events.append(event)
                if offset >= end - 1:
                    return events

    def _remaining(self) -> float:
        return 10.0 if self.deadline is None else max(0.1, self.deadline - time.monotonic())


def event_name(event: Mapping[str, Any]) -> str:
    """The short name of an event's attributes, e.g. ``WorkflowExecutionStarted``."""
    return str(event["attributes"][0]).rsplit(".", 1)[-1]
