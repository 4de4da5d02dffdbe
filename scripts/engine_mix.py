"""Measure the engine alone on the commands of one-activity workflows, at saturation.

    .venv/bin/python scripts/engine_mix.py [--count 10000] [--partitions 4]

Issue 3 asks that the engine not be the bottleneck of a one-activity workflow:
10,000 commands/s per engine process. A one-activity workflow sends the engine
four commands: StartWorkflow (asking for the result too, as
``Client.execute_workflow`` does), WorkflowTaskCompleted (schedule the
activity), ActivityTaskCompleted, WorkflowTaskCompleted (complete); five with
``--separate-result`` (a GetWorkflowResult after the start, as clients sent
before StartWorkflow could carry ``result_reply_to``). This script plays the client and the workers
itself, with no workflow code, in four phases of ``count`` workflows each, and
queues each phase's commands at once so the engine (a process of its own, as
deployed) runs flat out. Per phase and in all it prints commands/s (wall, with
the broker on the same machine) and the engine process's CPU microseconds per
command, which stays meaningful on a busy machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from confluent_kafka import Consumer, Producer, TopicPartition

from cadenza import Settings, schemas
from cadenza.bench._engine import EngineProcess
from cadenza.bench._harness import committed_commands
from cadenza.bench._procs import ProcSample, find_listener_pid, sample_pid
from cadenza.topics import (
    TopicAdmin,
    activity_tasks_topic,
    commands_topic,
    workflow_tasks_topic,
)

QUEUE = "mix"
PAYLOAD = {"metadata": {"encoding": b"json/plain"}, "data": b'"hello"'}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000, help="workflows")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--dump",
        metavar="FILE",
        help="also write every command sent, in order (4-byte length + value each), to "
        "replay through the engine's code without Kafka (e.g. under callgrind)",
    )
    parser.add_argument(
        "--separate-result",
        action="store_true",
        help="start with StartWorkflow + GetWorkflowResult (five commands a workflow, as "
        "clients before the start could ask for the result) instead of one StartWorkflow "
        "with result_reply_to (four)",
    )
    args = parser.parse_args()
    settings = dataclasses.replace(
        Settings.from_env(), namespace=f"mix{uuid.uuid4().hex[:8]}", partitions=args.partitions
    )
    admin = TopicAdmin(settings)
    admin.create(task_queues=[QUEUE])
    engine = EngineProcess(settings, Path(tempfile.mkdtemp(prefix="cadenza-mix-")))
    engine.start()
    mix = _Mix(
        settings,
        args.count,
        open(args.dump, "wb") if args.dump else None,
        separate_result=args.separate_result,
    )
    broker = _broker_pid(settings)
    broker_before = _cpu(broker)
    try:
        rows = [
            mix.phase(
                "StartWorkflow + GetWorkflowResult"
                if args.separate_result
                else "StartWorkflow (with result_reply_to)",
                engine,
                mix.starts,
            ),
            mix.phase("WorkflowTaskCompleted (schedule)", engine, mix.schedule_activities),
            mix.phase("ActivityTaskCompleted", engine, mix.complete_activities),
            mix.phase("WorkflowTaskCompleted (complete)", engine, mix.complete_workflows),
        ]
        peak = (engine.sample() or _NO_SAMPLE).peak_rss_mib
        broker_cpu = _cpu(broker) - broker_before
    finally:
        engine.stop()
        mix.close()
        admin.delete_namespace()
    commands = sum(r[1] for r in rows)
    seconds = sum(r[2] for r in rows)
    cpu = sum(r[3] for r in rows)
    print(f"{'phase':36} {'commands':>9} {'commands/s':>11} {'CPU-us/command':>15}")
    for name, n, wall, used in [*rows, ("all (one-activity mix)", commands, seconds, cpu)]:
        print(f"{name:36} {n:9,} {n / wall:11,.0f} {used / n * 1e6:15.0f}")
    print(f"engine: {commands / cpu:,.0f} commands per CPU-second; peak RSS {peak:.0f} MiB")
    if broker is not None:
        print(f"broker: {broker_cpu / commands * 1e6:.0f} CPU-us/command (the whole run)")


def _broker_pid(settings: Settings) -> int | None:
    port = int(settings.resolved_bootstrap_servers.split(",")[0].rsplit(":", 1)[1])
    return find_listener_pid(port)


def _cpu(pid: int | None) -> float:
    return (sample_pid(pid) or _NO_SAMPLE).cpu_seconds if pid is not None else 0.0


_NO_SAMPLE = ProcSample(0.0, 0.0, 0.0)
"""What to read when the engine process is gone."""


class _Mix:
    """The client and the workers of ``count`` one-activity workflows, minus the code."""

    def __init__(
        self, settings: Settings, count: int, dump: BinaryIO | None, *, separate_result: bool
    ) -> None:
        self.settings = settings
        self.separate_result = separate_result
        self.dump = dump
        self.count = count
        self.producer = Producer({**settings.producer_config(), "linger.ms": 5})
        self.commands = commands_topic(settings)
        self.workflow_tasks = self._reader(workflow_tasks_topic(settings, QUEUE))
        self.activity_tasks = self._reader(activity_tasks_topic(settings, QUEUE))
        self.sent = 0

    def _reader(self, topic: str) -> Consumer:
        consumer = Consumer(
            {
                **self.settings.kafka_config(),
                "group.id": f"{self.settings.namespace}.mix.{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        consumer.assign([TopicPartition(topic, p) for p in range(self.settings.partitions)])
        return consumer

    def close(self) -> None:
        if self.dump is not None:
            self.dump.close()
        self.workflow_tasks.close()
        self.activity_tasks.close()

    def phase(
        self, name: str, engine: EngineProcess, commands: Callable[[], list[dict[str, Any]]]
    ) -> tuple[str, int, float, float]:
        """Queue one phase's commands and wait for the engine to commit them all."""
        batch = commands()
        before = (engine.sample() or _NO_SAMPLE).cpu_seconds
        started = time.monotonic()
        for command in batch:
            self._send(command)
        self.producer.flush()
        self.sent += len(batch)
        while committed_commands(self.settings) < self.sent:
            engine.check_alive()
            time.sleep(0.05)
        wall = time.monotonic() - started
        cpu = (engine.sample() or _NO_SAMPLE).cpu_seconds - before
        print(f"{name}: {len(batch):,} commands in {wall:.2f} s", flush=True)
        return name, len(batch), wall, cpu

    def _send(self, command: dict[str, Any]) -> None:
        value = schemas.encode(schemas.COMMAND, command)
        if self.dump is not None:
            self.dump.write(len(value).to_bytes(4, "big") + value)
        while True:
            try:
                self.producer.produce(
                    self.commands, key=command["workflow_id"].encode(), value=value
                )
                return
            except BufferError:
                self.producer.poll(0.1)

    # -- the commands of each phase ------------------------------------------------------

    def starts(self) -> list[dict[str, Any]]:
        out = []
        for i in range(self.count):
            workflow_id = f"mix-{i}"
            start = {
                "workflow_type": "OneActivity",
                "task_queue": QUEUE,
                "request_id": uuid.uuid4().hex,
                "input": [PAYLOAD],
            }
            if self.separate_result:
                out.append(_command(workflow_id, None, "StartWorkflow", start))
                out.append(
                    _command(
                        workflow_id, None, "GetWorkflowResult", {"follow_runs": True}, reply=True
                    )
                )
            else:  # as Client.execute_workflow sends it
                start["result_reply_to"] = _reply_to()
                out.append(_command(workflow_id, None, "StartWorkflow", start, reply=True))
        return out

    def schedule_activities(self) -> list[dict[str, Any]]:
        schedule = {
            "activity_id": "1",
            "activity_type": "echo",
            "task_queue": QUEUE,
            "input": [PAYLOAD],
            "start_to_close_timeout_ms": 60_000,
        }
        return [
            _task_completed(task, ("cadenza.command.ScheduleActivityTask", schedule))
            for task in _take(self.workflow_tasks, schemas.WORKFLOW_TASK, self.count)
        ]

    def complete_activities(self) -> list[dict[str, Any]]:
        return [
            _command(
                task["workflow_id"],
                task["run_id"],
                "ActivityTaskCompleted",
                {
                    "scheduled_event_id": task["scheduled_event_id"],
                    "attempt": task["attempt"],
                    "result": [PAYLOAD],
                },
            )
            for task in _take(self.activity_tasks, schemas.ACTIVITY_TASK, self.count)
        ]

    def complete_workflows(self) -> list[dict[str, Any]]:
        complete = {"result": [PAYLOAD]}
        return [
            _task_completed(task, ("cadenza.command.CompleteWorkflowExecution", complete))
            for task in _take(self.workflow_tasks, schemas.WORKFLOW_TASK, self.count)
        ]


