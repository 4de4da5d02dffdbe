"""A task-topic consumer for a worker: one daemon thread owns a confluent-kafka ``Consumer``.

librdkafka calls block, and a ``Consumer`` must be driven from one thread, so the
thread does everything Kafka: it polls, hands each record to the asyncio loop
(``loop.call_soon_threadsafe``), commits the offsets the loop reports finished
(in order per partition, see :class:`OffsetTracker`), and at the end commits
what is done and leaves the group cleanly.

Back-pressure: at capacity, records the thread has fetched are *held* in the
thread and handed out as slots free. Only when a capacity's worth is held does
it pause the assignment (and keep polling, so the group does not evict it), and
it resumes once half of that is handed out. librdkafka drops a paused
partition's prefetched records and fetches them again on resume, so pausing at
every full slot (the first design) cost a fetch round trip per task burst:
one-activity at 200 in flight ran at 25-36 workflows/s that way.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from .. import schemas
from .._consume import consume_available
from .._settings import Settings
from ._offsets import OffsetTracker, Ticket

_log = logging.getLogger("cadenza.worker")
_kafka_log = logging.getLogger("cadenza.worker.kafka")

_POLL_SECONDS = 0.1
_BATCH = 500
"""Records taken from librdkafka per call, handed to the event loop in one callback."""

SESSION_TIMEOUT_MS = 6000
"""How long the broker waits for a silent worker (killed, cut off) before the group
rebalances its partitions onto the task queue's other workers: the broker's minimum
(``group.min.session.timeout.ms``), as for the engine, not librdkafka's default 45 s,
which would hold every task of a killed worker's partitions for that long."""
HEARTBEAT_INTERVAL_MS = 1000
"""How often the consumer tells the group coordinator it is alive (librdkafka sends
heartbeats from its own thread, so workflow code and activities never delay them)."""


@dataclass(frozen=True)
class Record:
    """One task record, as handed to the worker's event loop."""

    ticket: Ticket
    """Give it back to :meth:`TaskConsumer.done` (or :meth:`TaskConsumer.abandon`)."""
    key: bytes | None
    value: bytes | None


