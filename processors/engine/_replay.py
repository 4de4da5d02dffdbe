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
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from cadenza import schemas
from cadenza._settings import Settings
from cadenza.topics import changelog_topic, history_topic

from ._apply import State, apply, new_state
from ._store import PartitionStore, history_key, new_batch, run_key, state_key
from ._timers import index_key, timers_of

__all__ = ["RebuildReport", "rebuild", "scheduling_fields"]

_STARTED = "cadenza.history.WorkflowExecutionStarted"
_STATE = "cadenza.state.WorkflowState"
_WRITE_EVERY = 5000


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
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"{settings.namespace}.replay",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    topic = history_topic(settings)
    changelog = changelog_topic(settings, "engine-workflows")
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            raise RuntimeError(
                f"cannot read {topic}: {metadata.error}; is the namespace right "
                f"({settings.namespace!r})?"
            )
        for partition in sorted(metadata.partitions):
            _, changelog_end = consumer.get_watermark_offsets(
                TopicPartition(changelog, partition), 10
            )
            store = PartitionStore(home / f"p{partition:04d}")
            try:
                events, runs = _rebuild_partition(
                    consumer, topic, partition, store, until_offset, until_time_ms
                )
                wb = new_batch()
                store.write(wb, {"changelog": changelog_end})
            finally:
                store.close()
            report.partitions += 1
            report.events += events
            report.runs += runs
            progress(f"partition {partition}: {events} events, {runs} runs")
    finally:
        consumer.close()
    report.seconds = time.monotonic() - started
    return report


def _rebuild_partition(
    consumer: Consumer,
    topic: str,
    partition: int,
    store: PartitionStore,
    until_offset: int | None,
    until_time_ms: int | None,
) -> tuple[int, int]:
    _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
    end = high if until_offset is None else min(high, until_offset)
    current: dict[str, State] = {}
    archived: dict[bytes, bytes] = {}
    events = runs = 0
    next_offset = 0
    if end > 0:
        consumer.assign([TopicPartition(topic, partition, 0)])
        wb = new_batch()
        done = False
        while not done:
            for msg in consumer.consume(1000, 1.0):
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        done = True
                    continue
                offset, raw = msg.offset() or 0, msg.value() or b""
                if offset >= end:
                    done = True
                    break
                next_offset = offset + 1
                event = schemas.decode_as(raw, schemas.HISTORY_EVENT)
                if until_time_ms is not None and event["event_time_ms"] > until_time_ms:
                    continue
                workflow_id = event["workflow_id"]
                if event["attributes"][0] == _STARTED:
                    old = current.get(workflow_id)
                    if old is not None:
                        archived[run_key(workflow_id, old["run_id"])] = schemas.encode(_STATE, old)
                    current[workflow_id] = new_state(event)
                    runs += 1
                else:
                    state = current.get(workflow_id)
                    if state is None or state["run_id"] != event["run_id"]:
                        continue  # the run started before a retention cut: nothing to fold
                    if event["event_id"] < state["next_event_id"]:
                        continue  # a copy of an event already folded
                    apply(state, event)
                wb.put(history_key(workflow_id, event["run_id"], event["event_id"]), raw)
                events += 1
                if events % _WRITE_EVERY == 0:
                    store.write(wb, None)
                    wb = new_batch()
                if next_offset >= end:
                    done = True
                    break
        consumer.unassign()
        store.write(wb, None)
    wb = new_batch()
    for key, value in archived.items():
        wb.put(key, value)
    for workflow_id, state in current.items():
        if state["status"] != "RUNNING":
            wb.put(run_key(workflow_id, state["run_id"]), schemas.encode(_STATE, state))
        wb.put(state_key(workflow_id), schemas.encode(_STATE, state))
        for due in timers_of(state):
            wb.put(index_key(workflow_id, due), b"")
    store.write(wb, {"history": next_offset})
    return events, runs
