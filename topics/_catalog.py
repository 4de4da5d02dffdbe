"""The topic catalog: one frozen declaration per Cadenza topic.

A :class:`TopicSpec` says how a topic is named, partitioned, cleaned up and
retained, and what it carries; :meth:`TopicSpec.plan` resolves it against a
:class:`~cadenza.Settings` into a :class:`TopicPlan`, the concrete topic that
``cadenza topics create`` makes and ``cadenza topics verify`` expects.

Every full name is ``<namespace>.<template>``; templated topics
(``workflow-tasks.{task_queue}``, ``activity-tasks.{task_queue}``,
``changelog.{store}``) exist once per task queue or state store.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Literal

from cadenza._settings import Settings

from ._names import TopicNameError, validate_part, validate_task_queue

__all__ = [
    "ACTIVITY_TASKS",
    "CATALOG",
    "CHANGELOG",
    "COMMANDS",
    "DEAD_LETTERS",
    "HISTORY",
    "REPLIES",
    "STORES",
    "STORE_ENGINE_HISTORY",
    "STORE_ENGINE_TIMERS",
    "STORE_ENGINE_WORKFLOWS",
    "STORE_VISIBILITY",
    "VISIBILITY_REQUESTS",
    "WORKFLOW_TASKS",
    "CleanupPolicy",
    "TopicPlan",
    "TopicSpec",
    "activity_tasks_topic",
    "changelog_partition",
    "changelog_partitions",
    "changelog_topic",
    "commands_topic",
    "consumer_group",
    "dead_letters_topic",
    "history_topic",
    "identify",
    "namespace_topics",
    "replies_topic",
    "task_queue_topics",
    "visibility_requests_topic",
    "workflow_tasks_topic",
]

CleanupPolicy = Literal["delete", "compact"]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
INFINITE_RETENTION = -1
"""``retention.ms`` that keeps records forever."""

# Configs the catalog sets through dedicated fields; `configs` must not repeat them
# or the two could disagree.
_DEDICATED_CONFIGS = frozenset({"cleanup.policy", "retention.ms"})

_TEMPLATE_RE = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*(\.\{([a-z_]+)\})?$")


def _in_namespace(settings: Settings, suffix: str) -> str:
    return f"{settings.namespace}.{suffix}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class TopicSpec:
    """The declaration of one catalog topic (or one family of templated topics)."""

    key: str
    """Catalog key, e.g. ``"commands"`` or ``"workflow-tasks"``."""

    template: str
    """Name after the namespace prefix, e.g. ``"commands"`` or ``"workflow-tasks.{task_queue}"``.

    At most one placeholder, and only as the last dotted part.
    """

    partitions: Callable[[Settings], int]
    """Partition count for the given settings (fixed once the topic exists)."""

    cleanup_policy: CleanupPolicy
    """Kafka ``cleanup.policy``."""

    retention_ms: Callable[[Settings], int] | None
    """Kafka ``retention.ms`` for the given settings (-1: forever); None for compacted topics,
    where time-based retention does not apply."""

    configs: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Further topic configs set at creation and checked by ``verify``."""

    accepted_partitions: Callable[[Settings], int] | None = None
    """Another partition count ``verify`` accepts: a changelog as wide as ``commands``,
    as namespaces created before changelogs were narrowed have (the engine reads the
    count it finds)."""

    fixed_partitioning: bool = False
    """True when the partition a record lands in is part of the processors' state
    (``commands``, ``history``, changelogs): its count must never change after creation,
    because adding partitions moves existing keys to other partitions."""

    doc: str
    """What the topic is for: who writes it, who reads it."""

    record_key: str
    """What the record key is (documentation)."""

    record_schema: str
    """Avro schema of the record value (documentation; the schemas live in ``schemas/``)."""

    def __post_init__(self) -> None:
        # Checked at import time, so a bad catalog entry cannot reach a broker.
        if not _TEMPLATE_RE.match(self.template):
            raise ValueError(f"topic template {self.template!r} is not a valid catalog template")
        overlap = _DEDICATED_CONFIGS & set(self.configs)
        if overlap:
            raise ValueError(
                f"topic {self.key!r}: set {', '.join(sorted(overlap))} through the dedicated "
                "field, not configs"
            )
        if (self.retention_ms is None) != (self.cleanup_policy == "compact"):
            raise ValueError(
                f"topic {self.key!r}: retention_ms is required for delete topics and "
                "meaningless for compacted ones"
            )
        object.__setattr__(self, "configs", MappingProxyType(dict(self.configs)))

    @property
    def parameter(self) -> str | None:
        """Name of the template's placeholder (``"task_queue"``, ``"store"``), or None."""
        match = _TEMPLATE_RE.match(self.template)
        assert match is not None  # checked in __post_init__
        return match.group(3)

    @property
    def prefix(self) -> str:
        """The template up to its placeholder (the whole template when there is none)."""
        return self.template.split("{", 1)[0]

    def name(self, settings: Settings, part: str | None = None) -> str:
        """The full topic name in ``settings.namespace``.

        Args:
            settings: Supplies the namespace.
            part: The placeholder's value (task queue or store) for a templated topic.

        Raises:
            TopicNameError: ``part`` is not a valid task-queue or store name.
            TypeError: ``part`` is missing for a templated topic or given for a fixed one.
        """
        parameter = self.parameter
        if parameter is None:
            if part is not None:
                raise TypeError(f"topic {self.key!r} is not templated; it takes no {part!r}")
            return _in_namespace(settings, self.template)
        if part is None:
            raise TypeError(f"topic {self.key!r} needs a {parameter.replace('_', ' ')}")
        validate_part(part, what=parameter.replace("_", " "))
        return _in_namespace(settings, self.prefix + part)

    def plan(self, settings: Settings, part: str | None = None) -> TopicPlan:
        """Resolve this declaration into the concrete topic for ``settings``.

        Raises:
            TopicNameError: ``part`` is not a valid task-queue or store name.
        """
        config: dict[str, str] = {"cleanup.policy": self.cleanup_policy}
        retention = None if self.retention_ms is None else self.retention_ms(settings)
        if retention is not None:
            config["retention.ms"] = str(retention)
        config.update(self.configs)
        return TopicPlan(
            spec=self,
            name=self.name(settings, part),
            part=part,
            partitions=self.partitions(settings),
            replication_factor=int(settings.replication_factor),
            config=MappingProxyType(config),
            accepted_partitions=(
                () if self.accepted_partitions is None else (self.accepted_partitions(settings),)
            ),
        )

    def match(self, settings: Settings, topic: str) -> str | None:
        """The placeholder value if ``topic`` is an instance of this templated spec, else None.

        Fixed specs never match here; compare with :meth:`name` instead.
        """
        if self.parameter is None:
            return None
        prefix = _in_namespace(settings, self.prefix)
        if not topic.startswith(prefix):
            return None
        part = topic[len(prefix) :]
        try:
            validate_part(part, what=self.parameter)
        except TopicNameError:
            return None
        return part


