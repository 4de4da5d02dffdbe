"""The engine process: consume ``commands``, decide, and write everything in one transaction.

Why not faust: a faust agent that decodes a command, writes a table and sends
one record managed about 2,000 commands/s on the 2-core machine; the same work
on confluent-kafka with a RocksDB write batch ran at about 69,000/s
(``scripts/faust_vs_confluent.py``). faust's exactly-once mode also has open
bugs. So the engine follows the Kafka Streams model directly:

- a consumer in group ``<ns>.engine`` reads ``commands`` (read_committed);
- for each batch, one Kafka transaction carries the history events (to the
  ``history`` partition with the command's partition number), the tasks, the
  replies, the state changelog records, the timer commands and the consumed
  offsets, so a batch's outputs appear all together or not at all;
- after the commit, the partition's RocksDB store takes the same changes and
  the offsets they reflect in one write batch. A crash between the two leaves
  the store behind the changelog; ``restore`` catches it up before any
  command is processed, so no decision is ever taken twice.

A stable transactional id per engine data directory means a restarted instance
fences and aborts its predecessor's open transaction at once.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from cadenza import schemas
from cadenza._consume import consume_available
from cadenza._ids import new_id
from cadenza._settings import Settings
from cadenza.topics import (
    TopicAdmin,
    activity_tasks_topic,
    changelog_topic,
    commands_topic,
    consumer_group,
    dead_letters_topic,
    history_topic,
    replies_topic,
    workflow_tasks_topic,
)

from .._dead_letters import dead_letter
from .._runtime import tune_gc
from ._apply import Event, State
from ._decide import decide
from ._metrics import EngineMetrics
from ._store import (
    ChangelogTarget,
    PartitionStore,
    changelog_targets,
    history_key,
    new_batch,
    run_key,
    state_key,
)

if TYPE_CHECKING:
    from ..http import HttpServer
    from ..visibility._metrics import ChildMetrics

from ._timers import Due, due_prefix_end, due_prefix_start, index_key, parse_index_key, timers_of

__all__ = ["Engine"]

_log = logging.getLogger("cadenza.engine")

STATE = "cadenza.state.WorkflowState"
ENGINE_STORE = "engine-workflows"
_TIMERS_PER_PASS = 1000
_BUSY = 20
_NO_TIMERS = 2**63 - 1
_BUSY_WAIT_S = 0.02
_ANSWER_WAIT_S = 0.003
"""Longest a transaction that started an activity eagerly waits for its answer."""
_ACTIVITY_SCHEDULED = "cadenza.history.ActivityTaskScheduled"
_EVENT_HEADER = schemas.MAGIC + schemas.fingerprint(schemas.HISTORY_EVENT)
_HEADER_LEN = len(_EVENT_HEADER)


class _Batch:
    """The decider's view of one partition during one transaction (read-your-writes)."""

    def __init__(self, engine: Engine, partition: int, store: PartitionStore, now_ms: int) -> None:
        self.engine = engine
        self.partition = partition
        self.store = store
        self.now_ms = now_ms
        self.states: dict[str, State | None] = {}
        self.old_timers: dict[str, set[Due]] = {}
        self.dirty: set[str] = set()
        self.archived: dict[bytes, bytes] = {}
        self.events: list[Event] = []
        self._encoded: dict[int, bytes] = {}
        """id() of an event in ``events`` -> its encoding (they live as long as the batch)."""
        self.pending: dict[tuple[str, str], list[Event]] = {}
        self.fired: list[bytes] = []
        self.written: list[tuple[str, State, set[Due]]] = []
        """The states flushed, with their timers: the store caches them after the commit."""
        self.next_offset: int | None = None
        self.soonest_added: int | None = None
        """The earliest due time this batch adds to the timer index."""
        self.started_eagerly = 0
        """Activities started eagerly this batch: their answers are likely a moment away."""
        self._flushed_events = 0
        self._flushed_archived: set[bytes] = set()

    # -- Context ------------------------------------------------------------------------------

    def state(self, workflow_id: str) -> State | None:
        if workflow_id not in self.states:
            cached = self.store.take_cached(workflow_id)
            if cached is None:
                state = self.store.state(workflow_id)
                timers = timers_of(state)
            else:
                state, timers = cached
            self.states[workflow_id] = state
            self.old_timers[workflow_id] = timers
        return self.states[workflow_id]

    def run_state(self, workflow_id: str, run_id: str) -> State | None:
        raw = self.archived.get(run_key(workflow_id, run_id))
        if raw is not None:
            return schemas.decode_as(raw, STATE)
        return self.store.run_state(workflow_id, run_id)

    def put(self, state: State) -> None:
        workflow_id = state["workflow_id"]
        self.state(workflow_id)  # make sure the old timers are known
        self.states[workflow_id] = state
        self.dirty.add(workflow_id)

    def archive(self, state: State) -> None:
        key = run_key(state["workflow_id"], state["run_id"])
        self.archived[key] = schemas.encode(STATE, state)

    def history(self, workflow_id: str, run_id: str, from_event_id: int) -> list[Event]:
        stored, pending = self._history_from(workflow_id, run_id, from_event_id)
        events = [schemas.decode_as(raw, schemas.HISTORY_EVENT) for raw in stored]
        return events + pending

    def task_history(self, workflow_id: str, run_id: str, from_event_id: int) -> list[Any]:
        """:meth:`history` for a workflow task: events as the encoded bytes that the
        task's writer splices in (the store's, or those ``history`` gets this batch),
        so no event is encoded twice and none read from the store is decoded."""
        stored, pending = self._history_from(workflow_id, run_id, from_event_id)
        out: list[Any] = []
        for raw in stored:
            if raw[:_HEADER_LEN] != _EVENT_HEADER:  # written with an older schema
                raw = schemas.encode(
                    schemas.HISTORY_EVENT, schemas.decode_as(raw, schemas.HISTORY_EVENT)
                )
            out.append(raw)
        out.extend(self.encoded(e) for e in pending)
        return out

    def _history_from(
        self, workflow_id: str, run_id: str, from_event_id: int
    ) -> tuple[Iterable[bytes], list[Event]]:
        """A run's events from ``from_event_id`` on: encoded ones from the store, then
        this batch's own."""
        pending = self.pending.get((workflow_id, run_id), [])
        mine = [e for e in pending if e["event_id"] >= from_event_id]
        if pending and pending[0]["event_id"] <= from_event_id:
            # Everything asked for is in this batch (a run started here, say): the
            # store has none of it, so no iterator is opened.
            return (), mine
        return self.store.history_bytes(workflow_id, run_id, from_event_id), mine

    def append(self, event: Event) -> None:
        self.events.append(event)
        self.engine.metrics.event(event["attributes"][0])
        self.pending.setdefault((event["workflow_id"], event["run_id"]), []).append(event)

    def encoded(self, event: Event) -> bytes:
        """An event of this batch, encoded once for both ``history`` and a task."""
        raw = self._encoded.get(id(event))
        if raw is None:
            raw = self._encoded[id(event)] = schemas.encode(schemas.HISTORY_EVENT, event)
        return raw

    def workflow_task(self, task: dict[str, Any]) -> None:
        topic = self.engine.task_topic(workflow_tasks_topic, task["task_queue"])
        self.engine.produce(topic, task["workflow_id"].encode(), self.encode_workflow_task(task))

    def encode_workflow_task(self, task: dict[str, Any]) -> bytes:
        return schemas.encode(schemas.WORKFLOW_TASK, task)

    def activity_task(self, task: dict[str, Any]) -> None:
        topic = self.engine.task_topic(activity_tasks_topic, task["task_queue"])
        key = f"{task['workflow_id']}/{task['activity_id']}".encode()
        self.engine.produce(topic, key, schemas.encode(schemas.ACTIVITY_TASK, task))

    def reply(self, reply_to: dict[str, Any], reply: dict[str, Any]) -> None:
        self.engine.produce(
            self.engine.replies,
            reply_to["request_id"].encode(),
            schemas.encode(schemas.REPLY, reply),
            partition=reply_to["partition"],
        )

    def command(
        self, workflow_id: str, body: tuple[str, dict[str, Any]], run_id: str | None = None
    ) -> None:
        # To another workflow (or this one): through `commands`, partitioned like any client's.
        command = {
            "command_id": new_id(),
            "workflow_id": workflow_id,
            "run_id": run_id,
            "sent_time_ms": self.now_ms,
            "identity": "cadenza-engine",
            "reply_to": None,
            "body": body,
        }
        self.engine.produce(
            self.engine.commands, workflow_id.encode(), schemas.encode(schemas.COMMAND, command)
        )

    # -- flush --------------------------------------------------------------------------------

    def flush(self, wb: Any = None) -> Any:
        """Produce the history, changelog and timer changes of what was decided since the
        last flush into ``wb`` (a new store batch by default); return the store batch.

        A transaction may take more commands after a flush (they are decided against
        the states as they are now) and flush again into the same store batch.
        """
        engine, p = self.engine, self.partition
        if wb is None:
            wb = new_batch()
        for key in self.fired:
            wb.delete(key)
        self.fired = []
        events = self.events[self._flushed_events :]
        self._flushed_events = len(self.events)
        last = len(events) - 1
        for i, event in enumerate(events):
            value = self.encoded(event)
            wb.put(history_key(event["workflow_id"], event["run_id"], event["event_id"]), value)
            engine.produce(
                engine.history, event["workflow_id"].encode(), value, partition=p, track=i == last
            )
            name, attrs = event["attributes"]
            if name == _ACTIVITY_SCHEDULED and attrs.get("eager_execution"):
                self.started_eagerly += 1
        changelog = [kv for kv in self.archived.items() if kv[0] not in self._flushed_archived]
        self._flushed_archived.update(key for key, _ in changelog)
        for workflow_id in self.dirty:
            state = self.states[workflow_id]
            assert state is not None
            changelog.append((state_key(workflow_id), schemas.encode(STATE, state)))
            old, new = self.old_timers.get(workflow_id, set()), timers_of(state)
            self.old_timers[workflow_id] = new
            self.written.append((workflow_id, state, new))
            for due in old - new:
                wb.delete(index_key(workflow_id, due))
            for due in new - old:
                wb.put(index_key(workflow_id, due), b"")
                if self.soonest_added is None or due.due_time_ms < self.soonest_added:
                    self.soonest_added = due.due_time_ms
        self.dirty = set()
        last = len(changelog) - 1
        target, headers = engine.changelog_target(p)
        for i, (key, value) in enumerate(changelog):
            wb.put(key, value)
            engine.produce(
                engine.changelog, key, value, partition=target, track=i == last, headers=headers
            )
        return wb


