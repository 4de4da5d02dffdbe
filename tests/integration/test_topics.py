"""Topic creation, verification and description against the real broker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    NewTopic,
    OffsetSpec,
)

from cadenza import Settings
from cadenza.cli._topics import topics
from cadenza.topics import (
    TopicAdmin,
    activity_tasks_topic,
    commands_topic,
    history_topic,
    namespace_topics,
    replies_topic,
    workflow_tasks_topic,
)

CLI = [sys.executable, "-m", "cadenza.cli"]


@pytest.fixture
def kafka_admin(settings: Settings) -> Iterator[AdminClient]:
    """A raw AdminClient; deletes this test's namespace topics (and only those) afterwards."""
    admin = AdminClient(dict(settings.kafka_config()))
    yield admin
    prefix = f"{settings.namespace}."
    mine = [name for name in admin.list_topics(timeout=10).topics if name.startswith(prefix)]
    if mine:
        for future in admin.delete_topics(mine, operation_timeout=30).values():
            try:
                future.result()
            except KafkaException:
                pass  # best effort: a leftover topic only costs disk on the test broker


def _topic(admin: AdminClient, name: str, partitions: int, **config: str) -> None:
    admin.create_topics([NewTopic(name, partitions, 1, config=config)])[name].result()


def _partitions(admin: AdminClient, settings: Settings) -> dict[str, int]:
    metadata = admin.list_topics(timeout=10)
    prefix = f"{settings.namespace}."
    return {
        name: len(topic.partitions)
        for name, topic in metadata.topics.items()
        if name.startswith(prefix)
    }


def test_create_is_idempotent_and_verify_passes(
    settings: Settings, kafka_admin: AdminClient
) -> None:
    admin = TopicAdmin(settings)
    expected = [plan.name for plan in namespace_topics(settings, task_queues=["orders"])]
    first = admin.create(task_queues=["orders"])
    assert list(first.created) == expected and first.existed == ()
    second = TopicAdmin(settings).create(task_queues=["orders"])
    assert second.created == () and list(second.existed) == expected

    partitions = _partitions(kafka_admin, settings)
    assert set(partitions) == set(expected)
    assert partitions[commands_topic(settings)] == partitions[history_topic(settings)] == 4
    assert partitions[replies_topic(settings)] == 32

    assert admin.verify(task_queues=["orders"]) == []
    rows = admin.describe()
    # The orders topics are found on the cluster without being named.
    assert [row.name for row in rows] == expected
    assert {row.status for row in rows} == {"ok"}
    history = next(row for row in rows if row.key == "history")
    assert (history.cleanup_policy, history.retention_ms) == ("delete", -1)


def test_every_partition_takes_writes_when_create_returns(
    settings: Settings, kafka_admin: AdminClient
) -> None:
    """A new topic is in the metadata before its leader has created the partitions' logs
    (without the wait, 59 of 66 partitions answered NOT_LEADER_OR_FOLLOWER right after
    creation). A first write in that window can be lost by an idempotent producer and
    still reported delivered (TopicAdmin._wait_until_writable), so create() waits."""
    plans = namespace_topics(settings, task_queues=["orders"])
    TopicAdmin(settings).create(task_queues=["orders"])
    partitions = [TopicPartition(p.name, n) for p in plans for n in range(p.partitions)]
    futures = kafka_admin.list_offsets(
        {tp: OffsetSpec.latest() for tp in partitions}, request_timeout=10
    )
    not_ready = {}
    for tp, future in futures.items():
        try:
            assert future.result().offset == 0
        except KafkaException as exc:
            not_ready[f"{tp.topic}[{tp.partition}]"] = exc.args[0].str()
    assert not_ready == {}

    # Many batches in flight from a new idempotent producer (five requests in flight,
    # not the one of producer_config), on every partition at once: each record
    # reported delivered is on the log, where it was reported.
    topic = commands_topic(settings)
    producer = Producer({**settings.producer_config(), "max.in.flight": 5})
    delivered: dict[tuple[int, int], bytes] = {}
    failed: list[str] = []

    def on_delivery(err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            failed.append(err.str())
        else:
            delivered[(msg.partition(), msg.offset())] = msg.value()

    for n in range(400):
        producer.produce(topic, value=b"%d" % n, partition=n % 4, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0 and failed == []
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"{settings.namespace}.read-back",
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic, n, 0) for n in range(4)])
    on_log: dict[tuple[int, int], bytes] = {}
    at_end: set[int] = set()
    while len(at_end) < 4:
        msg = consumer.poll(10)
        assert msg is not None, "reading the topic back timed out"
        if msg.error() is not None:
            assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error().str()
            at_end.add(msg.partition())
        else:
            on_log[(msg.partition(), msg.offset())] = msg.value()
    consumer.close()
    assert len(delivered) == 400 and on_log == delivered


