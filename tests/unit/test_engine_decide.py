"""Engine decisions run without Kafka: the decider over a real store, outputs captured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cadenza import schemas
from cadenza.processors.engine._decide import decide
from cadenza.processors.engine._processor import _Batch
from cadenza.processors.engine._store import PartitionStore
from cadenza.processors.engine._timers import timers_of

T0 = 1_700_000_000_000


class _Outputs:
    """Stands in for the engine: records what a batch produces."""

    history = changelog = replies = commands = "out"

    def __init__(self) -> None:
        self.workflow_tasks: list[dict[str, Any]] = []

    def task_topic(self, name_of: Any, queue: str) -> str:
        return "tasks"

    def produce(self, topic: str, key: bytes, value: bytes, **_: Any) -> None:
        name, datum = schemas.decode(value)
        if name == schemas.WORKFLOW_TASK:
            self.workflow_tasks.append(datum)


def _step(store: PartitionStore, out: _Outputs, now: int, *commands: dict[str, Any]) -> None:
    batch = _Batch(out, 0, store, now)  # type: ignore[arg-type]
    for command in commands:
        decide(batch, command)
    store.write(batch.flush(), None)


def _command(body: tuple[str, dict[str, Any]], run_id: str | None = None) -> dict[str, Any]:
    return {
        "command_id": f"c-{body[0]}",
        "workflow_id": "w",
        "run_id": run_id,
        "sent_time_ms": T0,
        "body": body,
    }


def test_a_task_resent_after_a_sticky_cache_miss_times_out_from_the_resend(
    tmp_path: Path,
) -> None:
    store, out = PartitionStore(tmp_path), _Outputs()
    start = {"workflow_type": "W", "task_queue": "q", "request_id": "r", "task_timeout_ms": 10_000}
    _step(store, out, T0, _command(("cadenza.command.StartWorkflow", start)))
    task = out.workflow_tasks[-1]
    miss = {
        "scheduled_event_id": task["scheduled_event_id"],
        "attempt": task["attempt"],
        "cause": "STICKY_CACHE_MISS",
    }
    # The worker, behind a backlog, takes the task 8 s late and has no cached run.
    _step(
        store,
        out,
        T0 + 8000,
        _command(("cadenza.command.WorkflowTaskFailed", miss), task["run_id"]),
    )
    resent = out.workflow_tasks[-1]
    assert resent["history_from_event_id"] == 1
    assert resent["scheduled_event_id"] == task["scheduled_event_id"]
    deadlines = {
        due.due_time_ms
        for due in timers_of(store.state("w"))
        if due.kind.startswith("WORKFLOW_TASK")
    }
    assert deadlines == {T0 + 8000 + 10_000}
    store.close()


def test_a_reset_sticky_task_queue_makes_the_next_task_whole(tmp_path: Path) -> None:
    store, out = PartitionStore(tmp_path), _Outputs()
    start = {"workflow_type": "W", "task_queue": "q", "request_id": "r"}
    _step(store, out, T0, _command(("cadenza.command.StartWorkflow", start)))
    task = out.workflow_tasks[-1]
    run_id = task["run_id"]
    timer = {"timer_id": "1", "start_to_fire_timeout_ms": 1000}
    done = {
        "scheduled_event_id": task["scheduled_event_id"],
        "attempt": 1,
        "commands": [("cadenza.command.StartTimer", timer)],
        "sticky": True,
    }
    _step(store, out, T0 + 10, _command(("cadenza.command.WorkflowTaskCompleted", done), run_id))
    state = store.state("w")
    assert state is not None and state["worker_seen_event_id"] == task["started_event_id"]
    # The worker evicts the run while it sleeps; the wake-up task carries everything.
    _step(store, out, T0 + 20, _command(("cadenza.command.ResetStickyTaskQueue", {}), run_id))
    fired = {"timer_id": "1", "started_event_id": 5}
    _step(store, out, T0 + 1010, _command(("cadenza.command.TimerFired", fired), run_id))
    woken = out.workflow_tasks[-1]
    assert woken["history_from_event_id"] == 1
    assert woken["history"][0]["attributes"][0] == "cadenza.history.WorkflowExecutionStarted"
    store.close()
