"""The timer index: every due time a run is waiting for, as a pure function of its state.

The processor keeps a RocksDB index ordered by due time; after each command it
replaces a run's entries (``timers_of(old)`` out, ``timers_of(new)`` in), so the
index is always derived from state and can be rebuilt from it. Firing produces
a ``TimerFired`` or ``TimeoutFired`` command; its handler checks state, which
makes firing idempotent.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from ._apply import State


class Due(NamedTuple):
    """One entry of the index."""

    due_time_ms: int
    kind: str  # "TIMER" or a TimeoutKind symbol
    ref: int  # timer: started event id; activity: scheduled event id; task: scheduled event id
    attempt: int
    timer_id: str = ""

    def body(self) -> tuple[str, dict[str, Any]]:
        """The command body that fires this entry."""
        if self.kind == "TIMER":
            return (
                "cadenza.command.TimerFired",
                {"timer_id": self.timer_id, "started_event_id": self.ref},
            )
        return (
            "cadenza.command.TimeoutFired",
            {
                "kind": self.kind,
                "ref_event_id": self.ref,
                "attempt": self.attempt,
                "due_time_ms": self.due_time_ms,
            },
        )


RESEND_UNTAKEN_TASK_AFTER_MS = 6 * 86_400_000
"""A task no worker has said it took is sent again after six days: task topics keep
records seven days (``cadenza.topics``), so a waiting task is never lost to retention.
Until then nothing is scheduled for it: a worker's word that it started the task
arms its timeout (``WorkflowTaskStarted``, ``ActivityTaskStarted``, a heartbeat)."""


def timers_of(state: State | None) -> set[Due]:
    """Everything ``state`` waits for with a deadline."""
    if state is None or state["status"] != "RUNNING":
        return set()
    out: set[Due] = set()
    for timer in state["timers"].values():
        out.add(Due(timer["due_time_ms"], "TIMER", timer["started_event_id"], 0, timer["timer_id"]))
    task = state["workflow_task"]
    if task is not None:
        if task["scheduled_event_id"]:
            started = task["started_time_ms"]
            if started is None:
                # No worker has said it took it: it waits, and is sent again only
                # before the topic's retention could delete it (see _wft_timeout).
                due = task["dispatched_time_ms"] + RESEND_UNTAKEN_TASK_AFTER_MS
            else:
                due = started + task["timeout_ms"]
            out.add(
                Due(
                    due, "WORKFLOW_TASK_START_TO_CLOSE", task["scheduled_event_id"], task["attempt"]
                )
            )
        else:
            out.add(Due(task["dispatched_time_ms"], "WORKFLOW_BACKOFF", 0, task["attempt"]))
    elif state["workflow_task_needed"]:
        # A start delay; or a run rebuilt from history while its task was retrying,
        # which history does not record: due at once.
        out.add(Due(state["execution_time_ms"], "WORKFLOW_START_DELAY", 0, 0))
    for activity in state["activities"].values():
        ref, attempt = activity["scheduled_event_id"], activity["attempt"]
        if activity["schedule_to_close_timeout_ms"]:
            due = activity["scheduled_time_ms"] + activity["schedule_to_close_timeout_ms"]
            out.add(Due(due, "ACTIVITY_SCHEDULE_TO_CLOSE", ref, attempt))
        if not activity["dispatched"]:
            out.add(Due(activity["attempt_time_ms"], "ACTIVITY_RETRY_BACKOFF", ref, attempt))
            continue
        started = activity["started_time_ms"]
        if activity["start_to_close_timeout_ms"]:
            if started is None:
                # No worker has said it started it: it waits (see _activity_timeout).
                due = activity["attempt_time_ms"] + RESEND_UNTAKEN_TASK_AFTER_MS
            else:
                due = started + activity["start_to_close_timeout_ms"]
            out.add(Due(due, "ACTIVITY_START_TO_CLOSE", ref, attempt))
        if activity["heartbeat_timeout_ms"] and started is not None:
            last = max(activity["last_heartbeat_time_ms"] or 0, started)
            out.add(
                Due(last + activity["heartbeat_timeout_ms"], "ACTIVITY_HEARTBEAT", ref, attempt)
            )
        if activity["schedule_to_start_timeout_ms"] and activity["started_time_ms"] is None:
            due = activity["attempt_time_ms"] + activity["schedule_to_start_timeout_ms"]
            out.add(Due(due, "ACTIVITY_SCHEDULE_TO_START", ref, attempt))
    if state["execution_expiration_time_ms"]:
        out.add(Due(state["execution_expiration_time_ms"], "WORKFLOW_EXECUTION", 0, 0))
    if state["run_timeout_ms"]:
        out.add(Due(state["start_time_ms"] + state["run_timeout_ms"], "WORKFLOW_RUN", 0, 0))
    return out


_DUE = struct.Struct(">Q")


def index_key(workflow_id: str, due: Due) -> bytes:
    """RocksDB key of an entry: ``t`` + due time (big-endian, so keys sort by time) + the rest."""
    rest = "\x00".join((workflow_id, due.kind, str(due.ref), str(due.attempt), due.timer_id))
    return b"t" + _DUE.pack(due.due_time_ms) + rest.encode()


def parse_index_key(key: bytes) -> tuple[str, Due]:
    """The workflow id and entry of an index key."""
    (due_time,) = _DUE.unpack(key[1:9])
    workflow_id, kind, ref, attempt, timer_id = key[9:].decode().split("\x00")
    return workflow_id, Due(due_time, kind, int(ref), int(attempt), timer_id)


def due_prefix_start(due_ms: int) -> bytes:
    """The first index key an entry due at ``due_ms`` can have."""
    return b"t" + _DUE.pack(max(due_ms, 0))


def due_prefix_end(now_ms: int) -> bytes:
    """The first index key that is not yet due at ``now_ms``."""
    return b"t" + _DUE.pack(now_ms + 1)