def test_verify_reports_missing_topics(settings: Settings, kafka_admin: AdminClient) -> None:
    drifts = TopicAdmin(settings).verify(task_queues=["orders"])
    assert {d.kind for d in drifts} == {"missing"}
    assert len(drifts) == len(namespace_topics(settings, task_queues=["orders"]))
    assert f"cadenza topics create --namespace {settings.namespace}" in drifts[0].message


def test_verify_reports_drift_of_topics_created_beforehand(
    settings: Settings, kafka_admin: AdminClient
) -> None:
    # Someone (or a producer with broker defaults) made these before Cadenza did.
    _topic(kafka_admin, commands_topic(settings), 2)
    _topic(kafka_admin, history_topic(settings), 4, **{"cleanup.policy": "compact"})
    _topic(kafka_admin, replies_topic(settings), 32, **{"retention.ms": "1000"})
    _topic(kafka_admin, workflow_tasks_topic(settings, "auto"), 1)

    admin = TopicAdmin(settings)
    result = admin.create()
    assert commands_topic(settings) in result.existed
    assert history_topic(settings) in result.existed

    by_topic: dict[str, list[str]] = {}
    for drift in admin.verify():
        by_topic.setdefault(drift.topic, []).append(drift.kind)
    assert by_topic == {
        # Made with the broker's default retention (7 days) as well.
        commands_topic(settings): ["partitions", "retention.ms"],
        history_topic(settings): ["cleanup.policy", "retention.ms"],
        replies_topic(settings): ["retention.ms"],
        # Found on the cluster though not named: wrong size, and its sibling is missing.
        workflow_tasks_topic(settings, "auto"): ["partitions"],
        activity_tasks_topic(settings, "auto"): ["missing"],
    }
    messages = {d.topic: d.message for d in admin.verify() if d.kind != "retention.ms"}
    assert "has 2 partitions, the catalog expects 4" in messages[commands_topic(settings)]
    assert "cannot remove partitions" in messages[commands_topic(settings)]
    assert "cleanup.policy=compact, the catalog expects delete" in messages[history_topic(settings)]

    statuses = {row.name: row.status for row in admin.describe()}
    assert statuses[commands_topic(settings)] == "drift"
    assert statuses[activity_tasks_topic(settings, "auto")] == "missing"
    assert statuses[f"{settings.namespace}.dead-letters"] == "ok"


