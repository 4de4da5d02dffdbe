"""`cadenza replay`: stores rebuilt from history equal the stores the engine built live."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer

from cadenza import Settings, schemas
from cadenza.processors.engine import rebuild, scheduling_fields
from cadenza.processors.engine._store import PartitionStore
from cadenza.topics import activity_tasks_topic, workflow_tasks_topic

from .engine_support import (
    PAYLOAD,
    Wire,
    complete_task,
    running_engine,
    schedule_activity,
    start_body,
)

H = "cadenza.history."
SHAPES = ("activity", "timer", "signal", "terminate", "pending", "fail")
PER_SHAPE = 40  # 240 workflows


def _answer(wire: Wire, settings: Settings, stop: threading.Event) -> None:
    """A worker by shape: the shape is the workflow type."""
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": "rebuild-worker",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([workflow_tasks_topic(settings, "rb"), activity_tasks_topic(settings, "rb")])
    while not stop.is_set():
        msg = consumer.poll(0.2)
        if msg is None or msg.error():
            continue
        name, task = schemas.decode(msg.value())
        wid, run = task["workflow_id"], task["run_id"]
        if name == schemas.ACTIVITY_TASK:
            if task["activity_type"] == "work":
                wire.send(
                    wid,
                    (
                        "cadenza.command.ActivityTaskCompleted",
                        {
                            "scheduled_event_id": task["scheduled_event_id"],
                            "attempt": task["attempt"],
                            "result": [PAYLOAD],
                        },
                    ),
                    run_id=run,
                )
            continue
        shape = task["workflow_type"]
        kinds = {e["attributes"][0] for e in task["history"]}
        first = task["history_from_event_id"] == 1 and H + "WorkflowTaskCompleted" not in kinds
        commands: list[Any] = []
        if shape == "activity":
            commands = (
                [schedule_activity("1", "work", "rb")]
                if first
                else [("cadenza.command.CompleteWorkflowExecution", {"result": [PAYLOAD]})]
            )
        elif shape == "timer" and first:
            commands = [
                (
                    "cadenza.command.StartTimer",
                    {"timer_id": "1", "start_to_fire_timeout_ms": 3_600_000},
                )
            ]
        elif shape == "signal" and H + "WorkflowExecutionSignaled" in kinds:
            commands = [("cadenza.command.CompleteWorkflowExecution", {"result": []})]
        elif shape == "pending" and first:
            commands = [schedule_activity("1", "hang", "rb", start_to_close_timeout_ms=3_600_000)]
        elif shape == "fail":
            commands = [("cadenza.command.FailWorkflowExecution", {"failure": {"message": "no"}})]
        wire.send(wid, complete_task(task, *commands), run_id=run)
    consumer.close()


def _stores(home: Path) -> dict[bytes, Any]:
    """Every state and history key of every partition store, states normalised."""
    out: dict[bytes, Any] = {}
    for path in sorted(home.glob("p*")):
        store = PartitionStore(path)
        try:
            for key, value in store._db.items():
                key = bytes(key)
                if key[:1] in (b"s", b"a"):
                    state = schemas.decode_as(bytes(value), "cadenza.state.WorkflowState")
                    out[key] = scheduling_fields(state)
                elif key[:1] in (b"h", b"t"):
                    out[key] = bytes(value)
        finally:
            store.close()
    return out


def test_rebuilt_stores_equal_the_live_ones(settings: Settings, tmp_path: Path) -> None:
    wire = Wire(settings, "rb")
    stop = threading.Event()
    worker = threading.Thread(
        target=_answer, args=(Wire(settings, "rb"), settings, stop), daemon=True
    )
    worker.start()
    live = tmp_path / "live"
    with running_engine(settings, str(live)):
        for shape in SHAPES:
            for i in range(PER_SHAPE):
                wire.send(f"{shape}-{i}", start_body(shape, "rb"))
        time.sleep(3)
        for i in range(PER_SHAPE):
            wire.send(
                f"signal-{i}",
                ("cadenza.command.SignalWorkflow", {"signal_name": "go", "signal_id": f"s{i}"}),
            )
            wire.send(f"terminate-{i}", ("cadenza.command.TerminateWorkflow", {"reason": "test"}))
        # Wait until every closing shape has closed.
        deadline = time.monotonic() + 60
        closing = [
            f"{s}-{i}"
            for s in ("activity", "signal", "terminate", "fail")
            for i in range(PER_SHAPE)
        ]
        while closing and time.monotonic() < deadline:
            request = wire.send(closing[-1], ("cadenza.command.DescribeWorkflow", {}), reply=True)
            if wire.reply(request)["body"][1]["status"] != "RUNNING":
                closing.pop()
            else:
                time.sleep(0.2)
        assert not closing, f"still running: {closing[:5]}"
        time.sleep(1)
    stop.set()
    worker.join(10)

    rebuilt = tmp_path / "rebuilt"
    report = rebuild(settings, str(rebuilt), progress=lambda _: None)
    assert report.runs == len(SHAPES) * PER_SHAPE
    a = _stores(live / "engine" / settings.namespace)
    b = _stores(rebuilt / "engine" / settings.namespace)
    assert sum(1 for k in a if k[:1] == b"s") == len(SHAPES) * PER_SHAPE
    assert a.keys() == b.keys(), sorted(set(a) ^ set(b))[:10]
    different = [k for k in a if a[k] != b[k]]
    assert not different, (different[:3], a[different[0]], b[different[0]]) if different else None
    statuses = {v["status"] for k, v in a.items() if k[:1] == b"s"}
    assert statuses == {"COMPLETED", "RUNNING", "TERMINATED", "FAILED"}

    # `cadenza replay` has no other thread, so it rebuilds a share of the
    # partitions in each of its forked processes: the stores are the same.
    forked, counts = tmp_path / "forked", tmp_path / "forked.json"
    command = [sys.executable, "-m", "cadenza.cli", "replay", "--data-dir", str(forked)]
    done = subprocess.run(
        [*command, "--json", str(counts)],
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(counts.read_text())["runs"] == report.runs
    assert _stores(forked / "engine" / settings.namespace) == b
    wire.close()


def test_replay_until_an_offset_shows_the_state_as_it_was(
    settings: Settings, tmp_path: Path
) -> None:
    settings1 = settings.__class__(**{**settings.__dict__, "partitions": 1})
    wire = Wire(settings1, "rb")
    with running_engine(settings1, str(tmp_path / "live")):
        request = wire.send("one", start_body("x", "rb"), reply=True)
        run_id = wire.reply(request)["body"][1]["run_id"]
        task = wire.workflow_task("one")
        wire.send(
            "one",
            complete_task(task, ("cadenza.command.CompleteWorkflowExecution", {"result": []})),
            run_id=run_id,
        )
        wire.history("one", H + "WorkflowExecutionCompleted")
    # Offsets 0-2 hold Started, Scheduled, Started(task): the run was still running then.
    report = rebuild(settings1, str(tmp_path / "then"), until_offset=3, progress=lambda _: None)
    assert report.events == 3
    store = PartitionStore(tmp_path / "then" / "engine" / settings1.namespace / "p0000")
    try:
        state = store.state("one")
    finally:
        store.close()
    assert state is not None and state["status"] == "RUNNING" and state["next_event_id"] == 4
    wire.close()
