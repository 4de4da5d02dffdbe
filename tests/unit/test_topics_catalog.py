"""The topic catalog without a broker: names, validation, partitioning, configs."""

from __future__ import annotations

import dataclasses
import re

import pytest

from cadenza import Settings, SettingsError
from cadenza.topics import (
    CATALOG,
    CHANGELOG,
    COMMANDS,
    HISTORY,
    REPLIES,
    STORES,
    VISIBILITY_REQUESTS,
    TopicNameError,
    TopicSpec,
    activity_tasks_topic,
    changelog_partition,
    changelog_partitions,
    changelog_topic,
    commands_topic,
    consumer_group,
    dead_letters_topic,
    history_topic,
    identify,
    namespace_topics,
    replies_topic,
    task_queue_topics,
    validate_store,
    validate_task_queue,
    visibility_requests_topic,
    workflow_tasks_topic,
)

# Kafka's own rule (org.apache.kafka.common.internals.Topic).
KAFKA_TOPIC_RE = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")

# The topic table of DESIGN.md, by catalog key ("state changelogs" is `changelog`).
DESIGN_TOPICS = {
    "commands",
    "history",
    "workflow-tasks",
    "activity-tasks",
    "replies",
    "dead-letters",
    "changelog",
    # Not in DESIGN.md's table: where clients ask the visibility projection (list, count).
    "visibility-requests",
}


@pytest.fixture
def settings() -> Settings:
    return dataclasses.replace(Settings.defaults(), namespace="ns", partitions=6)


def test_every_design_topic_is_in_the_catalog() -> None:
    assert set(CATALOG) == DESIGN_TOPICS
    assert all(key == spec.key for key, spec in CATALOG.items())


def test_names_carry_the_namespace(settings: Settings) -> None:
    assert commands_topic(settings) == "ns.commands"
    assert history_topic(settings) == "ns.history"
    assert workflow_tasks_topic(settings, "orders") == "ns.workflow-tasks.orders"
    assert activity_tasks_topic(settings, "orders") == "ns.activity-tasks.orders"
    assert replies_topic(settings) == "ns.replies"
    assert dead_letters_topic(settings) == "ns.dead-letters"
    assert changelog_topic(settings, "visibility") == "ns.changelog.visibility"
    assert visibility_requests_topic(settings) == "ns.visibility-requests"
    assert consumer_group(settings, "engine") == "ns.engine"
    assert consumer_group(settings, "workflow-worker.orders") == "ns.workflow-worker.orders"
    assert commands_topic(Settings.defaults()) == "cadenza.commands"


def test_commands_and_history_share_one_partition_count_and_changelogs_a_quarter() -> None:
    for partitions, changelog in ((1, 1), (3, 1), (4, 1), (16, 4), (100, 25)):
        settings = dataclasses.replace(Settings.defaults(), partitions=partitions)
        assert COMMANDS.plan(settings).partitions == partitions
        assert HISTORY.plan(settings).partitions == partitions
        for store in STORES:
            assert CHANGELOG.plan(settings, store).partitions == changelog
    assert COMMANDS.fixed_partitioning and HISTORY.fixed_partitioning
    assert CHANGELOG.fixed_partitioning


def test_store_partitions_share_changelog_partitions_in_blocks() -> None:
    assert [changelog_partition(p, 16, 4) for p in range(16)] == [
        0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3,
    ]  # fmt: skip
    # A count that does not divide: every changelog partition is used, in order.
    assert [changelog_partition(p, 6, 4) for p in range(6)] == [0, 0, 1, 2, 2, 3]
    # A namespace whose changelog is as wide as commands keeps p -> p.
    assert [changelog_partition(p, 16, 16) for p in range(16)] == list(range(16))
    assert all(changelog_partition(p, 5, 1) == 0 for p in range(5))
    assert changelog_partitions(16) == 4


def test_policies_and_retention(settings: Settings) -> None:
    day = 86_400_000
    commands = COMMANDS.plan(settings)
    assert commands.config == {"cleanup.policy": "delete", "retention.ms": str(30 * day)}
    assert HISTORY.plan(settings).retention_ms == -1
    assert REPLIES.plan(settings).partitions == 32
    assert REPLIES.plan(settings).retention_ms == 3_600_000
    assert VISIBILITY_REQUESTS.plan(settings).partitions == 1
    assert VISIBILITY_REQUESTS.plan(settings).config == {
        "cleanup.policy": "delete",
        "retention.ms": "3600000",
    }
    workflow_tasks, activity_tasks = task_queue_topics(settings, "q")
    assert workflow_tasks.partitions == activity_tasks.partitions == 6
    assert workflow_tasks.cleanup_policy == activity_tasks.cleanup_policy == "delete"
    changelog = CHANGELOG.plan(settings, "engine-timers")
    assert changelog.cleanup_policy == "compact"
    assert changelog.retention_ms is None and "retention.ms" not in changelog.config
    for key in ("min.compaction.lag.ms", "segment.ms", "min.cleanable.dirty.ratio"):
        assert key in changelog.config
    assert all(p.replication_factor == settings.replication_factor for p in [commands, changelog])


