"""``cadenza demo``: the main job of the quick start, end to end on a real broker.

It starts the local broker (unless CADENZA_BOOTSTRAP_SERVERS names a cluster),
creates and verifies the namespace's topics, then does what a client in any
language does to start a workflow: produces an Avro ``StartWorkflow`` command to
``<ns>.commands`` and reads it back with a plain consumer. The engine and the
SDK (issues 3 and 4) extend this into a workflow that runs to completion.
"""

from __future__ import annotations

import time
import uuid

import click

from cadenza import schemas
from cadenza._settings import Settings
from cadenza.cli._common import fail, settings_options
from cadenza.localkafka import LocalKafka, LocalKafkaError
from cadenza.topics import TopicAdmin, TopicAdminError, commands_topic


def _step(text: str) -> None:
    click.echo(click.style("==> ", fg="cyan") + text)


@click.command()
@settings_options
@click.option("--task-queue", default="demo", show_default=True, help="Task queue of the demo.")
def demo(settings: Settings, task_queue: str) -> None:
    """Run the quick-start job: broker, topics, and a workflow start on Kafka."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    if settings.uses_local_broker:
        _step("starting the local Kafka broker")
        try:
            LocalKafka(settings).start()
        except LocalKafkaError as exc:
            fail(str(exc))
    _step(f"creating the topics of namespace {settings.namespace!r}")
    admin = TopicAdmin(settings)
    try:
        result = admin.create(task_queues=[task_queue])
        click.echo(f"    created {len(result.created)}, {len(result.existed)} already existed")
        drift = admin.verify(task_queues=[task_queue])
    except TopicAdminError as exc:
        fail(str(exc))
        return
    if drift:
        fail("topic drift:\n" + "\n".join(f"  - {d.message}" for d in drift))
    click.echo("    verified: every topic matches the catalog")

    workflow_id = f"demo-{uuid.uuid4().hex[:8]}"
    payload = {"metadata": {"encoding": b"json/plain"}, "data": b'"Kafka"'}
    command = {
        "command_id": str(uuid.uuid4()),
        "workflow_id": workflow_id,
        "run_id": None,
        "sent_time_ms": int(time.time() * 1000),
        "identity": "cadenza-demo",
        "reply_to": None,
        "body": (
            "cadenza.command.StartWorkflow",
            {
                "workflow_type": "GreetingWorkflow",
                "task_queue": task_queue,
                "input": [payload],
                "request_id": str(uuid.uuid4()),
            },
        ),
    }
    topic = commands_topic(settings)
    _step(f"producing StartWorkflow({workflow_id}) to {topic} (Avro single-object encoding)")
    producer = Producer({**settings.producer_config(), "log_level": 3})
    delivered: list[tuple[int, int]] = []

    def on_delivery(err: object, msg: object) -> None:
        if err is not None:
            fail(f"the broker did not accept the command: {err}")
        delivered.append((msg.partition(), msg.offset()))  # type: ignore[attr-defined]

    value = schemas.encode(schemas.COMMAND, command)
    producer.produce(topic, key=workflow_id.encode(), value=value, on_delivery=on_delivery)
    producer.flush(30)
    partition, offset = delivered[0]
    click.echo(f"    acknowledged: partition {partition}, offset {offset}")

    consumer = Consumer({**settings.kafka_config(), "group.id": f"demo-{uuid.uuid4().hex}"})
    consumer.assign([TopicPartition(topic, partition, offset)])
    msg = consumer.poll(10)
    consumer.close()
    record = msg.value() if msg is not None and not msg.error() else None
    if record is None:
        fail(f"could not read the command back from {topic}: {msg and msg.error()}")
        return
    name, datum = schemas.decode(record)
    body_name, body = datum["body"]
    click.echo(
        f"    read back {name} / {body_name}: workflow {datum['workflow_id']}, "
        f"type {body['workflow_type']}, queue {body['task_queue']}"
    )
    _step("done: the engine and workers (issues 3 and 4) take it from here")