@dataclasses.dataclass(frozen=True)
class TopicPlan:
    """One concrete topic of a namespace: what ``create`` makes and ``verify`` expects."""

    spec: TopicSpec
    """The catalog declaration it comes from."""

    name: str
    """Full topic name."""

    part: str | None
    """Task queue or store for templated topics, else None."""

    partitions: int
    """Partition count."""

    replication_factor: int
    """Replication factor."""

    config: Mapping[str, str]
    """Topic configs set at creation: ``cleanup.policy``, ``retention.ms`` (delete topics)
    and the spec's extra configs."""

    accepted_partitions: tuple[int, ...] = ()
    """Other partition counts ``verify`` takes as right (see ``TopicSpec``)."""

    @property
    def cleanup_policy(self) -> CleanupPolicy:
        """Kafka ``cleanup.policy``."""
        return self.spec.cleanup_policy

    @property
    def retention_ms(self) -> int | None:
        """Kafka ``retention.ms`` (-1: forever), or None for compacted topics."""
        raw = self.config.get("retention.ms")
        return None if raw is None else int(raw)


def _engine_partitions(settings: Settings) -> int:
    return int(settings.partitions)


CHANGELOG_SHARE = 4
"""Store partitions per changelog partition (``changelog_partitions``)."""


def changelog_partitions(partitions: int) -> int:
    """Partitions of a changelog for ``partitions`` store (command) partitions: a
    quarter of them, at least one.

    Every engine transaction writes one changelog partition per command partition it
    touched, and the broker handles a produce request, a verification and a marker for
    each partition of each transaction (librdkafka sends one produce request per
    partition). With one changelog partition per command partition, a busy
    transaction wrote 16 of them; with four it writes four (BENCHMARKS entry 40).
    Store partitions share a changelog partition in blocks (:func:`changelog_partition`),
    so an engine that owns a contiguous range of command partitions, as Kafka's range
    assignor hands them out, writes and restores few changelog partitions.
    """
    return max(1, partitions // CHANGELOG_SHARE)


def changelog_partition(partition: int, partitions: int, changelog: int) -> int:
    """The changelog partition that store partition ``partition`` (of ``partitions``)
    writes to, in a changelog of ``changelog`` partitions: consecutive store partitions
    share one. With as many changelog partitions as store partitions (namespaces created
    before entry 40), it is ``partition`` itself."""
    return partition * changelog // partitions


def _changelog_partitions(settings: Settings) -> int:
    return changelog_partitions(int(settings.partitions))


def _reply_partitions(settings: Settings) -> int:
    return settings.reply_partitions


def _single_partition(settings: Settings) -> int:
    return 1


def _history_retention(settings: Settings) -> int:
    return settings.history_retention_ms


def _fixed(ms: int) -> Callable[[Settings], int]:
    def retention(settings: Settings) -> int:
        return ms

    return retention


COMMANDS = TopicSpec(
    key="commands",
    template="commands",
    partitions=_engine_partitions,
    cleanup_policy="delete",
    # Long enough that an engine outage of weeks loses no acknowledged command.
    retention_ms=_fixed(30 * DAY_MS),
    fixed_partitioning=True,
    doc="Every request to change a workflow (start, signal, cancel, task completions, "
    "timer firings), written by clients, workers, the timer service and the engine; "
    "consumed in order per partition by the engine.",
    record_key="workflow id",
    record_schema="cadenza.command.Command",
)

HISTORY = TopicSpec(
    key="history",
    template="history",
    # Same count and key as commands: the engine instance that owns commands partition p
    # writes the events of those workflows to history partition p.
    partitions=_engine_partitions,
    cleanup_policy="delete",
    retention_ms=_history_retention,
    fixed_partitioning=True,
    doc="The event-sourced history of every workflow, written by the engine; read by the "
    "projections (visibility), replay and external consumers.",
    record_key="workflow id",
    record_schema="cadenza.history.HistoryEvent",
)

WORKFLOW_TASKS = TopicSpec(
    key="workflow-tasks",
    template="workflow-tasks.{task_queue}",
    partitions=_engine_partitions,
    cleanup_policy="delete",
    # A task lost to retention is re-dispatched by its timeout, but a week covers a
    # worker fleet that is down over a weekend without relying on that.
    retention_ms=_fixed(7 * DAY_MS),
    doc="Workflow tasks of one task queue, written by the engine; consumed by the workflow "
    "workers of that queue (one consumer group per queue; the key keeps a workflow sticky "
    "to one worker).",
    record_key="workflow id",
    record_schema="cadenza.task.WorkflowTask",
)

ACTIVITY_TASKS = TopicSpec(
    key="activity-tasks",
    template="activity-tasks.{task_queue}",
    partitions=_engine_partitions,
    cleanup_policy="delete",
    retention_ms=_fixed(7 * DAY_MS),
    doc="Activity tasks of one task queue, written by the engine; consumed by the activity "
    "workers of that queue (one consumer group per queue).",
    record_key='workflow id + "/" + activity id',
    record_schema="cadenza.task.ActivityTask",
)

REPLIES = TopicSpec(
    key="replies",
    template="replies",
    # Each client process reads one partition of its own, chosen at connect, so the count
    # bounds how many clients get a partition to themselves, not the engine's parallelism.
    partitions=_reply_partitions,
    cleanup_policy="delete",
    # Answers are read live by a waiting client; nobody reads an hour-old reply.
    retention_ms=_fixed(HOUR_MS),
    doc="Answers to client requests (workflow results, query and update answers), written "
    "by the engine and workers to the partition the request names; read by clients.",
    record_key="request id",
    record_schema="cadenza.reply.Reply",
)

DEAD_LETTERS = TopicSpec(
    key="dead-letters",
    template="dead-letters",
    # Rare records read by people: one partition keeps them in the order they happened.
    partitions=_single_partition,
    cleanup_policy="delete",
    retention_ms=_fixed(30 * DAY_MS),
    doc="Records the engine could not process (undecodable, rejected as malformed), with "
    "the reason, for operators to inspect and replay.",
    record_key="key of the original record",
    record_schema="cadenza.deadletter.DeadLetter",
)

VISIBILITY_REQUESTS = TopicSpec(
    key="visibility-requests",
    template="visibility-requests",
    # One visibility processor answers every question (its store spans all partitions
    # of history), so one partition is enough and keeps requests in order.
    partitions=_single_partition,
    cleanup_policy="delete",
    # A question is answered within seconds or its client has given up.
    retention_ms=_fixed(HOUR_MS),
    doc="Questions to the visibility projection (list and count workflows), written by "
    "clients; read by the visibility processor, which answers on `replies`.",
    record_key="request id",
    record_schema="cadenza.visibility.VisibilityRequest",
)

CHANGELOG = TopicSpec(
    key="changelog",
    template="changelog.{store}",
    # Narrower than commands: store partition p of P writes changelog partition
    # p * C // P (``changelog_partition``), and a restore takes only its own records.
    partitions=_changelog_partitions,
    accepted_partitions=_engine_partitions,
    cleanup_policy="compact",
    retention_ms=None,
    configs={
        # Only the latest value of a key matters for a restore; point-in-time replay
        # reads `history`, so superseded values need not be kept.
        "min.compaction.lag.ms": "0",
        # The active segment is never compacted: rolling hourly bounds the uncompacted
        # tail a restore must read (Kafka's default is a week).
        "segment.ms": str(HOUR_MS),
        # State keys are overwritten constantly; compact at 10% superseded (default 50%)
        # because restore time grows with the log's size.
        "min.cleanable.dirty.ratio": "0.1",
        # Deletes (tombstones) must outlive the longest restore, or a restoring
        # processor could miss them and resurrect a deleted key.
        "delete.retention.ms": str(DAY_MS),
    },
    fixed_partitioning=True,
    doc="Compacted changelog of one processor state store (RocksDB), written by the "
    "processor that owns the store; read back to restore the store after a move or crash.",
    record_key="store key",
    record_schema="store-specific (see the processor that owns the store)",
)

CATALOG: Mapping[str, TopicSpec] = MappingProxyType(
    {
        spec.key: spec
        for spec in (
            COMMANDS,
            HISTORY,
            WORKFLOW_TASKS,
            ACTIVITY_TASKS,
            REPLIES,
            DEAD_LETTERS,
            VISIBILITY_REQUESTS,
            CHANGELOG,
        )
    }
)
"""Every topic declaration, by catalog key, in the order DESIGN.md lists them."""

STORE_ENGINE_WORKFLOWS = "engine-workflows"
"""The engine's per-workflow mutable state."""

STORE_ENGINE_HISTORY = "engine-history"
"""The engine's copy of each workflow's history."""

STORE_ENGINE_TIMERS = "engine-timers"
"""The timer index, keyed by (due time, workflow id, timer id)."""

STORE_VISIBILITY = "visibility"
"""The visibility projection and its secondary indexes."""

STORES: tuple[str, ...] = (
    STORE_ENGINE_WORKFLOWS,
    STORE_ENGINE_HISTORY,
    STORE_ENGINE_TIMERS,
    STORE_VISIBILITY,
)
"""The state stores known today; ``cadenza topics create`` makes a changelog for each."""

_FIXED_SPECS = (COMMANDS, HISTORY, REPLIES, DEAD_LETTERS, VISIBILITY_REQUESTS)
_TASK_SPECS = (WORKFLOW_TASKS, ACTIVITY_TASKS)

_ROLE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def commands_topic(settings: Settings) -> str:
    """Full name of the ``commands`` topic."""
    return COMMANDS.name(settings)


def history_topic(settings: Settings) -> str:
    """Full name of the ``history`` topic."""
    return HISTORY.name(settings)


def workflow_tasks_topic(settings: Settings, task_queue: str) -> str:
    """Full name of the workflow-task topic of ``task_queue``.

    Raises:
        TopicNameError: ``task_queue`` is not a valid task-queue name.
    """
    return WORKFLOW_TASKS.name(settings, task_queue)


def activity_tasks_topic(settings: Settings, task_queue: str) -> str:
    """Full name of the activity-task topic of ``task_queue``.

    Raises:
        TopicNameError: ``task_queue`` is not a valid task-queue name.
    """
    return ACTIVITY_TASKS.name(settings, task_queue)


def replies_topic(settings: Settings) -> str:
    """Full name of the ``replies`` topic."""
    return REPLIES.name(settings)


def dead_letters_topic(settings: Settings) -> str:
    """Full name of the ``dead-letters`` topic."""
    return DEAD_LETTERS.name(settings)


def visibility_requests_topic(settings: Settings) -> str:
    """Full name of the ``visibility-requests`` topic."""
    return VISIBILITY_REQUESTS.name(settings)


def changelog_topic(settings: Settings, store: str) -> str:
    """Full name of the changelog topic of state store ``store``.

    Raises:
        TopicNameError: ``store`` is not a valid store name.
    """
    return CHANGELOG.name(settings, store)


def consumer_group(settings: Settings, role: str) -> str:
    """Consumer-group id of ``role`` in this namespace: ``<namespace>.<role>``.

    Args:
        settings: Supplies the namespace.
        role: What the group does, e.g. ``"engine"`` or ``"workflow-worker.orders"``.

    Raises:
        TopicNameError: ``role`` is empty or has characters other than letters,
            digits, '.', '_' and '-'.
    """
    if not isinstance(role, str) or not _ROLE_RE.match(role):
        raise TopicNameError(
            f"consumer-group role {role!r} is not usable: use letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return f"{settings.namespace}.{role}"


def _unique(values: Iterable[str]) -> list[str]:
    # A str is iterable too; `task_queues="orders"` would otherwise become five queues.
    if isinstance(values, str):
        raise TypeError("pass a sequence of names, not a single string")
    return list(dict.fromkeys(values))


def task_queue_topics(settings: Settings, task_queue: str) -> tuple[TopicPlan, TopicPlan]:
    """The workflow-task and activity-task topics of ``task_queue``.

    Raises:
        TopicNameError: ``task_queue`` is not a valid task-queue name.
    """
    validate_task_queue(task_queue)
    return WORKFLOW_TASKS.plan(settings, task_queue), ACTIVITY_TASKS.plan(settings, task_queue)


def namespace_topics(
    settings: Settings,
    *,
    task_queues: Iterable[str] = (),
    stores: Iterable[str] = STORES,
) -> list[TopicPlan]:
    """Every topic a namespace needs: the fixed ones, the changelogs of ``stores``, and
    the two task topics of each of ``task_queues``.

    Raises:
        TopicNameError: a task-queue or store name is not valid.
    """
    plans = [spec.plan(settings) for spec in _FIXED_SPECS]
    plans.extend(CHANGELOG.plan(settings, store) for store in _unique(stores))
    for queue in _unique(task_queues):
        plans.extend(task_queue_topics(settings, queue))
    return plans


def identify(settings: Settings, topic: str) -> tuple[TopicSpec, str | None] | None:
    """Which catalog entry ``topic`` is in this namespace, with its task queue or store.

    Returns:
        ``(spec, part)`` (``part`` None for fixed topics), or None when the topic is not
        a catalog topic of ``settings.namespace``.
    """
    for spec in CATALOG.values():
        if spec.parameter is None:
            if topic == spec.name(settings):
                return spec, None
        else:
            part = spec.match(settings, topic)
            if part is not None:
                return spec, part
    return None
