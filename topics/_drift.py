"""Comparing a topic as it is on the cluster with the catalog's plan for it.

Pure functions over plain data, so every message can be tested without a broker;
:class:`cadenza.topics.TopicAdmin` fetches the :class:`ObservedTopic` values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

from ._catalog import TopicPlan

__all__ = ["Drift", "DriftKind", "ObservedTopic", "compare", "format_retention"]

DriftKind = Literal[
    "missing", "partitions", "replication", "cleanup.policy", "retention.ms", "config"
]


@dataclasses.dataclass(frozen=True)
class ObservedTopic:
    """A topic as the cluster describes it."""

    name: str
    """Full topic name."""

    partitions: int
    """Partition count."""

    replication_factor: int
    """Replicas of the first partition (Kafka gives every partition the same count at
    creation)."""

    config: Mapping[str, str]
    """The topic's effective configs (``describe_configs``), by name."""


@dataclasses.dataclass(frozen=True)
class Drift:
    """One way a topic differs from the catalog, with how to fix it."""

    topic: str
    """Full topic name."""

    kind: DriftKind
    """What differs: the topic is missing, or which property."""

    expected: str
    """What the catalog wants."""

    actual: str | None
    """What the cluster has (None when the topic is missing)."""

    message: str
    """What differs and how to fix it, for people."""

    def __str__(self) -> str:
        return self.message


def format_retention(ms: int | None) -> str:
    """``retention.ms`` for people: ``"infinite"``, ``"30d"``, ``"1h"``; ``"-"`` for None."""
    if ms is None:
        return "-"
    if ms < 0:
        return "infinite"
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _policies(raw: str) -> frozenset[str]:
    # Kafka accepts "compact,delete" in any order and with spaces.
    return frozenset(p.strip() for p in raw.split(",") if p.strip())


def _alter_config(plan: TopicPlan, bootstrap: str, key: str, value: str) -> str:
    return (
        f"kafka-configs.sh --bootstrap-server {bootstrap} --alter --entity-type topics "
        f"--entity-name {plan.name} --add-config {key}={value}"
    )


def _create_command(plan: TopicPlan, namespace: str) -> str:
    command = f"cadenza topics create --namespace {namespace}"
    if plan.spec.key in ("workflow-tasks", "activity-tasks") and plan.part is not None:
        command += f" --task-queue {plan.part}"
    return command


def _partitions_drift(plan: TopicPlan, actual: int, bootstrap: str) -> str:
    what = f"topic {plan.name} has {actual} partitions, the catalog expects {plan.partitions}"
    if plan.spec.fixed_partitioning and plan.accepted_partitions:
        # A changelog: its count follows the namespace's, which the settings must match.
        accepted = " or ".join(str(n) for n in plan.accepted_partitions)
        return (
            f"{what} (or {accepted}, as wide as commands). A changelog has a quarter of the "
            "namespace's partitions (CADENZA_PARTITIONS / --partitions), or as many in "
            "namespaces created before changelogs were narrowed. Check CADENZA_PARTITIONS "
            "against the commands topic; if the changelog is the odd one out, recreate the "
            "namespace, losing its data"
        )
    if plan.spec.fixed_partitioning:
        # The count is part of the engine's state: the settings must follow the topic.
        return (
            f"{what} (CADENZA_PARTITIONS / --partitions). Its count is fixed at creation: Kafka "
            "cannot remove partitions, and adding some would move keys away from their state "
            "(commands and history share one count). If the topic is right, "
            f"run with CADENZA_PARTITIONS={actual}; otherwise recreate the namespace, losing "
            "its data"
        )
    if actual > plan.partitions:
        return (
            f"{what}. Kafka cannot reduce a partition count: this is harmless for this topic, "
            "or delete and recreate it (losing its records) to match"
        )
    return (
        f"{what}. Add partitions with: kafka-topics.sh --bootstrap-server {bootstrap} "
        f"--alter --topic {plan.name} --partitions {plan.partitions}"
    )


