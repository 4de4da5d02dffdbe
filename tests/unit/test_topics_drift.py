"""Drift findings and their messages, from plain data (no broker)."""

from __future__ import annotations

import dataclasses

import pytest

from cadenza import Settings
from cadenza.topics import CHANGELOG, COMMANDS, HISTORY, REPLIES, format_retention
from cadenza.topics._catalog import TopicPlan, task_queue_topics
from cadenza.topics._drift import Drift, ObservedTopic, compare

SETTINGS = dataclasses.replace(Settings.defaults(), namespace="ns", partitions=8)
BOOTSTRAP = "k1:9092"


def _observed(
    plan: TopicPlan,
    *,
    partitions: int | None = None,
    replication_factor: int | None = None,
    config: dict[str, str] | None = None,
) -> ObservedTopic:
    """The topic as the plan wants it, with the given differences."""
    return ObservedTopic(
        name=plan.name,
        partitions=plan.partitions if partitions is None else partitions,
        replication_factor=(
            plan.replication_factor if replication_factor is None else replication_factor
        ),
        config={**plan.config, **(config or {})},
    )


def _compare(plan: TopicPlan, observed: ObservedTopic | None) -> list[Drift]:
    return compare(plan, observed, namespace="ns", bootstrap=BOOTSTRAP)


def test_a_matching_topic_has_no_drift() -> None:
    for plan in [COMMANDS.plan(SETTINGS), CHANGELOG.plan(SETTINGS, "visibility")]:
        assert _compare(plan, _observed(plan)) == []


def test_missing_topic_says_how_to_create_it() -> None:
    (drift,) = _compare(COMMANDS.plan(SETTINGS), None)
    assert drift.kind == "missing" and drift.actual is None
    assert str(drift) == "topic ns.commands is missing: run `cadenza topics create --namespace ns`"
    workflow_tasks, _ = task_queue_topics(SETTINGS, "orders")
    (drift,) = _compare(workflow_tasks, None)
    assert "cadenza topics create --namespace ns --task-queue orders" in drift.message


@pytest.mark.parametrize("actual", [4, 16])
def test_partition_drift_on_a_fixed_topic_points_at_the_setting(actual: int) -> None:
    plan = HISTORY.plan(SETTINGS)
    (drift,) = _compare(plan, _observed(plan, partitions=actual))
    assert (drift.kind, drift.expected, drift.actual) == ("partitions", "8", str(actual))
    assert f"has {actual} partitions, the catalog expects 8" in drift.message
    assert "cannot remove partitions" in drift.message
    assert f"CADENZA_PARTITIONS={actual}" in drift.message


def test_a_changelog_takes_a_quarter_of_the_partitions_or_as_many_as_commands() -> None:
    plan = CHANGELOG.plan(SETTINGS, "engine-workflows")
    assert (plan.partitions, plan.accepted_partitions) == (2, (8,))
    # Narrowed (today's namespaces) or as wide as commands (created before): both run.
    assert _compare(plan, _observed(plan, partitions=2)) == []
    assert _compare(plan, _observed(plan, partitions=8)) == []
    (drift,) = _compare(plan, _observed(plan, partitions=5))
    assert (drift.kind, drift.expected, drift.actual) == ("partitions", "2", "5")
    assert "has 5 partitions, the catalog expects 2 (or 8, as wide as commands)" in drift.message
    assert "Check CADENZA_PARTITIONS against the commands topic" in drift.message


def test_partition_drift_on_other_topics() -> None:
    plan = REPLIES.plan(SETTINGS)
    (fewer,) = _compare(plan, _observed(plan, partitions=2))
    assert f"kafka-topics.sh --bootstrap-server {BOOTSTRAP} --alter" in fewer.message
    assert "--partitions 32" in fewer.message
    (more,) = _compare(plan, _observed(plan, partitions=64))
    assert "cannot reduce a partition count" in more.message


def test_cleanup_policy_drift() -> None:
    plan = CHANGELOG.plan(SETTINGS, "engine-timers")
    (drift,) = _compare(plan, _observed(plan, config={"cleanup.policy": "delete"}))
    assert (drift.kind, drift.expected, drift.actual) == ("cleanup.policy", "compact", "delete")
    assert "--entity-name ns.changelog.engine-timers --add-config cleanup.policy=compact" in (
        drift.message
    )
    # Kafka accepts either order for a combined policy; it is still not "compact".
    assert _compare(plan, _observed(plan, config={"cleanup.policy": "delete,compact"}))
    assert not _compare(plan, _observed(plan, config={"cleanup.policy": " compact"}))


def test_retention_drift_names_both_values() -> None:
    plan = HISTORY.plan(SETTINGS)
    (drift,) = _compare(plan, _observed(plan, config={"retention.ms": "604800000"}))
    assert drift.kind == "retention.ms"
    assert "retention.ms=604800000 (7d), the catalog expects -1 (infinite)" in drift.message
    assert "--add-config retention.ms=-1" in drift.message


def test_changelog_config_drift() -> None:
    plan = CHANGELOG.plan(SETTINGS, "visibility")
    (drift,) = _compare(plan, _observed(plan, config={"min.cleanable.dirty.ratio": "0.5"}))
    assert drift.kind == "config" and drift.expected == "min.cleanable.dirty.ratio=0.1"
    # The broker may echo a number in another spelling.
    assert not _compare(plan, _observed(plan, config={"min.cleanable.dirty.ratio": "0.10"}))


def test_only_fewer_replicas_is_drift() -> None:
    settings = dataclasses.replace(SETTINGS, replication_factor=3)
    plan = COMMANDS.plan(settings)
    (drift,) = _compare(plan, _observed(plan, replication_factor=1))
    assert drift.kind == "replication" and "CADENZA_REPLICATION_FACTOR=3" in drift.message
    assert not _compare(plan, _observed(plan, replication_factor=5))


def test_several_drifts_at_once() -> None:
    plan = COMMANDS.plan(SETTINGS)
    observed = _observed(plan, partitions=1, config={"cleanup.policy": "compact"})
    assert [d.kind for d in _compare(plan, observed)] == ["partitions", "cleanup.policy"]


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (None, "-"),
        (-1, "infinite"),
        (2_592_000_000, "30d"),
        (3_600_000, "1h"),
        (90_000, "90s"),
        (120_000, "2m"),
        (1500, "1500ms"),
        (0, "0ms"),
    ],
)
def test_format_retention(ms: int | None, text: str) -> None:
    assert format_retention(ms) == text
