"""Rebuild the engine's stores from the ``history`` topic (``cadenza replay``).

Every run's state is a fold of its history with the appliers in ``_apply``
(the same functions the live engine runs), so a store lost to a bug, a disk or
an upgrade is rebuilt by reading ``history`` from its beginning. Stopping at an
offset or a time shows the state as it was then.

What history cannot know is the engine's scheduling bookkeeping (retry
attempts waiting out a backoff, heartbeat progress, who waits for a result,
whether the last worker kept the run cached); a rebuilt run starts those
afresh, so an activity waiting for a retry is sent again at once, and a client
waiting for a result asks again. ``scheduling_fields`` lists them.

Folding is pure Python, so it takes one CPU per process: partitions are shared
between this process, which also reads Kafka and writes the stores, and helper
processes forked for the purpose, which only fold (they touch neither Kafka
nor RocksDB, whose threads a fork does not copy).
"""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from multiprocessing.context import ForkContext, ForkProcess
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition
from rocksdict import WriteBatch

from cadenza import schemas
from cadenza._settings import Settings
from cadenza.topics import changelog_topic, history_topic

from ._apply import Event, State, apply, new_state
from ._store import PartitionStore, history_key, new_batch, run_key, state_key
from ._timers import index_key, timers_of

__all__ = ["RebuildReport", "rebuild", "scheduling_fields"]

_STARTED = "cadenza.history.WorkflowExecutionStarted"
_STATE = "cadenza.state.WorkflowState"
_BATCH = 10_000
_WRITE_EVERY = 5000
# consume() waits for a full batch or this long, and a partition's last batch is
# rarely full: keep it short (a 1 s wait per partition once made replay crawl).
_WAIT_S = 0.01
#: Batches a helper may have in hand before the reader waits for it.
_AHEAD = 4
#: How much folding the reading process takes on, next to a helper's.
_READER_SHARE = 0.5

#: Records to put in a store, in order.
Writes = list[tuple[bytes, bytes]]


