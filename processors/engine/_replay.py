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

Folding is pure Python, so it takes one CPU per process. Partitions are
independent: a single-threaded caller (``cadenza replay``) forks a process per
further CPU, and each process rebuilds a share of the partitions from end to
end, with a Kafka consumer and stores of its own, so that only the counts
cross between processes.
"""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from multiprocessing.connection import Connection
from multiprocessing.context import ForkProcess
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, KafkaError, TopicPartition
from rocksdict import WriteBatch

from cadenza import schemas
from cadenza._settings import Settings
from cadenza.topics import changelog_topic, history_topic

from ._apply import Event, State, apply, new_state
from ._store import PartitionStore, changelog_targets, history_key, new_batch, run_key, state_key
from ._timers import index_key, timers_of

__all__ = ["RebuildReport", "rebuild", "scheduling_fields"]

_STARTED = "cadenza.history.WorkflowExecutionStarted"
_STATE = "cadenza.state.WorkflowState"
_BATCH = 10_000
_WRITE_EVERY = 5000
# consume() waits for a full batch or this long, and the first and the last
# batches are rarely full: keep it short (a 1 s wait per partition once made
# replay crawl; 10 ms still idled 20 ms of each process's 0.6 s). Events that
# have come are returned at once; an empty wait costs a call.
_WAIT_S = 0.001

#: Records to put in a store, in order.
Writes = list[tuple[bytes, bytes]]


@dataclasses.dataclass
class RebuildReport:
    """What a rebuild read and wrote."""

    partitions: int = 0
    events: int = 0
    runs: int = 0
    #: Wall time from the codec loaded to the stores flushed.
    seconds: float = 0.0
    #: CPU time of the rebuild's processes (user and system, helpers included).
    cpu_seconds: float = 0.0

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
    if task is not None and task["scheduled_event_id"] in (0, state["next_event_id"]):
        # A retry waiting out its backoff, or a transient one (out with a worker,
        # its events not written): the rebuilt run sends attempt 1 again.
        out["workflow_task"] = None
        out["workflow_task_needed"] = True
    elif task is not None:
        # A task resent in full after a sticky cache miss times out from the resend;
        # history has only its WorkflowTaskStarted.
        out["workflow_task"] = {
            **task,
            "dispatched_time_ms": 0,
            "started_time_ms": None,
        }
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
            "eager": False,
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
    # The codec is loaded (and its code generated) once, here, for the forked
    # processes too; like the interpreter's start, it is not part of the rebuild's time.
    schemas.default_registry()
    report = RebuildReport()
    started, cpu = time.monotonic(), _cpu_seconds()
    job = _Job(settings, home, until_offset, until_time_ms)
    with _no_gc():
        counts = _rebuild_in_shares(job, _shares(settings.partitions))
    for partition, count in sorted(counts.items()):
        report.partitions += 1
        report.events += count.events
        report.runs += count.runs
        progress(f"partition {partition}: {count.events} events, {count.runs} runs")
    report.seconds = time.monotonic() - started
    report.cpu_seconds = _cpu_seconds() - cpu
    return report


@dataclasses.dataclass(frozen=True)
class _Job:
    """What to rebuild, the same for every process of a rebuild."""

    settings: Settings
    home: Path
    until_offset: int | None
    until_time_ms: int | None


@dataclasses.dataclass
class _Counts:
    """What a partition's fold read."""

    events: int
    runs: int