class Engine:
    """One engine process; run several, they share the partitions through the group.

    Args:
        settings: cluster, namespace and data directory.
        clock: milliseconds since the epoch; injectable so tests can skip time.
        batch_size: most commands taken into one transaction. Only a backlog fills
            one (a restart, a burst of starts): 2,000 rather than 500 halves the
            broker's CPU per command there (BENCHMARKS.md, entry 35).
        cached_runs: run states kept decoded in memory, over all owned partitions.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        data_dir: str | None = None,
        clock: Callable[[], int] = lambda: int(time.time() * 1000),
        batch_size: int = 2000,
        cached_runs: int = 20_000,
    ) -> None:
        self.settings = settings
        self.metrics = EngineMetrics(settings.namespace)
        self.clock = clock
        self.batch_size = batch_size
        self.cached_runs = cached_runs
        self.home = Path(data_dir or settings.data_dir) / "engine" / settings.namespace
        self.home.mkdir(parents=True, exist_ok=True)
        self.commands = commands_topic(settings)
        self.history = history_topic(settings)
        self.replies = replies_topic(settings)
        self.dead_letters = dead_letters_topic(settings)
        self.changelog = changelog_topic(settings, ENGINE_STORE)
        self._changelog_targets: dict[int, ChangelogTarget] = {}
        """Store partition -> its changelog partition and the records' headers, from the
        topics' partition counts (read at the first assignment)."""
        self.stores: dict[int, PartitionStore] = {}
        self.restored: dict[int, tuple[int, int]] = {}
        """Changelog records and history events each partition's restore read."""
        self._soonest: dict[int, int] = {}
        """Per partition, a time no later than its earliest timer (``_NO_TIMERS``: none);
        a partition missing here is looked up in its store. Deletions only make the
        true earliest later, so the bound stays safe without a scan on every step."""
        self._floor: dict[int, bytes] = {}
        """Per partition, a key no greater than any in its timer index, where seeks start.
        Firing deletes the oldest entries, and a seek from the start of the index would
        step over all their tombstones until RocksDB compacts them: half of the engine's
        time while 250 timers a second fired."""
        self._admin = TopicAdmin(settings)
        self._known_topics: set[str] = set()
        self._task_topics: dict[tuple[Callable[[Settings, str], str], str], str] = {}
        self._running = False
        self._last_taken = 0
        self._produced: dict[tuple[str, int], int] = {}
        self._outbox: list[tuple[str, dict[str, Any]]] = []
        """Records decided in the open transaction, as ``produce`` arguments."""
        self._delivery_error: KafkaError | None = None
        instance = self._instance_id()
        self.consumer = Consumer(
            {
                **settings.kafka_config(),
                "group.id": consumer_group(settings, "engine"),
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 500,
                # A killed instance's partitions move after 6 s (the broker's minimum),
                # not Kafka's default 45 s.
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 1000,
                "client.id": f"cadenza-engine-{instance}",
                # Static membership: a restarted instance (same data dir) takes its
                # partitions back at once instead of waiting out a rebalance.
                "group.instance.id": f"{settings.namespace}.engine.{instance}",
            }
        )
        self.producer = Producer(
            {
                **settings.producer_config(),
                "transactional.id": f"{settings.namespace}.engine.{instance}",
                "transaction.timeout.ms": 10_000,
                # 1 ms: at light load the records leave while send_offsets_to_transaction
                # waits on its round trips, so the commit does not wait for them. A long
                # linger (commit_transaction sends what waits anyway) saved about 3% of
                # engine CPU at saturation (scripts/engine_mix.py) but moves the records'
                # round trip into the commit, on every hop.
                "linger.ms": 1,
                # Right after a commit the coordinator is still writing the previous
                # transaction's markers and answers the next AddOffsetsToTxn with
                # CONCURRENT_TRANSACTIONS; librdkafka's default 100 ms backoff before
                # retrying stalled one engine step in ten by 100+ ms.
                "retry.backoff.ms": 2,
                "retry.backoff.max.ms": 100,
            }
        )

    def _instance_id(self) -> str:
        path = self.home / "instance-id"
        if not path.exists():
            path.write_text(uuid.uuid4().hex[:12])
        return path.read_text().strip()

    # -- output helpers -----------------------------------------------------------------------

    def changelog_target(self, partition: int) -> ChangelogTarget:
        """The changelog partition store ``partition`` writes to, and the headers its
        records carry: where the changelog is narrower than ``commands``, several stores
        share a partition and each record names its store (header ``store-partition``)."""
        return self._changelog_targets[partition]

    def task_topic(self, name_of: Callable[[Settings, str], str], queue: str) -> str:
        topic = self._task_topics.get((name_of, queue))
        if topic is None:
            topic = self._task_topics[(name_of, queue)] = name_of(self.settings, queue)
        if topic not in self._known_topics:
            self._admin.ensure_task_queue(queue)
            self._known_topics.add(workflow_tasks_topic(self.settings, queue))
            self._known_topics.add(activity_tasks_topic(self.settings, queue))
        return topic

    def produce(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        *,
        partition: int | None = None,
        track: bool = False,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Queue a record for the open transaction; :meth:`_send` hands the queue over.

        A record that fails makes ``commit_transaction`` fail, so only the records
        whose offsets the store needs (``track``: the last of a batch's history and
        changelog records per partition) carry a delivery callback (134 -> 119
        CPU-us per StartWorkflow with callbacks only there).
        """
        kwargs: dict[str, Any] = {"key": key, "value": value}
        if track:
            kwargs["on_delivery"] = self._delivered
        if partition is not None:
            kwargs["partition"] = partition
        if headers is not None:
            kwargs["headers"] = headers
        self._outbox.append((topic, kwargs))

    def _send(self) -> None:
        """Produce what the deciders queued, all at once.

        Produced as they were decided, a busy transaction's task records trickled out
        over the tens of milliseconds it took to decide: with ``linger.ms`` 1, one
        small produce request per partition per millisecond for the broker to handle.
        Handed over together they go in a few full ones. At light load (a command or
        two) nothing waits: the decider took microseconds.
        """
        produce = self.producer.produce
        for topic, kwargs in self._outbox:
            while True:
                try:
                    produce(topic, **kwargs)
                    break
                except BufferError:
                    self.producer.poll(0.05)
        self._outbox.clear()

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._delivery_error = err
            return
        key = (msg.topic() or "", msg.partition() or 0)
        offset = msg.offset()
        if offset is not None and offset >= self._produced.get(key, -1):
            self._produced[key] = offset

    # -- lifecycle ----------------------------------------------------------------------------

    def run(self) -> None:
        """Process commands until :meth:`stop` (or SIGTERM/SIGINT)."""
        self._running = True
        started = time.monotonic()
        _log.info("engine starting")
        # Join the group while the producer fences its predecessor: InitProducerId
        # aborts the open transaction of a killed instance with the same id, and
        # librdkafka retries it until the abort is through (0.5-1 s measured). The
        # assignment, and the restore in it, only runs in the first consume, after it.
        self.consumer.subscribe(
            [self.commands], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        try:
            self.producer.init_transactions(30)
            _log.info("producer ready in %.2f s", time.monotonic() - started)
            _log.info("engine %s consuming %s", self.home, self.commands)
            while self._running and not self.step():
                pass
            if self._running:
                _log.info("first commands processed %.2f s after start", time.monotonic() - started)
            while self._running:
                self.step()
        finally:
            self.consumer.close()
            for store in self.stores.values():
                store.close()
            self.stores.clear()

    def stop(self) -> None:
        self._running = False

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stop()

    def step(self) -> int:
        """One pass: take what is there, fire what is due, commit. Returns commands taken."""
        timeout = self._poll_timeout()
        # Lightly loaded: take what has arrived, or block for the first record and take
        # whatever came with it (consume(n, t) would wait the whole timeout for n records:
        # up to 100 ms on every hop). Busy: let a batch form for a few milliseconds, since
        # every transaction costs markers on every partition it wrote.
        if self._last_taken >= _BUSY:
            messages = self.consumer.consume(self.batch_size, _BUSY_WAIT_S)
        else:
            messages = consume_available(self.consumer, self.batch_size, timeout)
        self._last_taken = len(messages)
        now = self.clock()
        due = self._due_timers(now)
        if not messages and not due:
            return 0
        began = time.monotonic()
        self._produced.clear()
        self.producer.begin_transaction()
        batches: dict[int, _Batch] = {}

        def batch_for(partition: int) -> _Batch:
            if partition not in batches:
                batches[partition] = _Batch(self, partition, self.stores[partition], now)
            return batches[partition]

        taken = self._take(messages, batch_for)
        for partition, keys in due.items():
            batch = batch_for(partition)
            for key in keys:
                workflow_id, entry = parse_index_key(key)
                self._fire(partition, workflow_id, entry)
                batch.fired.append(key)
        store_batches = {p: (b, b.flush()) for p, b in batches.items()}
        self._send()
        expected = sum(b.started_eagerly for b in batches.values())
        if expected:
            taken += self._take_answers(batches, batch_for, store_batches, taken, expected)
        offsets = [
            TopicPartition(self.commands, p, b.next_offset)
            for p, b in batches.items()
            if b.next_offset is not None
        ]
        if offsets:
            self.producer.send_offsets_to_transaction(
                offsets, self.consumer.consumer_group_metadata(), 30
            )
        self.producer.commit_transaction(30)
        if self._delivery_error is not None:
            raise KafkaException(self._delivery_error)
        self.metrics.transaction(
            commands=taken,
            timers=sum(len(keys) for keys in due.values()),
            seconds=time.monotonic() - began,
        )
        for partition, (batch, wb) in store_batches.items():
            marks: dict[str, int] = {}
            if batch.next_offset is not None:
                marks["commands"] = batch.next_offset
            # A changelog partition shared by several stores: the last record of any of
            # them is a safe mark for each (a store skips the others' records).
            for name, written in (
                ("changelog", (self.changelog, self.changelog_target(partition)[0])),
                ("history", (self.history, partition)),
            ):
                last = self._produced.get(written)
                if last is not None:
                    marks[name] = last + 1
            store = self.stores[partition]
            store.write(wb, marks)
            for workflow_id, state, timers in batch.written:
                store.keep(workflow_id, state, timers)
            self._note_timers(partition, batch)
        return taken

    # -- commands -----------------------------------------------------------------------------

    def _take(self, messages: list[Message], batch_for: Callable[[int], _Batch]) -> int:
        """Decide on ``messages``; return how many were commands of owned partitions."""
        taken = 0
        for msg in messages:
            error = msg.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    _log.warning("consume error: %s", error)
                continue
            partition = msg.partition() or 0
            if partition not in self.stores:
                continue  # revoked meanwhile
            batch = batch_for(partition)
            batch.next_offset = (msg.offset() or 0) + 1
            self._handle(batch, msg)
            taken += 1
        return taken

    def _take_answers(
        self,
        batches: dict[int, _Batch],
        batch_for: Callable[[int], _Batch],
        store_batches: dict[int, tuple[_Batch, Any]],
        taken: int,
        expected: int,
    ) -> int:
        """Group commit after an eager start: the worker that took this batch's workflow
        task is running the activity now, and its answer usually arrives within 1-3 ms,
        while this transaction's records are still on their way (the first produce of a
        transaction waits for its partitions to join it). Take up to ``expected`` more
        commands into this transaction instead of a transaction of their own right
        after it; stop at :data:`_ANSWER_WAIT_S`, or as soon as the records are
        delivered and the wait would start to delay the commit.

        ten-steps, one workflow at a time: 9 -> 6 ms per step (BENCHMARKS, entry 19)."""
        more_taken = 0
        deadline = time.monotonic() + _ANSWER_WAIT_S
        while taken + more_taken < self.batch_size and time.monotonic() < deadline:
            if more_taken >= expected or self.producer.flush(0) == 0:
                break  # the answers are in, or waiting longer would delay the commit
            # (1 ms: librdkafka counts whole milliseconds; less would spin.)
            more = self.consumer.consume(self.batch_size - taken - more_taken, 0.001)
            if not more:
                continue
            more_taken += self._take(more, batch_for)
            for p, batch in batches.items():
                wb = store_batches[p][1] if p in store_batches else None
                store_batches[p] = (batch, batch.flush(wb))
            self._send()
        return more_taken

    def _handle(self, batch: _Batch, msg: Message) -> None:
        raw = msg.value()
        try:
            if not raw:
                raise ValueError("empty record (no value)")
            command = schemas.decode_as(raw, schemas.COMMAND)
            key = msg.key()
            if not command["workflow_id"]:
                raise ValueError("workflow_id is empty")
            if key is not None and key != command["workflow_id"].encode():
                raise ValueError(
                    f"record key {key!r} is not the command's workflow_id "
                    f"{command['workflow_id']!r}: commands must be keyed by workflow id"
                )
        except (ValueError, schemas.DecodeError) as exc:
            self._dead_letter(msg, str(exc))
            return
        try:
            decide(batch, command)
        except Exception as exc:  # a bug must not stop the partition: park the command
            _log.exception("engine error on %s", command["workflow_id"])
            self._dead_letter(msg, f"engine error: {type(exc).__name__}: {exc}")

    def _dead_letter(self, msg: Message, reason: str) -> None:
        self.metrics.dead_letters += 1
        dead_letter(self.producer, self.dead_letters, msg, reason, on_delivery=self._delivered)

    def timer_entries(self) -> list[Due]:
        """Every pending deadline of every owned partition (for tests and tools)."""
        out: list[Due] = []
        for store in list(self.stores.values()):
            out.extend(parse_index_key(key)[1] for key in store.due(b"u", 100_000))
        return out

    # -- timers -------------------------------------------------------------------------------

    def _poll_timeout(self) -> float:
        soonest = min((self._soonest_due(p) for p in self.stores), default=_NO_TIMERS)
        if soonest == _NO_TIMERS:
            return 0.1
        return max(0.0, min(0.1, (soonest - self.clock()) / 1000))

    def _soonest_due(self, partition: int) -> int:
        bound = self._soonest.get(partition)
        if bound is None:
            keys = self.stores[partition].due(b"u", 1, self._floor.get(partition, b"t"))
            bound = parse_index_key(keys[0])[1].due_time_ms if keys else _NO_TIMERS
            self._soonest[partition] = bound
        return bound

    def _note_timers(self, partition: int, batch: _Batch) -> None:
        floor = self._floor.get(partition, b"t")
        if batch.fired:
            self._soonest.pop(partition, None)  # looked up again when next needed
            # Every key up to the last one fired is gone (due() hands them out in
            # order, and this batch deleted them).
            floor = batch.fired[-1] + b"\x00"
        elif batch.soonest_added is not None and partition in self._soonest:
            self._soonest[partition] = min(self._soonest[partition], batch.soonest_added)
        if batch.soonest_added is not None:
            floor = min(floor, due_prefix_start(batch.soonest_added))
        self._floor[partition] = floor

    def _due_timers(self, now: int) -> dict[int, list[bytes]]:
        end = due_prefix_end(now)
        due = {}
        for partition, store in self.stores.items():
            if self._soonest_due(partition) > now:
                continue
            keys = store.due(end, _TIMERS_PER_PASS, self._floor.get(partition, b"t"))
            if keys:
                due[partition] = keys
            else:
                self._soonest.pop(partition, None)  # the bound was stale: look again
        return due

    def _fire(self, partition: int, workflow_id: str, entry: Due) -> None:
        command = {
            # Deterministic: the same entry fired twice is the same command.
            "command_id": "/".join(
                (
                    "timer",
                    workflow_id,
                    entry.kind,
                    str(entry.ref),
                    str(entry.attempt),
                    entry.timer_id,
                )
            ),
            "workflow_id": workflow_id,
            "run_id": None,
            "sent_time_ms": self.clock(),
            "identity": "cadenza-timer-service",
            "reply_to": None,
            "body": entry.body(),
        }
        self.produce(
            self.commands,
            workflow_id.encode(),
            schemas.encode(schemas.COMMAND, command),
            partition=partition,
        )

    # -- rebalancing --------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        started = time.monotonic()
        if not self._changelog_targets:  # the counts are fixed: read them once
            self._changelog_targets = changelog_targets(
                self.consumer, self.commands, self.changelog, self.settings.namespace
            )
        opened = {
            tp.partition: PartitionStore(
                self.home / f"p{tp.partition:04d}",
                cache_runs=self.cached_runs // max(1, len(self.stores) + len(partitions)),
            )
            for tp in partitions
        }
        self._restore(opened)
        for partition, store in opened.items():
            self.stores[partition] = store
            self._soonest.pop(partition, None)
            self._floor.pop(partition, None)
        self.metrics.partitions = len(self.stores)
        _log.info(
            "assigned partitions %s (restored in %.2f s)",
            sorted(opened),
            time.monotonic() - started,
        )

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            store = self.stores.pop(tp.partition, None)
            self._soonest.pop(tp.partition, None)
            self._floor.pop(tp.partition, None)
            if store is not None:
                store.close()
        self.metrics.partitions = len(self.stores)
        _log.info("revoked partitions %s", sorted(tp.partition for tp in partitions))

    def _restore(self, stores: dict[int, PartitionStore]) -> None:
        """Catch the stores up with the changelog and history they may have missed.

        All partitions are read at once by one consumer: every committed transaction
        leaves a marker after the last offset a store records, so each partition has
        something to read even after a clean stop, and reading them one after another
        cost a fetch wait per partition and topic (11 s for 16 partitions).
        """
        starts: dict[tuple[str, int], int] = {}
        marks = {partition: store.offsets() for partition, store in stores.items()}
        for partition, mark in marks.items():
            # A shared changelog partition is read from the earliest of its stores' marks.
            key = (self.changelog, self.changelog_target(partition)[0])
            starts[key] = min(starts.get(key, 2**63), mark.get("changelog", 0))
            starts[(self.history, partition)] = mark.get("history", 0)
        restorer = Consumer(
            {
                **self.settings.kafka_config(),
                "group.id": f"{consumer_group(self.settings, 'engine')}.restore",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
                # Do not let the broker hold a fetch of a partition that is at its end.
                "fetch.wait.max.ms": 10,
            }
        )
        try:
            read = _read_to_end(restorer, starts)
        finally:
            restorer.close()
        for partition, store in stores.items():
            target, headers = self.changelog_target(partition)
            shared = read.get((self.changelog, target), [])
            start = marks[partition].get("changelog", 0)
            changelog = [
                msg
                for msg in shared
                if (msg.offset() or 0) >= start and (headers is None or msg.headers() == headers)
            ]
            history = read.get((self.history, partition), [])
            self.restored[partition] = (len(changelog), len(history))
            if shared or history:
                read_to = max(start, (shared[-1].offset() or 0) + 1) if shared else None
                self._apply_restored(partition, store, changelog, read_to, history)

    def _apply_restored(
        self,
        partition: int,
        store: PartitionStore,
        changelog: list[Message],
        changelog_read_to: int | None,
        history: list[Message],
    ) -> None:
        """Apply ``changelog`` (this store's records) and ``history``; the changelog mark
        moves to ``changelog_read_to``, past other stores' records read with them."""
        wb = new_batch()
        for msg in changelog:
            key, value = msg.key(), msg.value()
            if key is None:
                continue
            if key.startswith(b"s"):
                workflow_id = key[1:].decode()
                old = store.state(workflow_id)
                new = schemas.decode_as(value, STATE) if value else None
                for due in timers_of(old) - timers_of(new):
                    wb.delete(index_key(workflow_id, due))
                for due in timers_of(new) - timers_of(old):
                    wb.put(index_key(workflow_id, due), b"")
            if value is None:
                wb.delete(key)
            else:
                wb.put(key, value)
        for msg in history:
            raw = msg.value() or b""
            event = schemas.decode_as(raw, schemas.HISTORY_EVENT)
            wb.put(history_key(event["workflow_id"], event["run_id"], event["event_id"]), raw)
        marks = {}
        if changelog_read_to is not None:
            marks["changelog"] = changelog_read_to
        if history:
            marks["history"] = (history[-1].offset() or 0) + 1
        store.write(wb, marks)
        _log.info(
            "partition %d restored %d changelog records, %d history events",
            partition,
            len(changelog),
            len(history),
        )


def _read_to_end(
    consumer: Consumer, starts: dict[tuple[str, int], int]
) -> dict[tuple[str, int], list[Message]]:
    """Every committed record of each (topic, partition) from its start to its end, at once."""
    highs = {key: _high_watermark(consumer, TopicPartition(*key)) for key in starts}
    pending = {key for key, start in starts.items() if highs[key] > start}
    out: dict[tuple[str, int], list[Message]] = {key: [] for key in pending}
    if not pending:
        return out
    consumer.assign([TopicPartition(topic, p, starts[(topic, p)]) for topic, p in pending])
    deadline = time.monotonic() + 30
    while pending and time.monotonic() < deadline:
        reached: set[tuple[str, int]] = set()
        for msg in consumer.consume(1000, 0.05):
            key = (msg.topic() or "", msg.partition() or 0)
            error = msg.error()
            if error is None:
                out[key].append(msg)
            elif error.code() == KafkaError._PARTITION_EOF:
                reached.add(key)
        # The end may be a transaction marker, which is never delivered: the
        # position passing the high watermark says we are through as well.
        for tp in consumer.position([TopicPartition(*key) for key in pending]):
            key = (tp.topic, tp.partition)
            if key in reached or (tp.offset is not None and tp.offset >= highs[key]):
                pending.discard(key)
    consumer.unassign()
    if pending:
        # Deciding on a store that is behind would take decisions twice: stop instead.
        raise RuntimeError(f"restore did not reach the end of {sorted(pending)} in 30 s")
    return out


def _high_watermark(consumer: Consumer, tp: TopicPartition) -> int:
    # Right after a topic is created its leader may not be known yet: retry a while.
    deadline = time.monotonic() + 30
    while True:
        try:
            return int(consumer.get_watermark_offsets(tp, 5)[1])
        except KafkaException as exc:
            if not exc.args[0].retriable() and exc.args[0].code() not in (
                KafkaError.NOT_LEADER_FOR_PARTITION,
                KafkaError.LEADER_NOT_AVAILABLE,
                KafkaError.UNKNOWN_TOPIC_OR_PART,
            ):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def run_engine(settings: Settings, *, data_dir: str | None = None, visibility: bool = True) -> None:
    """Run one engine process in the foreground (``cadenza processors run``).

    With ``visibility``, a visibility processor (list and count) runs beside it as a
    child process (``cadenza processors visibility``), stopped with it. A process of
    its own, not a thread: folding history beside the engine in one interpreter
    took the engine's GIL (the bench's ingest: 3,929 starts/s that way, 7,665 with
    the child, back to back).

    Unless ``settings.http_address`` is ``off``, a thread serves the HTTP API, the web
    UI and ``/metrics`` there (:class:`~cadenza.processors.http.HttpServer`). An
    address in use (another engine on this machine serves it) is logged and skipped:
    the page is a convenience, the engine's work is not.
    """
    TopicAdmin(settings).create()
    tune_gc()
    engine = Engine(settings, data_dir=data_dir)
    engine.install_signal_handlers()
    child, child_metrics = _spawn_visibility(settings, data_dir) if visibility else (None, None)
    print(
        f"engine running for namespace {settings.namespace!r} on "
        f"{settings.resolved_bootstrap_servers} (pid {os.getpid()}, data {engine.home})",
        flush=True,
    )
    http = _serve_http(settings, engine, child_metrics)
    try:
        engine.run()
    finally:
        if http is not None:
            http.stop()
        if child is not None:
            _stop_child(child)
        if child_metrics is not None:
            child_metrics.close()


def _serve_http(
    settings: Settings, engine: Engine, child_metrics: ChildMetrics | None
) -> HttpServer | None:
    if settings.http_address == "off":  # the setting's parser spells every "none" so
        return None
    # Imported only to serve: the API's client (and the SDK modules it pulls in) cost
    # 5 MiB, which an engine that serves no page need not pay (BENCHMARKS, entry 45).
    from ..http import HttpServer

    try:
        render = engine.metrics.render
        if child_metrics is not None:
            child = child_metrics

            def render() -> str:
                return engine.metrics.render() + child.render()

        server = HttpServer(settings, settings.http_address, metrics=render)
    except OSError as exc:
        _log.warning(
            "not serving the web UI and API on %s: %s (another process has the port; "
            "choose another with --http HOST:PORT, or --http off)",
            settings.http_address,
            exc.strerror or exc,
        )
        return None
    server.start()
    print(f"web UI, HTTP API and /metrics on {server.url}", flush=True)
    return server


def _spawn_visibility(
    settings: Settings, data_dir: str | None
) -> tuple[subprocess.Popen[bytes], ChildMetrics | None]:
    """Start the visibility child, and (when the engine serves a page) a reader of the
    metrics it serves on a loopback port that it reports through a pipe."""
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    command = [
        sys.executable,
        "-m",
        "cadenza.cli",
        "processors",
        "visibility",
        "--parent-pid",
        str(os.getpid()),
        "--log-level",
        str(level),
    ]
    if data_dir is not None:
        command += ["--data-dir", data_dir]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENZA_")}
    env.update(settings.to_env())
    if settings.http_address == "off":
        return subprocess.Popen(command, env=env), None
    from ..visibility._metrics import ChildMetrics

    port_read, port_write = os.pipe()
    command += ["--metrics-port-fd", str(port_write)]
    try:
        child = subprocess.Popen(command, env=env, pass_fds=(port_write,))
    finally:
        os.close(port_write)
    return child, ChildMetrics(port_read, settings.namespace)


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    child.terminate()
    try:
        child.wait(30)
    except subprocess.TimeoutExpired:
        _log.warning("the visibility process did not stop in 30 s: killing it")
        child.kill()
        child.wait()
