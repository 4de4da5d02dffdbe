"""Drive a real engine with plain Kafka records, as a client and worker in any language would."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from cadenza import Settings, schemas
from cadenza.processors.engine import Engine
from cadenza.topics import (
    TopicAdmin,
    activity_tasks_topic,
    commands_topic,
    history_topic,
    replies_topic,
    workflow_tasks_topic,
)

PAYLOAD = {"metadata": {"encoding": b"json/plain"}, "data": b'"hi"'}


@contextmanager
def running_engine(settings: Settings, data_dir: str, **kwargs: Any) -> Iterator[Engine]:
    engine = Engine(settings, data_dir=data_dir, **kwargs)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            engine.run()
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield engine
    finally:
        engine.stop()
        thread.join(30)
        if errors:
            raise errors[0]


class Wire:
    """A client/worker made of a plain producer and consumers."""

    def __init__(self, settings: Settings, task_queue: str) -> None:
        self.settings = settings
        self.queue = task_queue
        TopicAdmin(settings).create(task_queues=[task_queue])
        self.producer = Producer(settings.producer_config())
        self.client_id = uuid.uuid4().hex
        self._consumers: dict[str, Consumer] = {}

    def send(
        self,
        workflow_id: str,
        body: tuple[str, dict[str, Any]],
        *,
        reply: bool = False,
        run_id: str | None = None,
    ) -> str:
        request_id = str(uuid.uuid4())
        command = {
            "command_id": str(uuid.uuid4()),
            "workflow_id": workflow_id,
            "run_id": run_id,
            "sent_time_ms": int(time.time() * 1000),
            "identity": "test",
            "reply_to": (
                {"client_id": self.client_id, "partition": 0, "request_id": request_id}
                if reply
                else None
            ),
            "body": body,
        }
        self.producer.produce(
            commands_topic(self.settings),
            key=workflow_id.encode(),
            value=schemas.encode(schemas.COMMAND, command),
        )
        self.producer.flush(10)
        return request_id

    def _consumer(self, topic: str, partition: int | None = None) -> Consumer:
        if topic not in self._consumers:
            consumer = Consumer(
                {
                    **self.settings.kafka_config(),
                    "group.id": f"wire-{uuid.uuid4().hex}",
                    "auto.offset.reset": "earliest",
                    "isolation.level": "read_committed",
                }
            )
            if partition is None:
                consumer.subscribe([topic])
            else:
                consumer.assign([TopicPartition(topic, partition, 0)])
            self._consumers[topic] = consumer
        return self._consumers[topic]

    def take(
        self,
        topic: str,
        name: str,
        match: Callable[[dict[str, Any]], bool] = lambda d: True,
        *,
        partition: int | None = None,
        timeout: float = 20,
    ) -> dict[str, Any]:
        consumer = self._consumer(topic, partition)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            got, datum = schemas.decode(msg.value())
            if got == name and match(datum):
                return datum
        raise AssertionError(f"no {name} on {topic} within {timeout}s")

    def workflow_task(self, workflow_id: str, **kw: Any) -> dict[str, Any]:
        return self.take(
            workflow_tasks_topic(self.settings, self.queue),
            schemas.WORKFLOW_TASK,
            lambda d: d["workflow_id"] == workflow_id,
            **kw,
        )

    def activity_task(self, workflow_id: str, **kw: Any) -> dict[str, Any]:
        return self.take(
            activity_tasks_topic(self.settings, self.queue),
            schemas.ACTIVITY_TASK,
            lambda d: d["workflow_id"] == workflow_id,
            **kw,
        )

    def reply(self, request_id: str, **kw: Any) -> dict[str, Any]:
        return self.take(
            replies_topic(self.settings),
            schemas.REPLY,
            lambda d: d["request_id"] == request_id,
            partition=0,
            **kw,
        )

    def history(self, workflow_id: str, until: str, **kw: Any) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []

        def keep(d: dict[str, Any]) -> bool:
            if d["workflow_id"] == workflow_id:
                events.append(d)
                return d["attributes"][0] == until
            return False

        self.take(history_topic(self.settings), schemas.HISTORY_EVENT, keep, **kw)
        return events

    def close(self) -> None:
        for consumer in self._consumers.values():
            consumer.close()


def start_body(workflow_type: str, queue: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    return (
        "cadenza.command.StartWorkflow",
        {
            "workflow_type": workflow_type,
            "task_queue": queue,
            "input": [PAYLOAD],
            "request_id": str(uuid.uuid4()),
            **extra,
        },
    )


def complete_task(
    task: dict[str, Any], *commands: tuple[str, dict[str, Any]]
) -> tuple[str, dict[str, Any]]:
    return (
        "cadenza.command.WorkflowTaskCompleted",
        {
            "scheduled_event_id": task["scheduled_event_id"],
            "attempt": task["attempt"],
            "commands": list(commands),
            "identity": "test-worker",
            "sticky": True,
        },
    )


def schedule_activity(
    activity_id: str, activity_type: str, queue: str, **extra: Any
) -> tuple[str, dict[str, Any]]:
    return (
        "cadenza.command.ScheduleActivityTask",
        {
            "activity_id": activity_id,
            "activity_type": activity_type,
            "task_queue": queue,
            "input": [PAYLOAD],
            "start_to_close_timeout_ms": 10_000,
            **extra,
        },
    )