def _cpu_seconds() -> float:
    """CPU time of this process and of the child processes it has waited for."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


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


def _rebuild_in_shares(job: _Job, shares: int) -> dict[int, _Counts]:
    """Rebuild share 0 of the partitions here and the others in forked processes."""
    helpers: list[_Helper] = []
    try:
        # Forked first, while this call has made no Kafka client and no store,
        # and with the cycle collector off, so that nothing of this process's
        # is finalized in them.
        for share in range(1, shares):
            helpers.append(_Helper(job, share, shares))
        counts = _rebuild_share(job, 0, shares)
        for helper in helpers:
            counts.update(helper.result())
        return counts
    finally:
        for helper in helpers:
            helper.stop()


def _rebuild_share(job: _Job, share: int, shares: int) -> dict[int, _Counts]:
    """Read, fold and store every ``shares``-th partition from the ``share``-th; what each held."""
    settings = job.settings
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
            # Connect to the brokers at once. With sparse connections librdkafka drops
            # the bootstrap connection when the metadata names the broker, losing a
            # metadata request in flight on it, and asks again only about 50 ms
            # later, on a new connection (half the rebuilds waited so).
            "enable.sparse.connections": False,
        }
    )
    topic = history_topic(settings)
    changelog = changelog_topic(settings, "engine-workflows")
    partitions: dict[int, _Partition] = {}
    # Flushing a store waits for the disk without the GIL: threads do it while
    # the next partition's states are encoded.
    disk = ThreadPoolExecutor(2, thread_name_prefix="replay-disk")
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            raise RuntimeError(
                f"cannot read {topic}: {metadata.error}; is the namespace right "
                f"({settings.namespace!r})?"
            )
        mine = sorted(metadata.partitions)[share::shares]
        # Store partition p's changelog records may share a partition with its neighbours'.
        targets = changelog_targets(consumer, topic, changelog, settings.namespace)
        target = {p: targets[p][0] for p in mine}
        ends = _ends(
            consumer,
            [TopicPartition(topic, p) for p in mine]
            + [TopicPartition(changelog, c) for c in sorted(set(target.values()))],
        )
        if job.until_offset is not None:
            for partition in mine:
                ends[topic, partition] = min(ends[topic, partition], job.until_offset)
        reading = {partition for partition in mine if ends[topic, partition] > 0}
        # The broker starts sending at once, while the stores open: opening one takes
        # about 3 ms, holding the GIL (so not in a thread, which would only hold up
        # this one), and the first events take longer than all of them to come.
        consumer.assign([TopicPartition(topic, partition, 0) for partition in sorted(reading)])
        for partition in mine:
            # Without the write-ahead log: a rebuild that fails is started again
            # in an empty directory, and one that succeeds is flushed at the end.
            store = PartitionStore(job.home / f"p{partition:04d}", wal=False)
            partitions[partition] = _Partition(
                store,
                ends[topic, partition],
                ends[changelog, target[partition]],
                _Fold(job.until_time_ms),
            )
        _read(consumer, partitions, reading)
        flushed = [p.finish(disk) for p in partitions.values()]
        for flush in flushed:
            flush.result()
        return {partition: p.counts() for partition, p in partitions.items()}
    finally:
        disk.shutdown()
        for p in partitions.values():
            p.store.close()
        consumer.close()


def _ends(consumer: Consumer, partitions: list[TopicPartition]) -> dict[tuple[str, int], int]:
    """The end offset (of the committed records) of each partition, asked in one request."""
    # The time -1 (OFFSET_END) asks for the latest offset, as in Kafka's
    # ListOffsets; one request for all, where watermarks take one per partition.
    asked = [TopicPartition(tp.topic, tp.partition, OFFSET_END) for tp in partitions]
    ends = {}
    for tp in consumer.offsets_for_times(asked, 10):
        if tp.error is not None or tp.offset < 0:
            raise RuntimeError(f"cannot find the end of {tp.topic} [{tp.partition}]: {tp.error}")
        ends[tp.topic, tp.partition] = tp.offset
    return ends


def _read(consumer: Consumer, partitions: dict[int, _Partition], reading: set[int]) -> None:
    """Read the partitions ``reading`` (assigned from their start) to their ends, and fold
    each event."""
    if not reading:
        return
    decode = schemas.default_registry().decoder(schemas.HISTORY_EVENT)
    while reading:
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
            p.fold.fold(offset, decode, msg.value() or b"")
        for p in partitions.values():
            if p.fold.writes:
                p.put(p.fold.drain())
    consumer.unassign()


class _Partition:
    """A partition being rebuilt: its store, its end and its fold."""

    def __init__(self, store: PartitionStore, end: int, changelog_end: int, fold: _Fold) -> None:
        self.store = store
        self.end = end
        #: The changelog's end when the rebuild began: the store reflects it.
        self.changelog_end = changelog_end
        self.fold = fold
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
            self.store.write(self._batch, None)
            self._batch, self._batched = None, 0

    def finish(self, disk: ThreadPoolExecutor) -> Future[None]:
        """Write the rest of history, then the states and the offsets they reflect;
        flush the store in ``disk``'s threads while the next partition is finished."""
        self.put(self.fold.drain())
        if self._batch is not None:
            self.store.write(self._batch, None)
        wb = new_batch()
        for key, value in self.fold.finish():
            wb.put(key, value)
        self.store.write(wb, {"history": self.fold.next_offset, "changelog": self.changelog_end})
        return disk.submit(self.store.flush)

    def counts(self) -> _Counts:
        return _Counts(self.fold.events, self.fold.runs)


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
        encode = schemas.default_registry().encoder(_STATE)
        writes = self.archived
        for workflow_id, state in self.current.items():
            encoded = encode(state)
            if state["status"] != "RUNNING":
                writes.append((run_key(workflow_id, state["run_id"]), encoded))
            writes.append((state_key(workflow_id), encoded))
            for due in timers_of(state):
                writes.append((index_key(workflow_id, due), b""))
        return writes