def _reply_to() -> dict[str, Any]:
    return {"client_id": "engine-mix", "partition": 0, "request_id": uuid.uuid4().hex}


def _command(
    workflow_id: str, run_id: str | None, name: str, body: dict[str, Any], *, reply: bool = False
) -> dict[str, Any]:
    return {
        "command_id": uuid.uuid4().hex,
        "workflow_id": workflow_id,
        "run_id": run_id,
        "sent_time_ms": int(time.time() * 1000),
        "identity": "engine-mix",
        "reply_to": _reply_to() if reply else None,
        "body": (f"cadenza.command.{name}", body),
    }


def _task_completed(task: dict[str, Any], decision: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    body = {
        "scheduled_event_id": task["scheduled_event_id"],
        "attempt": task["attempt"],
        "commands": [decision],
        "identity": "engine-mix",
        "sticky": True,
    }
    return _command(task["workflow_id"], task["run_id"], "WorkflowTaskCompleted", body)


def _take(consumer: Consumer, schema: str, count: int) -> list[dict[str, Any]]:
    """The next ``count`` tasks on the consumer's topic (the engine wrote them last phase)."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + 120
    while len(out) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(out)} of {count} tasks arrived in 120 s")
        for msg in consumer.consume(1000, 0.5):
            if msg.error() is None and msg.value():
                out.append(schemas.decode_as(msg.value(), schema))
    return out


if __name__ == "__main__":
    main()