def compare(
    plan: TopicPlan,
    observed: ObservedTopic | None,
    *,
    namespace: str,
    bootstrap: str,
) -> list[Drift]:
    """Every difference between ``plan`` and the topic the cluster has.

    Checks existence, partition count, replication (only fewer replicas than configured
    is reported: more is not a risk), ``cleanup.policy``, ``retention.ms`` (delete topics
    only) and the spec's extra configs.

    Args:
        plan: What the catalog wants.
        observed: What the cluster has, or None when the topic does not exist.
        namespace: The namespace, for the ``cadenza topics create`` hint.
        bootstrap: The bootstrap servers, for the ``kafka-*.sh`` hints.

    Returns:
        The findings, empty when the topic matches.
    """
    if observed is None:
        return [
            Drift(
                topic=plan.name,
                kind="missing",
                expected="exists",
                actual=None,
                message=f"topic {plan.name} is missing: run `{_create_command(plan, namespace)}`",
            )
        ]
    drifts: list[Drift] = []
    if observed.partitions != plan.partitions and (
        observed.partitions not in plan.accepted_partitions
    ):
        drifts.append(
            Drift(
                topic=plan.name,
                kind="partitions",
                expected=str(plan.partitions),
                actual=str(observed.partitions),
                message=_partitions_drift(plan, observed.partitions, bootstrap),
            )
        )
    if observed.replication_factor < plan.replication_factor:
        drifts.append(
            Drift(
                topic=plan.name,
                kind="replication",
                expected=str(plan.replication_factor),
                actual=str(observed.replication_factor),
                message=(
                    f"topic {plan.name} has {observed.replication_factor} replicas per "
                    f"partition, fewer than CADENZA_REPLICATION_FACTOR="
                    f"{plan.replication_factor}: add replicas with "
                    "kafka-reassign-partitions.sh"
                ),
            )
        )
    actual_policy = observed.config.get("cleanup.policy")
    if actual_policy is None or _policies(actual_policy) != {plan.cleanup_policy}:
        drifts.append(
            Drift(
                topic=plan.name,
                kind="cleanup.policy",
                expected=plan.cleanup_policy,
                actual=actual_policy,
                message=(
                    f"topic {plan.name} has cleanup.policy={actual_policy}, the catalog expects "
                    f"{plan.cleanup_policy}: fix with "
                    + _alter_config(plan, bootstrap, "cleanup.policy", plan.cleanup_policy)
                ),
            )
        )
    expected_retention = plan.retention_ms
    if expected_retention is not None:
        raw = observed.config.get("retention.ms")
        actual_retention = None if raw is None else int(raw)
        if actual_retention != expected_retention:
            drifts.append(
                Drift(
                    topic=plan.name,
                    kind="retention.ms",
                    expected=str(expected_retention),
                    actual=raw,
                    message=(
                        f"topic {plan.name} has retention.ms={raw} "
                        f"({format_retention(actual_retention)}), the catalog expects "
                        f"{expected_retention} ({format_retention(expected_retention)}): fix with "
                        + _alter_config(plan, bootstrap, "retention.ms", str(expected_retention))
                    ),
                )
            )
    for key, value in plan.spec.configs.items():
        actual_value = observed.config.get(key)
        if actual_value is None or not _same_config_value(actual_value, value):
            drifts.append(
                Drift(
                    topic=plan.name,
                    kind="config",
                    expected=f"{key}={value}",
                    actual=None if actual_value is None else f"{key}={actual_value}",
                    message=(
                        f"topic {plan.name} has {key}={actual_value}, the catalog expects "
                        f"{value}: fix with " + _alter_config(plan, bootstrap, key, value)
                    ),
                )
            )
    return drifts


def _same_config_value(actual: str, expected: str) -> bool:
    # Brokers echo numbers in their own format ("0.1" may come back as "0.10").
    try:
        return float(actual) == float(expected)
    except ValueError:
        return actual == expected