# -- helper processes ---------------------------------------------------------------------


def _shares(partitions: int) -> int:
    """Processes to rebuild in: one per CPU (and per partition), if this one may fork."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    # (A daemon process may not start processes.) Only a single-threaded process
    # forks: a lock another thread (librdkafka's, RocksDB's) holds at the fork
    # would stay locked in the child forever. `cadenza replay` is single-threaded
    # here; a caller with threads (the bench, a test) rebuilds in-process.
    forkable = (
        "fork" in multiprocessing.get_all_start_methods()
        and not multiprocessing.current_process().daemon
        and _single_threaded()
    )
    return max(1, min(cpus, partitions)) if forkable else 1


def _single_threaded() -> bool:
    """Whether this process has one OS thread (Python's and C libraries' alike)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return threading.active_count() == 1


class _Helper:
    """A forked process that rebuilds a share of the partitions and answers with their counts."""

    def __init__(self, job: _Job, share: int, shares: int) -> None:
        context = multiprocessing.get_context("fork")
        self._answers, answer = context.Pipe(duplex=False)
        self._process: ForkProcess = context.Process(
            target=_help,
            args=(job, share, shares, answer),
            name=f"cadenza-replay-{share}",
            daemon=True,
        )
        self._process.start()
        # Only the helper writes: with this end closed here, its exit reads as EOF.
        answer.close()

    def result(self) -> dict[int, _Counts]:
        """The counts of the helper's partitions, once it has stored them."""
        try:
            answer = self._answers.recv()
        except EOFError:
            self._process.join()
            raise RuntimeError(
                f"a replay process ended (exit code {self._process.exitcode})"
            ) from None
        if isinstance(answer, BaseException):
            raise answer
        counts: dict[int, _Counts] = answer
        return counts

    def stop(self) -> None:
        """End the process: done already, or to be given up after a failure."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._answers.close()


def _help(job: _Job, share: int, shares: int, answer: Connection) -> None:
    """A helper's life: rebuild its share, answer with the counts or with what went wrong."""
    try:
        answer.send(_rebuild_share(job, share, shares))
    except BaseException as exc:  # raised by the parent, as if its own
        # As a RuntimeError: not every exception survives pickling.
        answer.send(RuntimeError(f"replay of partition share {share}: {exc!r}"))