@dataclasses.dataclass
class RebuildReport:
    """What a rebuild read and wrote."""

    partitions: int = 0
    events: int = 0
    runs: int = 0
    seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def scheduling_fields(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` without the engine's scheduling bookkeeping, which history does not record."""
    out = dict(state)
    out["waiters"] = []
    out["worker_seen_event_id"] = 0
    out["updates"] = (
        {
            k: {**u, "reply_to": None, "wait_stage": "COMPLETED", "delivered": False}
            for k, u in state["updates"].items()
        }
        if state["status"] == "RUNNING"
        else {}
    )
    task = state["workflow_task"]
    if task is not None and task["scheduled_event_id"] == 0:
        out["workflow_task"] = None  # a retry waiting out its backoff
        out["workflow_task_needed"] = True
    out["activities"] = {
        k: {
            **a,
            "attempt": 1,
            "attempt_time_ms": a["scheduled_time_ms"],
            "dispatched": True,
            "started_time_ms": None,
            "heartbeat_details": [],
            "last_heartbeat_time_ms": None,
            "last_failure": None,
        }
        for k, a in state["activities"].items()
    }
    return out


def rebuild(
    settings: Settings,
    data_dir: str,
    *,
    until_offset: int | None = None,
    until_time_ms: int | None = None,
    progress: Callable[[str], None] = print,
) -> RebuildReport:
    """Fold ``history`` into fresh engine stores under ``data_dir``.

    Args:
        until_offset: stop each partition before this offset (exclusive).
        until_time_ms: ignore events written after this time.
    """
    home = Path(data_dir) / "engine" / settings.namespace
    if home.exists() and any(home.iterdir()):
        raise FileExistsError(
            f"{home} already holds engine stores: rebuild into an empty --data-dir"
        )
    report = RebuildReport()
    started = time.monotonic()
    schemas.default_registry()  # loaded once, here, for the helpers too
    # The helpers are forked first, while this call has made no Kafka client and
    # no store, and with the cycle collector off, so that nothing of this
    # process's is finalized in them.
    with _no_gc(), _helpers(settings.partitions, until_time_ms) as helpers:
        folds = _rebuild(settings, home, until_offset, until_time_ms, helpers)
    for partition, fold in sorted(folds.items()):
        report.partitions += 1
        report.events += fold.events
        report.runs += fold.runs
        progress(f"partition {partition}: {fold.events} events, {fold.runs} runs")
    report.seconds = time.monotonic() - started
    return report


def _rebuild(
    settings: Settings,
    home: Path,
    until_offset: int | None,
    until_time_ms: int | None,
    helpers: list[_Helper],
) -> dict[int, _Counts]:
    """Read, fold and store every partition; what each one held."""
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"{settings.namespace}.replay",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            # A partition's end is known from a fetch that finds nothing more,
            # which the broker would otherwise hold for 500 ms.
            "fetch.wait.max.ms": 10,
        }
    )
    topic = history_topic(settings)
    changelog = changelog_topic(settings, "engine-workflows")
    partitions: dict[int, _Partition] = {}
    # Opening a store is mostly file system work that lets go of the GIL: threads
    # open them while this one folds.
    opener = ThreadPoolExecutor(2, thread_name_prefix="replay-open")
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            raise RuntimeError(
                f"cannot read {topic}: {metadata.error}; is the namespace right "
                f"({settings.namespace!r})?"
            )
        for partition in sorted(metadata.partitions):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
            _, changelog_end = consumer.get_watermark_offsets(
                TopicPartition(changelog, partition), 10
            )
            end = high if until_offset is None else min(high, until_offset)
            # Without the write-ahead log: a rebuild that fails is started again
            # in an empty directory, and one that succeeds is flushed at the end.
            store = opener.submit(PartitionStore, home / f"p{partition:04d}", wal=False)
            partitions[partition] = _Partition(store, end, changelog_end)
        _share_out(partitions, helpers, until_time_ms)
        _read(consumer, topic, partitions, helpers)
        for helper in helpers:
            helper.send(None)  # the helpers finish their folds while this process does
        counts = {}
        for partition, p in partitions.items():
            if p.fold is not None:
                p.put(p.fold.drain())
                counts[partition] = p.fold.counts(p.fold.finish())
                p.finish(counts[partition])
        for helper in helpers:
            counts.update(helper.finish(partitions))
        for partition, p in partitions.items():
            if p.fold is None:
                # A partition may hold nothing but transaction markers.
                p.finish(counts.setdefault(partition, _Counts(0, 0, 0, [])))
        return counts
    finally:
        opener.shutdown()
        for p in partitions.values():
            if p.opening.exception() is None:
                p.opening.result().close()
        consumer.close()


@contextmanager
def _no_gc() -> Iterator[None]:
    """Without the cycle collector, which folding's many new dicts (none in cycles) keep waking."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read(
    consumer: Consumer, topic: str, partitions: dict[int, _Partition], helpers: list[_Helper]
) -> None:
    """Read every partition to its end, through one assignment; fold or hand out each event."""
    reading = {partition for partition, p in partitions.items() if p.end > 0}
    if not reading:
        return
    consumer.assign([TopicPartition(topic, partition, 0) for partition in sorted(reading)])
    decode = schemas.default_registry().decoder(schemas.HISTORY_EVENT)
    while reading:
        handed: list[list[tuple[int, int, bytes]]] = [[] for _ in helpers]
        mine: list[tuple[_Fold, int, bytes]] = []
        for msg in consumer.consume(_BATCH, _WAIT_S):
            partition = msg.partition()
            if partition not in reading:
                continue  # read to its end already
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    reading.discard(partition)
                continue
            p = partitions[partition]
            offset = msg.offset() or 0
            if offset + 1 >= p.end:
                reading.discard(partition)
                if offset >= p.end:
                    continue
            if p.fold is None:
                handed[p.helper].append((partition, offset, msg.value() or b""))
            else:
                mine.append((p.fold, offset, msg.value() or b""))
        for helper, events in zip(helpers, handed, strict=True):
            if events:
                helper.send(events)
        for fold, offset, raw in mine:
            fold.fold(offset, decode, raw)
        for p in partitions.values():
            if p.fold is not None and p.fold.writes:
                p.put(p.fold.drain())
        for helper in helpers:
            helper.receive(partitions, wait=helper.ahead > _AHEAD)
    consumer.unassign()


@dataclasses.dataclass
class _Counts:
    """What a partition's fold read, and the offset after it."""

    events: int
    runs: int
    next_offset: int
    #: The runs' states and their timers, to write once history is written.
    writes: Writes


class _Partition:
    """A partition being rebuilt: its store, its end, and who folds it."""

    def __init__(self, opening: Future[PartitionStore], end: int, changelog_end: int) -> None:
        self.opening = opening
        self.end = end
        #: The changelog's end when the rebuild began: the store reflects it.
        self.changelog_end = changelog_end
        #: Set when this process folds the partition.
        self.fold: _Fold | None = None
        #: Otherwise, the index of the helper that does.
        self.helper = -1
        self._batch: WriteBatch | None = None
        self._batched = 0

    def put(self, writes: Writes) -> None:
        """Queue ``writes`` for the store, writing whenever enough have come."""
        if self._batch is None:
            self._batch = new_batch()
        for key, value in writes:
            self._batch.put(key, value)
        self._batched += len(writes)
        if self._batched >= _WRITE_EVERY:
            self.opening.result().write(self._batch, None)
            self._batch, self._batched = None, 0

    def finish(self, counts: _Counts) -> None:
        """Write the rest of history, then the states and the offsets they reflect."""
        store = self.opening.result()
        if self._batch is not None:
            store.write(self._batch, None)
        wb = new_batch()
        for key, value in counts.writes:
            wb.put(key, value)
        store.write(wb, {"history": counts.next_offset, "changelog": self.changelog_end})
        store.flush()


class _Fold:
    """One partition's runs, folded from its history; the records to store pile up in ``writes``."""

    def __init__(self, until_time_ms: int | None) -> None:
        self.until_time_ms = until_time_ms
        self.current: dict[str, State] = {}
        self.archived: Writes = []
        self.writes: Writes = []
        self.events = 0
        self.runs = 0
        self.next_offset = 0

    def fold(self, offset: int, decode: Callable[[bytes], Event], raw: bytes) -> None:
        """Fold the event at ``offset`` (the partition's next one)."""
        self.next_offset = offset + 1
        event = decode(raw)
        if self.until_time_ms is not None and event["event_time_ms"] > self.until_time_ms:
            return
        workflow_id = event["workflow_id"]
        if event["attributes"][0] == _STARTED:
            old = self.current.get(workflow_id)
            if old is not None:
                key = run_key(workflow_id, old["run_id"])
                self.archived.append((key, schemas.encode(_STATE, old)))
            self.current[workflow_id] = new_state(event)
            self.runs += 1
        else:
            state = self.current.get(workflow_id)
            if state is None or state["run_id"] != event["run_id"]:
                return  # the run started before a retention cut: nothing to fold
            if event["event_id"] < state["next_event_id"]:
                return  # a copy of an event already folded
            apply(state, event)
        self.writes.append((history_key(workflow_id, event["run_id"], event["event_id"]), raw))
        self.events += 1

    def drain(self) -> Writes:
        """The history records folded since the last call."""
        writes, self.writes = self.writes, []
        return writes

    def finish(self) -> Writes:
        """The records of the runs' states and timers."""
        writes = self.archived
        for workflow_id, state in self.current.items():
            encoded = schemas.encode(_STATE, state)
            if state["status"] != "RUNNING":
                writes.append((run_key(workflow_id, state["run_id"]), encoded))
            writes.append((state_key(workflow_id), encoded))
            for due in timers_of(state):
                writes.append((index_key(workflow_id, due), b""))
        return writes

    def counts(self, writes: Writes) -> _Counts:
        return _Counts(self.events, self.runs, self.next_offset, writes)


# -- helper processes ---------------------------------------------------------------------


def _share_out(
    partitions: dict[int, _Partition], helpers: list[_Helper], until_time_ms: int | None
) -> None:
    """Give each partition with history to this process or a helper, by offsets to fold.

    This process also reads and writes for all, so it takes a smaller share.
    """
    reader = len(helpers)
    capacity = [1.0] * reader + [_READER_SHARE]
    load = [0] * len(capacity)
    for p in sorted((p for p in partitions.values() if p.end > 0), key=lambda p: -p.end):
        owner = min(range(len(capacity)), key=lambda o: (load[o] + p.end) / capacity[o])
        load[owner] += p.end
        if owner == reader:
            p.fold = _Fold(until_time_ms)
        else:
            p.helper = owner
    for p in partitions.values():
        if p.end == 0:
            p.fold = _Fold(until_time_ms)


@contextmanager
def _helpers(partitions: int, until_time_ms: int | None) -> Iterator[list[_Helper]]:
    """A helper process per CPU beyond this one's (and per partition beyond one)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    count = min(cpus, partitions) - 1
    helpers: list[_Helper] = []
    try:
        # (A daemon process may not start processes.) Only a single-threaded process
        # forks: a lock another thread (librdkafka's, say) holds at the fork would
        # stay locked in the child forever. `cadenza replay` is single-threaded here;
        # a caller with threads (the bench, a test) folds in-process.
        forkable = "fork" in multiprocessing.get_all_start_methods() and _single_threaded()
        if count > 0 and forkable and not multiprocessing.current_process().daemon:
            context = multiprocessing.get_context("fork")
            for _ in range(count):
                helpers.append(_Helper(context, until_time_ms))
        yield helpers
    finally:
        for helper in helpers:
            helper.stop()


def _single_threaded() -> bool:
    """Whether this process has one OS thread (Python's and C libraries' alike)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return threading.active_count() == 1


class _Helper:
    """A forked process that folds the partitions handed to it, and returns the records."""

    def __init__(self, context: ForkContext, until_time_ms: int | None) -> None:
        # Queues, not pipes: a put never blocks, so neither side can wait on the
        # other while both are sending.
        self._events: multiprocessing.Queue[list[tuple[int, int, bytes]] | None] = context.Queue()
        self._results: multiprocessing.Queue[Any] = context.Queue()
        self._process: ForkProcess = context.Process(
            target=_help,
            args=(self._events, self._results, until_time_ms),
            name="cadenza-replay-helper",
            daemon=True,
        )
        self._process.start()
        #: Batches sent and not answered yet.
        self.ahead = 0

    def send(self, events: list[tuple[int, int, bytes]] | None) -> None:
        """Hand over a batch of events, or None when there are no more."""
        self._events.put(events)
        if events is not None:
            self.ahead += 1

    def receive(self, partitions: dict[int, _Partition], *, wait: bool) -> None:
        """Store the history records of answered batches; ``wait`` for one at least."""
        while self.ahead:
            answer = self._get(wait)
            if answer is None:
                return
            self.ahead -= 1
            wait = False
            for partition, writes in answer:
                partitions[partition].put(writes)

    def finish(self, partitions: dict[int, _Partition]) -> dict[int, _Counts]:
        """After the last batch: store what is still coming, then each partition's counts."""
        while self.ahead:
            self.receive(partitions, wait=True)
        counts: dict[int, _Counts] = self._get(wait=True)
        return counts

    def stop(self) -> None:
        """End the process: done already, or to be given up after a failure."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        # After a failure the helper may not have read everything: do not wait
        # for the queue's feeder to write it.
        self._events.cancel_join_thread()
        self._events.close()
        self._results.close()

    def _get(self, wait: bool) -> Any:
        while True:
            try:
                answer = self._results.get(timeout=0.5) if wait else self._results.get_nowait()
            except queue.Empty:
                if not wait:
                    return None
                if not self._process.is_alive():
                    raise RuntimeError(
                        f"a replay helper process ended (exit code {self._process.exitcode})"
                    ) from None
                continue
            if isinstance(answer, BaseException):
                raise answer
            return answer


def _help(
    events: multiprocessing.Queue[list[tuple[int, int, bytes]] | None],
    results: multiprocessing.Queue[Any],
    until_time_ms: int | None,
) -> None:
    """A helper's life: fold each batch of events handed over, answer with its records."""
    try:
        decode = schemas.default_registry().decoder(schemas.HISTORY_EVENT)
        folds: dict[int, _Fold] = {}
        while (batch := events.get()) is not None:
            touched: dict[int, _Fold] = {}
            for partition, offset, raw in batch:
                fold = touched.get(partition)
                if fold is None:
                    fold = touched[partition] = folds.setdefault(partition, _Fold(until_time_ms))
                fold.fold(offset, decode, raw)
            results.put([(partition, fold.drain()) for partition, fold in touched.items()])
        results.put({partition: fold.counts(fold.finish()) for partition, fold in folds.items()})
    except BaseException as exc:  # reported to the reader, which raises it
        results.put(exc)