class TaskConsumer:
    """Consumes one task topic in one consumer group; see the module docstring.

    Args:
        settings: Cluster and security settings.
        topic: The task topic.
        group_id: The consumer group.
        capacity: Records handed out and not yet done at most; beyond it the
            assignment is paused.
        loop: The event loop ``on_record`` and ``on_fatal`` run in.
        on_record: Called in ``loop`` with every record, in order per partition.
        on_fatal: Called in ``loop`` (once) when the consumer cannot go on.
        client_id: Kafka ``client.id`` (shows in the group's member list).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        topic: str,
        group_id: str,
        capacity: int,
        loop: asyncio.AbstractEventLoop,
        on_record: Callable[[Record], None],
        on_fatal: Callable[[BaseException], None],
        client_id: str,
    ) -> None:
        self.topic = topic
        self.group_id = group_id
        self._capacity = capacity
        self._loop = loop
        self._on_record = on_record
        self._on_fatal = on_fatal
        self._config: dict[str, Any] = {
            **settings.kafka_config(),
            "group.id": group_id,
            "client.id": client_id,
            "enable.auto.commit": False,
            # A new group must see the tasks dispatched before its first worker started.
            "auto.offset.reset": "earliest",
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS,
            "logger": _kafka_log,
            "error_cb": self._on_error,
        }
        self._tracker = OffsetTracker()
        # (None, False): a reserved slot given back.
        self._finished: queue.SimpleQueue[tuple[Ticket | None, bool]] = queue.SimpleQueue()
        self._in_flight = 0
        self._lock = threading.Lock()
        # Fetched, not yet handed out (the worker was at capacity); only the thread uses it.
        self._held: deque[Message] = deque()
        self._paused = False
        self._fetching = True
        self._closing = threading.Event()
        self._stopped = threading.Event()
        self._fatal: BaseException | None = None
        self._consumer: Consumer | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"cadenza-consumer-{topic}", daemon=True
        )

    # -- the event loop's side -------------------------------------------------------------

    def start(self) -> None:
        """Create the consumer, subscribe and start the thread."""
        self._consumer = Consumer(self._config)
        self._consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._thread.start()

    @property
    def in_flight(self) -> int:
        """Records handed out and not yet done or abandoned."""
        with self._lock:
            return self._in_flight

    def try_reserve(self) -> bool:
        """Take a free slot for work that did not come from the topic (an eager
        activity); give it back with :meth:`release`. False when full or stopping."""
        with self._lock:
            if not self._fetching or self._in_flight >= self._capacity:
                return False
            self._in_flight += 1
            return True

    def release(self) -> None:
        """Give back a slot taken with :meth:`try_reserve`."""
        self._finished.put((None, False))

    def done(self, ticket: Ticket) -> None:
        """The record's answer is acknowledged: free its slot and commit it when in order."""
        self._finished.put((ticket, True))

    def abandon(self, ticket: Ticket) -> None:
        """Free the record's slot without committing it (it is read again after a restart)."""
        self._finished.put((ticket, False))

    def decode(self, record: Record, schema: str) -> dict[str, Any] | None:
        """The record's task decoded as ``schema``, or ``None``: an undecodable record
        is logged and committed (it cannot become decodable by waiting)."""
        try:
            if record.value is None:
                raise schemas.DecodeError("the record has no value")
            return schemas.decode_as(record.value, schema)
        except schemas.DecodeError as exc:
            _log.error(
                "Skipping an undecodable record at offset %d of %s[%d]: %s",
                record.ticket.offset,
                record.ticket.topic,
                record.ticket.partition,
                exc,
            )
            self.done(record.ticket)
            return None

    def stop_fetching(self) -> None:
        """Hand out no more records; keep committing and serving the group until :meth:`close`."""
        self._fetching = False

    async def close(self) -> None:
        """Commit what is done, leave the group and stop the thread. Idempotent."""
        self._fetching = False
        self._closing.set()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)
        elif self._consumer is not None and not self._stopped.is_set():
            # Started but the thread never ran (start failed half-way).
            await asyncio.to_thread(self._shutdown_consumer)

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        try:
            while not self._closing.is_set() and self._fatal is None:
                self._apply_finished(consumer, synchronous=False)
                self._hand_out(self._release())
                self._set_paused(consumer, self._should_pause())
                if self._held and self._room() == 0:
                    # Full: wait for a slot to free rather than for records, and keep
                    # serving the group (rebalances, max.poll.interval.ms) meanwhile.
                    self._wait_finished(_POLL_SECONDS)
                    messages = consumer.consume(_BATCH, 0)
                else:
                    messages = consume_available(consumer, _BATCH, _POLL_SECONDS)
                for msg in messages:
                    error = msg.error()
                    if error is not None:
                        self._on_error(error)
                    else:
                        self._held.append(msg)
        except BaseException as exc:
            self._report_fatal(exc)
        finally:
            self._shutdown_consumer()

    def _room(self) -> int:
        if not self._fetching:
            return 0
        with self._lock:
            return max(0, self._capacity - self._in_flight)

    def _should_pause(self) -> bool:
        if not self._fetching:
            return True
        if self._paused:
            return len(self._held) > self._capacity // 2
        return len(self._held) >= self._capacity

    def _release(self) -> list[Record]:
        """Take held records into the worker's free slots."""
        room = self._room()
        records = []
        while self._held and room > 0:
            msg = self._held.popleft()
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            assert topic is not None and partition is not None and offset is not None
            ticket = self._tracker.received(topic, partition, offset)
            records.append(Record(ticket=ticket, key=msg.key(), value=msg.value()))
            room -= 1
        return records

    def _hand_out(self, records: list[Record]) -> None:
        if not records:
            return
        with self._lock:
            self._in_flight += len(records)
        try:
            self._loop.call_soon_threadsafe(self._deliver, records)
        except RuntimeError:  # the loop is closed: nobody will process them
            self._closing.set()

    def _deliver(self, records: list[Record]) -> None:
        for record in records:
            self._on_record(record)

    def _wait_finished(self, timeout: float) -> None:
        try:
            item = self._finished.get(timeout=timeout)
        except queue.Empty:
            return
        self._finished.put(item)  # _apply_finished takes it, in order with the rest

    def _set_paused(self, consumer: Consumer, paused: bool) -> None:
        if paused == self._paused:
            return
        assignment = consumer.assignment()
        if assignment:
            if paused:
                consumer.pause(assignment)
            else:
                consumer.resume(assignment)
        self._paused = paused

    def _apply_finished(self, consumer: Consumer, *, synchronous: bool) -> None:
        while True:
            try:
                ticket, commit = self._finished.get_nowait()
            except queue.Empty:
                break
            with self._lock:
                self._in_flight -= 1
            if commit and ticket is not None:
                self._tracker.done(ticket)
        commits = self._tracker.take_commits()
        if not commits:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in commits.items()]
        try:
            if synchronous:
                consumer.commit(offsets=offsets, asynchronous=False)
            else:
                consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            # Not fatal: the records are processed again after a restart (at least once).
            _log.warning("commit to %s failed: %s", self.topic, exc)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._tracker.assigned(tp.topic, tp.partition)
        consumer.assign(partitions)
        if self._paused and partitions:
            consumer.pause(partitions)
        _log.debug("%s: assigned %s", self.group_id, [tp.partition for tp in partitions])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Commit what is finished before another member takes over the partitions.
        self._apply_finished(consumer, synchronous=True)
        gone = {(tp.topic, tp.partition) for tp in partitions}
        # Held records were never handed out: the partitions' next owner reads them.
        self._held = deque(m for m in self._held if (m.topic(), m.partition()) not in gone)
        for tp in partitions:
            self._tracker.revoked(tp.topic, tp.partition)
        _log.debug("%s: revoked %s", self.group_id, [tp.partition for tp in partitions])

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._report_fatal(KafkaException(error))
        elif error.code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
            _log.debug("%s: %s", self.topic, error.str())
        else:
            _log.warning("consumer of %s: %s", self.topic, error.str())

    def _report_fatal(self, exc: BaseException) -> None:
        if self._fatal is not None:
            return
        self._fatal = exc
        _log.error("consumer of %s failed: %s", self.topic, exc)
        try:
            self._loop.call_soon_threadsafe(self._on_fatal, exc)
        except RuntimeError:
            pass

    def _shutdown_consumer(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        consumer = self._consumer
        if consumer is None:
            return
        try:
            if self._fatal is None:
                self._apply_finished(consumer, synchronous=True)
            consumer.close()  # leaves the group (on_revoke commits once more)
        except (KafkaException, RuntimeError) as exc:
            _log.warning("closing the consumer of %s: %s", self.topic, exc)
