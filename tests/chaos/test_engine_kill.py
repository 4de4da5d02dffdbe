"""kill -9 of an engine instance under load: every workflow still completes, exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer

from cadenza import Settings, schemas
from cadenza.topics import activity_tasks_topic, history_topic, workflow_tasks_topic

from ..integration.engine_support import PAYLOAD, Wire, complete_task, schedule_activity, start_body

H = "cadenza.history."
WORKFLOWS = 40


def _engine(settings: Settings, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CADENZA_BOOTSTRAP_SERVERS": settings.resolved_bootstrap_servers,
        "CADENZA_NAMESPACE": settings.namespace,
        "CADENZA_PARTITIONS": str(settings.partitions),
        "CADENZA_DATA_DIR": str(data_dir),
    }
    log = open(data_dir.with_suffix(".log"), "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "cadenza.cli", "processors", "run", "--log-level", "WARNING"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


class AutoWorker(threading.Thread):
    """Answers every task at once: schedule one activity, then complete with its result."""

    def __init__(self, settings: Settings, wire: Wire, queue: str) -> None:
        super().__init__(daemon=True)
        self.settings, self.wire, self.queue = settings, wire, queue
        self.stop = threading.Event()

    def run(self) -> None:
        consumer = Consumer(
            {
                **self.settings.kafka_config(),
                "group.id": "auto-worker",
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
            }
        )
        consumer.subscribe(
            [
                workflow_tasks_topic(self.settings, self.queue),
                activity_tasks_topic(self.settings, self.queue),
            ]
        )
        while not self.stop.is_set():
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            name, task = schemas.decode(msg.value())
            if name == schemas.ACTIVITY_TASK:
                self.wire.send(
                    task["workflow_id"],
                    (
                        "cadenza.command.ActivityTaskCompleted",
                        {
                            "scheduled_event_id": task["scheduled_event_id"],
                            "attempt": task["attempt"],
                            "result": task["input"],
                        },
                    ),
                    run_id=task["run_id"],
                )
                continue
            kinds = {e["attributes"][0] for e in task["history"]}
            if H + "ActivityTaskCompleted" in kinds:
                command: Any = ("cadenza.command.CompleteWorkflowExecution", {"result": [PAYLOAD]})
            elif task["history_from_event_id"] == 1 and H + "ActivityTaskScheduled" not in kinds:
                command = schedule_activity("1", "echo", self.queue)
            else:
                continue  # a repeat of a task already answered
            self.wire.send(task["workflow_id"], complete_task(task, command), run_id=task["run_id"])
        consumer.close()


def test_kill_9_an_engine_mid_run(settings: Settings, tmp_path: Path) -> None:
    wire = Wire(settings, "chaos")
    engines = [_engine(settings, tmp_path / "a"), _engine(settings, tmp_path / "b")]
    worker = AutoWorker(settings, Wire(settings, "chaos"), "chaos")
    worker.start()
    try:
        time.sleep(3)  # both instances join the group
        for i in range(WORKFLOWS):
            wire.send(f"chaos-{i}", start_body("Chaos", "chaos"))
            if i == WORKFLOWS // 2:
                engines[0].send_signal(signal.SIGKILL)  # a real kill -9, mid-run
                engines[0].wait()
        completed: Counter[str] = Counter()
        events: dict[str, list[int]] = {}
        consumer = Consumer(
            {
                **settings.kafka_config(),
                "group.id": "chaos-check",
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
            }
        )
        consumer.subscribe([history_topic(settings)])
        deadline = time.monotonic() + 120
        while len(completed) < WORKFLOWS and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            event = schemas.decode_as(msg.value(), schemas.HISTORY_EVENT)
            events.setdefault(event["run_id"], []).append(event["event_id"])
            if event["attributes"][0] == H + "WorkflowExecutionCompleted":
                completed[event["workflow_id"]] += 1
        # Drain a little more to catch any duplicate completion.
        end = time.monotonic() + 3
        while time.monotonic() < end:
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                event = schemas.decode_as(msg.value(), schemas.HISTORY_EVENT)
                events.setdefault(event["run_id"], []).append(event["event_id"])
                if event["attributes"][0] == H + "WorkflowExecutionCompleted":
                    completed[event["workflow_id"]] += 1
        consumer.close()
    finally:
        worker.stop.set()
        for engine in engines:
            if engine.poll() is None:
                engine.terminate()
                engine.wait(30)
    missing = {f"chaos-{i}" for i in range(WORKFLOWS)} - set(completed)
    assert not missing, f"never completed: {sorted(missing)}"
    assert set(completed.values()) == {1}, "a workflow completed twice"
    for run_id, ids in events.items():
        assert ids == list(range(1, len(ids) + 1)), f"run {run_id}: event ids {ids}"
    wire.close()


def test_kill_9_and_restart_the_only_engine(settings: Settings, tmp_path: Path) -> None:
    """The restarted instance fences its predecessor's transaction at once and catches up."""
    wire = Wire(settings, "chaos")
    engine = _engine(settings, tmp_path / "solo")
    worker = AutoWorker(settings, Wire(settings, "chaos"), "chaos")
    worker.start()
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": "solo-check",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([history_topic(settings)])
    completed: Counter[str] = Counter()

    def drain(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and len(completed) < WORKFLOWS:
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                event = schemas.decode_as(msg.value(), schemas.HISTORY_EVENT)
                if event["attributes"][0] == H + "WorkflowExecutionCompleted":
                    completed[event["workflow_id"]] += 1

    try:
        time.sleep(2)
        for i in range(WORKFLOWS):
            wire.send(f"solo-{i}", start_body("Chaos", "chaos"))
        # Kill it at the first completion: mid-run (a fixed wait let a fast engine
        # finish them all first).
        first = time.monotonic() + 30
        while not completed and time.monotonic() < first:
            drain(0.01)
        engine.send_signal(signal.SIGKILL)
        engine.wait()
        before = len(completed)
        assert before < WORKFLOWS, "every workflow completed before the kill"
        engine = _engine(settings, tmp_path / "solo")  # same data dir, same transactional id
        restarted = time.monotonic()
        first_after = None
        while len(completed) < WORKFLOWS and time.monotonic() - restarted < 90:
            drain(0.2)
            if first_after is None and len(completed) > before:
                first_after = time.monotonic() - restarted
        drain(2)
    finally:
        worker.stop.set()
        consumer.close()
        if engine.poll() is None:
            engine.terminate()
            engine.wait(30)
    assert {f"solo-{i}" for i in range(WORKFLOWS)} == set(completed)
    assert set(completed.values()) == {1}
    assert first_after is not None
    print(f"first completion {first_after:.1f}s after the restart")
    wire.close()