def test_namespace_topics(settings: Settings) -> None:
    names = [p.name for p in namespace_topics(settings)]
    assert names == [
        "ns.commands",
        "ns.history",
        "ns.replies",
        "ns.dead-letters",
        "ns.visibility-requests",
        "ns.changelog.engine-workflows",
        "ns.changelog.engine-history",
        "ns.changelog.engine-timers",
        "ns.changelog.visibility",
    ]
    with_queues = namespace_topics(settings, task_queues=["a", "b", "a"], stores=[])
    assert [p.name for p in with_queues][5:] == [
        "ns.workflow-tasks.a",
        "ns.activity-tasks.a",
        "ns.workflow-tasks.b",
        "ns.activity-tasks.b",
    ]
    with pytest.raises(TypeError, match="not a single string"):
        namespace_topics(settings, task_queues="orders")


@pytest.mark.parametrize(
    "queue",
    ["", "a.b", "a b", "-a", "_a", "a/b", "a,b", "é", "a" * 161, "{x}"],
)
def test_bad_task_queue_names_say_what_is_allowed(settings: Settings, queue: str) -> None:
    with pytest.raises(TopicNameError, match="letters, digits, '_' or '-'"):
        validate_task_queue(queue)
    with pytest.raises(TopicNameError, match="task queue name"):
        workflow_tasks_topic(settings, queue)
    with pytest.raises(TopicNameError):
        task_queue_topics(settings, queue)
    with pytest.raises(TopicNameError):
        namespace_topics(settings, task_queues=[queue])


def test_a_dot_in_a_queue_name_is_explained() -> None:
    with pytest.raises(TopicNameError, match=r"'\.' separates the parts"):
        validate_task_queue("orders.v2")


def test_bad_store_and_role_names() -> None:
    with pytest.raises(TopicNameError, match="store name"):
        validate_store("engine.workflows")
    with pytest.raises(TopicNameError, match="consumer-group role"):
        consumer_group(Settings.defaults(), "")
    with pytest.raises(TopicNameError, match="consumer-group role"):
        consumer_group(Settings.defaults(), "a b")


@pytest.mark.parametrize("queue", ["orders", "Orders_v2", "a-b", "9", "a" * 160])
def test_good_task_queue_names(queue: str) -> None:
    assert validate_task_queue(queue) == queue


@pytest.mark.parametrize("namespace", ["a.b", "a b", "-a", "a/b", "x" * 64])
def test_bad_namespaces_are_rejected_by_settings(namespace: str) -> None:
    # The namespace is validated once, by Settings, as a topic-name prefix.
    with pytest.raises(SettingsError, match="not usable as a topic prefix"):
        Settings.from_env({"CADENZA_NAMESPACE": namespace})


def test_every_name_is_a_valid_kafka_topic_even_at_the_longest() -> None:
    settings = dataclasses.replace(Settings.defaults(), namespace="n" * 63)
    longest = "q" * 160
    plans = namespace_topics(settings, task_queues=[longest], stores=[*STORES, longest])
    assert len(plans) == 12
    for plan in plans:
        assert KAFKA_TOPIC_RE.match(plan.name), plan.name


def test_templated_specs_need_their_part(settings: Settings) -> None:
    with pytest.raises(TypeError, match="needs a task queue"):
        CATALOG["workflow-tasks"].name(settings)
    with pytest.raises(TypeError, match="not templated"):
        COMMANDS.name(settings, "x")
    assert CATALOG["workflow-tasks"].parameter == "task_queue"
    assert CHANGELOG.parameter == "store"
    assert COMMANDS.parameter is None


def test_identify_round_trips(settings: Settings) -> None:
    for plan in namespace_topics(settings, task_queues=["orders"]):
        assert identify(settings, plan.name) == (plan.spec, plan.part)
    assert identify(settings, "other.commands") is None
    assert identify(settings, "ns.workflow-tasks.a.b") is None
    assert identify(settings, "ns.unknown") is None


def test_specs_are_checked_when_declared() -> None:
    base = dict(
        key="x",
        template="x",
        partitions=lambda s: 1,
        cleanup_policy="delete",
        retention_ms=lambda s: 1,
        doc="",
        record_key="",
        record_schema="",
    )
    TopicSpec(**base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dedicated"):
        TopicSpec(**{**base, "configs": {"retention.ms": "5"}})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="meaningless for compacted"):
        TopicSpec(**{**base, "cleanup_policy": "compact"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a valid catalog template"):
        TopicSpec(**{**base, "template": "x.{a}.y"})  # type: ignore[arg-type]


def test_specs_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        COMMANDS.template = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        CHANGELOG.configs["segment.ms"] = "1"  # type: ignore[index]
    with pytest.raises(TypeError):
        CATALOG["x"] = COMMANDS  # type: ignore[index]


def test_every_spec_is_documented() -> None:
    for spec in CATALOG.values():
        assert spec.doc and spec.record_key and spec.record_schema