def test_ensure_task_queue(
    settings: Settings, kafka_admin: AdminClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = TopicAdmin(settings)
    names = (workflow_tasks_topic(settings, "q1"), activity_tasks_topic(settings, "q1"))
    first = admin.ensure_task_queue("q1")
    assert first.created == names and first.existed == ()

    # The topic is usable at once: a producer right after creation does not race it.
    producer = Producer(dict(settings.kafka_config()))
    delivered: list[object] = []
    producer.produce(names[0], b"task", key=b"wf-1", on_delivery=lambda e, m: delivered.append(e))
    assert producer.flush(10) == 0 and delivered == [None]

    # Remembered: a second call asks the broker nothing.
    monkeypatch.setattr(admin, "_admin", None)
    again = admin.ensure_task_queue("q1")
    assert again.created == () and again.existed == names

    # Another process's admin finds them instead of creating them.
    other = TopicAdmin(settings).ensure_task_queue("q1")
    assert other.created == () and other.existed == names

    # Only what is missing is created.
    kafka_admin.delete_topics([activity_tasks_topic(settings, "q2")])  # not there: no-op
    _topic(kafka_admin, workflow_tasks_topic(settings, "q2"), 4)
    partial = TopicAdmin(settings).ensure_task_queue("q2")
    assert partial.created == (activity_tasks_topic(settings, "q2"),)
    assert partial.existed == (workflow_tasks_topic(settings, "q2"),)


def test_cli_create_verify_describe(settings: Settings, kafka_admin: AdminClient) -> None:
    common = [
        "--namespace",
        settings.namespace,
        "--bootstrap-servers",
        settings.resolved_bootstrap_servers,
        "--partitions",
        "4",
    ]
    runner = CliRunner()
    created = runner.invoke(topics, ["create", *common, "-q", "orders"])
    assert created.exit_code == 0, created.output
    assert (
        f"created 11 topics, 0 already existed in namespace {settings.namespace} on "
        f"{settings.resolved_bootstrap_servers}"
    ) in created.output

    again = runner.invoke(topics, ["create", *common, "-q", "orders"])
    assert again.exit_code == 0, again.output
    assert "created 0 topics, 11 already existed" in again.output
    assert "`cadenza topics verify` checks them" in again.output

    verified = runner.invoke(topics, ["verify", *common])
    assert verified.exit_code == 0, verified.output
    assert f"ok: the 11 topics of namespace {settings.namespace}" in verified.output

    described = runner.invoke(topics, ["describe", *common])
    assert described.exit_code == 0, described.output
    lines = described.output.splitlines()
    assert lines[1].split() == ["TOPIC", "PARTITIONS", "REPLICAS", "CLEANUP", "RETENTION", "STATUS"]
    assert f"{commands_topic(settings)} 4 1 delete 30d ok" in [" ".join(x.split()) for x in lines]

    # Expecting another partition count is drift: exit 1 and one line per finding.
    drifted = runner.invoke(topics, ["verify", *common[:4], "--partitions", "8"])
    assert drifted.exit_code == 1
    assert f"- topic {commands_topic(settings)} has 4 partitions" in drifted.output
    assert "Error: 8 differences from the catalog" in drifted.output


def test_cli_delete_lists_first_then_deletes_only_its_namespace(
    settings: Settings, kafka_admin: AdminClient
) -> None:
    common = ["--bootstrap-servers", settings.resolved_bootstrap_servers, "--partitions", "4"]
    other = f"{settings.namespace}-other"
    runner = CliRunner()
    for namespace in (settings.namespace, other):
        made = runner.invoke(topics, ["create", "--namespace", namespace, *common, "-q", "orders"])
        assert made.exit_code == 0, made.output

    dry = runner.invoke(topics, ["delete", "--namespace", settings.namespace, *common])
    assert dry.exit_code == 0, dry.output
    assert f"11 topics of namespace {settings.namespace!r}; run again with --yes" in dry.output
    assert commands_topic(settings) in kafka_admin.list_topics(timeout=10).topics

    gone = runner.invoke(topics, ["delete", "--namespace", settings.namespace, *common, "--yes"])
    assert gone.exit_code == 0, gone.output
    assert f"deleted 11 topics of namespace {settings.namespace!r}" in gone.output
    left = set(kafka_admin.list_topics(timeout=10).topics)
    assert not any(t.startswith(f"{settings.namespace}.") for t in left)
    assert f"{other}.commands" in left  # a namespace sharing the prefix is untouched
    # (the session's clean-up knows only the namespaces it handed out)
    cleaned = runner.invoke(topics, ["delete", "--namespace", other, *common, "--yes"])
    assert cleaned.exit_code == 0, cleaned.output


def test_cli_entry_point_in_a_subprocess(settings: Settings, kafka_admin: AdminClient) -> None:
    env = dict(os.environ, CADENZA_BOOTSTRAP_SERVERS=settings.resolved_bootstrap_servers)
    args = ["topics", "create", "--namespace", settings.namespace, "--partitions", "4"]
    run = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert f"created 9 topics, 0 already existed in namespace {settings.namespace}" in run.stdout
    assert run.stderr == ""  # librdkafka's logs do not leak onto the terminal
