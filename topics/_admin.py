"""Creating, verifying and describing a namespace's topics on a Kafka cluster."""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicCollection, TopicPartition

# The documented import path; confluent_kafka.admin re-exports its names without an
# __all__, which mypy's strict no-implicit-reexport rejects.
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from cadenza._settings import Settings
from cadenza.exceptions import CadenzaError

from ._catalog import (
    CHANGELOG,
    STORES,
    TopicPlan,
    identify,
    namespace_topics,
    task_queue_topics,
)
from ._drift import Drift, ObservedTopic, compare

__all__ = ["CreateResult", "TopicAdmin", "TopicAdminError", "TopicRow"]

_log = logging.getLogger("cadenza.topics")
# librdkafka logs every failed connection attempt; routed through `logging` (silent
# unless the application configures it) so the CLI prints one clear error instead.
_log.addHandler(logging.NullHandler())
_kafka_log = logging.getLogger("cadenza.topics.kafka")

DEFAULT_TIMEOUT = 10.0
"""Seconds an admin operation may take before it counts as a failure to reach Kafka."""

_UNREACHABLE = frozenset(
    {
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError.BROKER_NOT_AVAILABLE,
    }
)
_LATEST: Any = OffsetSpec.latest()  # type: ignore[no-untyped-call]
"""ListOffsets for the end of a partition."""
_NOT_READY = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.REPLICA_NOT_AVAILABLE,
        # The client's metadata names a newer leader epoch than the broker knows yet.
        KafkaError.UNKNOWN_LEADER_EPOCH,
    }
)
"""Errors of a partition whose leader has not finished creating it (retried)."""
_AUTHENTICATION = frozenset(
    {KafkaError._AUTHENTICATION, KafkaError._SSL, KafkaError.SASL_AUTHENTICATION_FAILED}
)
_AUTHORIZATION = frozenset(
    {KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED}
)


class TopicAdminError(CadenzaError):
    """An admin operation failed; the message says why and what to do about it."""


@dataclasses.dataclass(frozen=True)
class CreateResult:
    """What :meth:`TopicAdmin.create` (or :meth:`TopicAdmin.ensure_task_queue`) did."""

    created: tuple[str, ...]
    """Topics this call created."""

    existed: tuple[str, ...]
    """Topics that were already there (left unchanged; :meth:`TopicAdmin.verify` checks them)."""


@dataclasses.dataclass(frozen=True)
class TopicRow:
    """One line of :meth:`TopicAdmin.describe`: the cluster's values when the topic
    exists, else the catalog's."""

    name: str
    """Full topic name."""

    key: str
    """Catalog key (``"commands"``, ``"workflow-tasks"``, ...)."""

    part: str | None
    """Task queue or store of a templated topic."""

    exists: bool
    """Whether the topic is on the cluster."""

    partitions: int
    """Partition count."""

    replication_factor: int
    """Replicas per partition."""

    cleanup_policy: str
    """Kafka ``cleanup.policy``."""

    retention_ms: int | None
    """Kafka ``retention.ms`` (-1: forever); None when the topic is not time-retained."""

    drift: tuple[Drift, ...]
    """How the topic differs from the catalog (a missing topic has one ``missing`` drift)."""

    @property
    def status(self) -> str:
        """``"ok"``, ``"missing"`` or ``"drift"``."""
        if not self.exists:
            return "missing"
        return "drift" if self.drift else "ok"


def _kafka_error(exc: BaseException) -> KafkaError | None:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


class TopicAdmin:
    """Creates and checks the topics of ``settings.namespace`` with confluent-kafka's AdminClient.

    Blocking (each call waits for the cluster, at most about ``timeout`` seconds per
    request); from asyncio code, call it through ``asyncio.to_thread``. Safe to share
    between threads.

    Example::

        admin = TopicAdmin(Settings.from_env())
        result = admin.create(task_queues=["orders"])
        for drift in admin.verify(task_queues=["orders"]):
            print(drift)
    """

    def __init__(self, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Connect lazily to the cluster ``settings`` names.

        Args:
            settings: Namespace, bootstrap servers, security, partitions and replication.
            timeout: Seconds each admin request may take before it counts as a failure.
        """
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        self._settings = settings
        self._timeout = timeout
        # librdkafka reports why it cannot connect only through error_cb; the latest
        # reasons go into the "cannot reach Kafka" message.
        self._errors: collections.deque[KafkaError] = collections.deque(maxlen=8)
        config: dict[str, Any] = dict(settings.kafka_config())
        config["error_cb"] = self._errors.append
        self._admin = AdminClient(config, logger=_kafka_log)
        self._known: set[str] = set()
        self._known_lock = threading.Lock()

    @property
    def settings(self) -> Settings:
        """The settings this admin works with."""
        return self._settings

    @property
    def bootstrap_servers(self) -> str:
        """The bootstrap servers it connects to."""
        return str(self._settings.resolved_bootstrap_servers)

    # -- public operations -------------------------------------------------------------

    def create(
        self,
        task_queues: Iterable[str] = (),
        *,
        stores: Iterable[str] = STORES,
    ) -> CreateResult:
        """Create every catalog topic of the namespace that does not exist yet.

        Idempotent: existing topics are counted in ``existed`` and left unchanged (even
        when they differ from the catalog; :meth:`verify` reports that). Returns once
        every topic is visible in the cluster's metadata with a leader for each
        partition, so a producer started right after finds them.

        Args:
            task_queues: Task queues whose workflow-task and activity-task topics to create.
            stores: State stores whose changelogs to create (default: the known stores).

        Raises:
            TopicNameError: a task-queue or store name is not valid.
            TopicAdminError: the cluster cannot be reached or refused a topic.
        """
        plans = namespace_topics(self._settings, task_queues=task_queues, stores=stores)
        return self._create(plans)

    def ensure_task_queue(self, task_queue: str) -> CreateResult:
        """Make sure the two task topics of ``task_queue`` exist, creating what is missing.

        Cheap after the first call for a queue: topics known to exist are remembered by
        this admin (so a topic deleted behind a running worker's back is not recreated).

        Raises:
            TopicNameError: ``task_queue`` is not a valid task-queue name.
            TopicAdminError: the cluster cannot be reached or refused a topic.
        """
        plans = task_queue_topics(self._settings, task_queue)
        names = [plan.name for plan in plans]
        with self._known_lock:
            unknown = [name for name in names if name not in self._known]
        if not unknown:
            return CreateResult(created=(), existed=tuple(names))
        # Look before creating: a worker may lack the CREATE permission on a cluster
        # where an operator created the topics, and CreateTopics would then fail.
        present = {name for name, found in self._describe(unknown).items() if found is not None}
        self._remember(present)
        missing = [plan for plan in plans if plan.name in unknown and plan.name not in present]
        if not missing:
            return CreateResult(created=(), existed=tuple(names))
        result = self._create(missing)
        return CreateResult(
            created=result.created,
            existed=tuple(name for name in names if name not in result.created),
        )

    def verify(
        self,
        task_queues: Iterable[str] = (),
        *,
        stores: Iterable[str] = STORES,
    ) -> list[Drift]:
        """Compare the namespace's topics with the catalog.

        Checks the fixed topics, the changelogs of ``stores``, the task topics of
        ``task_queues``, and every task-queue or changelog topic of the namespace found
        on the cluster (so a task topic auto-created by a producer with the broker's
        defaults is caught).

        Args:
            task_queues: Task queues whose topics must exist.
            stores: State stores whose changelogs must exist (default: the known stores).

        Returns:
            Every difference found, each with a message that says how to fix it; empty
            when the namespace matches the catalog.

        Raises:
            TopicNameError: a task-queue or store name is not valid.
            TopicAdminError: the cluster cannot be reached.
        """
        return [drift for row in self.describe(task_queues, stores=stores) for drift in row.drift]

    def describe(
        self,
        task_queues: Iterable[str] = (),
        *,
        stores: Iterable[str] = STORES,
    ) -> list[TopicRow]:
        """One row per catalog topic of the namespace (see :meth:`verify` for which).

        Raises:
            TopicNameError: a task-queue or store name is not valid.
            TopicAdminError: the cluster cannot be reached.
        """
        # Resolving the requested topics first rejects a bad name before any network call.
        requested = namespace_topics(self._settings, task_queues=task_queues, stores=stores)
        found_queues, found_stores = self._discover()
        found = [CHANGELOG.plan(self._settings, store) for store in found_stores]
        for queue in found_queues:
            found.extend(task_queue_topics(self._settings, queue))
        # Requested first, then what the cluster has beyond that, each topic once.
        plans = list({plan.name: plan for plan in [*requested, *found]}.values())
        observed = self._observe(plans)
        rows = []
        for plan in plans:
            seen = observed[plan.name]
            drift = tuple(
                compare(
                    plan,
                    seen,
                    namespace=self._settings.namespace,
                    bootstrap=self.bootstrap_servers,
                )
            )
            rows.append(_row(plan, seen, drift))
        return rows

    # -- cluster access ----------------------------------------------------------------

    def _create(self, plans: Sequence[TopicPlan]) -> CreateResult:
        if not plans:
            return CreateResult(created=(), existed=())
        new_topics = [
            NewTopic(
                plan.name,
                num_partitions=plan.partitions,
                replication_factor=plan.replication_factor,
                config=dict(plan.config),
            )
            for plan in plans
        ]
        futures = self._admin.create_topics(
            new_topics, request_timeout=self._timeout, operation_timeout=self._timeout
        )
        created: list[str] = []
        existed: list[str] = []
        failures: list[TopicAdminError] = []
        for plan in plans:
            try:
                _, code = self._result(
                    futures[plan.name],
                    f"create topic {plan.name}",
                    tolerate=KafkaError.TOPIC_ALREADY_EXISTS,
                )
            except TopicAdminError as exc:
                failures.append(exc)
                continue
            (created if code is None else existed).append(plan.name)
        if failures:
            done = f" (created before the failure: {', '.join(created)})" if created else ""
            raise TopicAdminError(f"{failures[0]}{done}") from failures[0]
        partitions = self._wait_until_visible([plan.name for plan in plans])
        # Topics that existed are waited for too: another process may have created one
        # a moment ago.
        self._wait_until_writable(partitions)
        self._remember(plan.name for plan in plans)
        _log.info("created %d topics, %d existed", len(created), len(existed))
        return CreateResult(created=tuple(created), existed=tuple(existed))

    def namespace_topic_names(self) -> list[str]:
        """Every topic of the namespace that exists on the cluster, sorted."""
        try:
            metadata = self._admin.list_topics(timeout=self._timeout)
        except KafkaException as exc:
            raise self._translate(exc, "list topics") from None
        return sorted(t for t in metadata.topics if identify(self._settings, t) is not None)

    def delete_namespace(self) -> list[str]:
        """Delete every topic of the namespace (catalog, task queues, changelogs).

        For throw-away namespaces (benchmarks, tests): each partition costs the
        broker open files, and a one-node broker runs out of them after some
        thousands of forgotten namespaces. Returns the names deleted.

        Raises:
            TopicAdminError: the cluster cannot be reached or refused a deletion.
        """
        names = self.namespace_topic_names()
        if not names:
            return []
        futures = self._admin.delete_topics(names, operation_timeout=self._timeout)
        for name in names:
            self._result(
                futures[name],
                f"delete topic {name}",
                tolerate=KafkaError.UNKNOWN_TOPIC_OR_PART,
            )
        with self._known_lock:
            self._known.difference_update(names)
        # DeleteTopics returns before every broker's metadata forgets the topics:
        # wait, so that a create right after does not find them "existing".
        deadline = time.monotonic() + self._timeout
        while set(names) & set(self.namespace_topic_names()) and time.monotonic() < deadline:
            time.sleep(0.1)
        _log.info("deleted %d topics of namespace %s", len(names), self._settings.namespace)
        return names

    def _poll(self, step: Callable[[], str | None]) -> None:
        """Call ``step`` with a growing pause until it returns None (done); after the
        timeout, fail with what it last returned (why not yet)."""
        deadline = time.monotonic() + self._timeout
        delay = 0.01
        while (why := step()) is not None:
            if time.monotonic() >= deadline:
                raise TopicAdminError(
                    f"{why} after {self._timeout:g}s: check the brokers' health, then run "
                    "`cadenza topics verify`"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    def _wait_until_visible(self, names: Sequence[str]) -> dict[str, int]:
        """Poll until each partition has a leader; return the partition count by name.

        CreateTopics returns when the controller has the topic; the broker a producer
        asks may learn of it a moment later.
        """
        counts: dict[str, int] = {}

        def step() -> str | None:
            pending = [name for name in names if name not in counts]
            found = self._describe(pending)
            for name in pending:
                if _has_leaders(found.get(name)):
                    counts[name] = len(found[name].partitions)
            pending = [name for name in pending if name not in counts]
            if not pending:
                return None
            return (
                f"topics {', '.join(pending)} were created on {self.bootstrap_servers} but "
                "still have partitions without a leader"
            )

        self._poll(step)
        return counts

    def _wait_until_writable(self, partitions: dict[str, int]) -> None:
        """Poll until the leader of every partition has created its log.

        A new topic is in the metadata (with a leader) before its leader has created the
        partitions' logs: on the local broker, 0.3-0.5 s for a namespace's 162
        partitions, and a produce in between fails with NOT_LEADER_OR_FOLLOWER. An
        idempotent producer (librdkafka 2.16) with two batches in flight for a partition
        then loses the first: the broker accepts the second as the producer's first
        write there (no sequence state yet, KIP-360), and librdkafka counts the failed
        batch as "implicitly acked" by it and reports it delivered. A start command
        vanished so in about one run in 50 of 40 starts sent right after creation.
        ListOffsets answers from the same leader state a produce needs, so once it
        succeeds for a partition, writes to it land.
        """
        pending = [
            TopicPartition(name, partition)
            for name, count in partitions.items()
            for partition in range(count)
        ]

        def step() -> str | None:
            nonlocal pending
            futures = self._admin.list_offsets(
                {tp: _LATEST for tp in pending}, request_timeout=self._timeout
            )
            waiting, reason = [], ""
            for tp, future in futures.items():
                action = f"read the end offsets of topic {tp.topic}"
                try:
                    future.result(timeout=self._timeout + 5)
                except FutureTimeoutError:
                    raise self._unreachable(action) from None
                except KafkaException as exc:
                    error = _kafka_error(exc)
                    if error is None or not (error.retriable() or error.code() in _NOT_READY):
                        raise self._translate(exc, action) from None
                    reason = error.str()
                    waiting.append(tp)
            pending = waiting
            if not pending:
                return None
            names = sorted({tp.topic for tp in pending})
            return (
                f"topics {', '.join(names)} were created on {self.bootstrap_servers} but "
                f"{len(pending)} of their partitions cannot be written yet ({reason})"
            )

        self._poll(step)

    def _describe(self, names: Sequence[str]) -> dict[str, Any]:
        """TopicDescription by name, None for topics that do not exist."""
        if not names:
            return {}
        futures = self._admin.describe_topics(
            TopicCollection(list(names)), request_timeout=self._timeout
        )
        found: dict[str, Any] = {}
        for name in names:
            description, _ = self._result(
                futures[name], f"describe topic {name}", tolerate=KafkaError.UNKNOWN_TOPIC_OR_PART
            )
            found[name] = description
        return found

    def _configs(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        if not names:
            return {}
        resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
        futures = self._admin.describe_configs(resources, request_timeout=self._timeout)
        configs: dict[str, dict[str, str]] = {}
        for resource, future in futures.items():
            entries, _ = self._result(future, f"read the configs of topic {resource.name}")
            configs[resource.name] = {
                key: entry.value for key, entry in entries.items() if entry.value is not None
            }
        return configs

    def _observe(self, plans: Sequence[TopicPlan]) -> dict[str, ObservedTopic | None]:
        descriptions = self._describe([plan.name for plan in plans])
        existing = [name for name, found in descriptions.items() if found is not None]
        configs = self._configs(existing)
        observed: dict[str, ObservedTopic | None] = {}
        for name, found in descriptions.items():
            if found is None:
                observed[name] = None
                continue
            partitions = found.partitions
            observed[name] = ObservedTopic(
                name=name,
                partitions=len(partitions),
                replication_factor=len(partitions[0].replicas) if partitions else 0,
                config=configs.get(name, {}),
            )
        self._remember(existing)
        return observed

    def _discover(self) -> tuple[list[str], list[str]]:
        """Task queues and stores that have topics in this namespace on the cluster."""
        try:
            # Listing every topic (not naming some) never makes a broker auto-create one.
            metadata = self._admin.list_topics(timeout=self._timeout)
        except KafkaException as exc:
            raise self._translate(exc, "list topics") from None
        queues: list[str] = []
        stores: list[str] = []
        for topic in sorted(metadata.topics):
            found = identify(self._settings, topic)
            if found is None:
                continue
            spec, part = found
            if part is not None:
                (stores if spec is CHANGELOG else queues).append(part)
        return queues, stores

    def _remember(self, names: Iterable[str]) -> None:
        with self._known_lock:
            self._known.update(names)

    def _result(
        self, future: Future[Any], action: str, *, tolerate: int | None = None
    ) -> tuple[Any, int | None]:
        """The future's value and None, or None and the error code ``tolerate`` if it failed so.

        Raises:
            TopicAdminError: any other failure, explained.
        """
        try:
            # librdkafka enforces request_timeout itself; this bound only guards
            # against a future that is never completed.
            return future.result(timeout=self._timeout + 5), None
        except FutureTimeoutError:
            raise self._unreachable(action) from None
        except KafkaException as exc:
            error = _kafka_error(exc)
            if error is not None and tolerate is not None and error.code() == tolerate:
                return None, tolerate
            raise self._translate(exc, action) from None

    # -- error messages ----------------------------------------------------------------

    def _translate(self, exc: KafkaException, action: str) -> TopicAdminError:
        error = _kafka_error(exc)
        if error is None:
            return TopicAdminError(f"could not {action} on {self.bootstrap_servers}: {exc}")
        code = error.code()
        servers = self.bootstrap_servers
        if code in _UNREACHABLE:
            return self._unreachable(action)
        if code in _AUTHENTICATION:
            return TopicAdminError(
                f"could not {action}: authentication with Kafka at {servers} failed "
                f"({error.str()}); check CADENZA_KAFKA_SECURITY_PROTOCOL, "
                "CADENZA_KAFKA_SASL_* and CADENZA_KAFKA_SSL_*"
            )
        if code in _AUTHORIZATION:
            return TopicAdminError(
                f"could not {action}: not authorized on {servers} ({error.str()}); grant this "
                "principal the ACL, or have an administrator run `cadenza topics create`"
            )
        if code == KafkaError.INVALID_REPLICATION_FACTOR:
            return TopicAdminError(
                f"could not {action}: replication factor {self._settings.replication_factor} "
                f"is more than the cluster at {servers} can place ({error.str()}); set "
                "CADENZA_REPLICATION_FACTOR to at most the number of brokers"
            )
        return TopicAdminError(f"could not {action} on {servers}: {error.str()} ({error.name()})")

    def _unreachable(self, action: str) -> TopicAdminError:
        self._admin.poll(0)  # delivers pending error_cb calls
        reasons = list(dict.fromkeys(error.str() for error in self._errors))
        why = f"; last error: {reasons[-1]}" if reasons else ""
        if self._settings.uses_local_broker:
            fix = (
                "start the local broker with `cadenza kafka start`, or set "
                "CADENZA_BOOTSTRAP_SERVERS (--bootstrap-servers) to your cluster"
            )
        else:
            fix = (
                "check that the cluster is up and reachable from here and that "
                "CADENZA_BOOTSTRAP_SERVERS (--bootstrap-servers) names it; for the local "
                "broker, unset it and run `cadenza kafka start`"
            )
        return TopicAdminError(
            f"could not {action}: no answer from Kafka at {self.bootstrap_servers} within "
            f"{self._timeout:g}s{why}. To fix: {fix} (or, if it is only slow, allow a longer "
            "timeout: --timeout)"
        )


def _has_leaders(description: Any) -> bool:
    if description is None or not description.partitions:
        return False
    return all(
        partition.leader is not None and partition.leader.id >= 0
        for partition in description.partitions
    )


def _row(plan: TopicPlan, observed: ObservedTopic | None, drift: tuple[Drift, ...]) -> TopicRow:
    if observed is None:
        return TopicRow(
            name=plan.name,
            key=plan.spec.key,
            part=plan.part,
            exists=False,
            partitions=plan.partitions,
            replication_factor=plan.replication_factor,
            cleanup_policy=plan.cleanup_policy,
            retention_ms=plan.retention_ms,
            drift=drift,
        )
    policy = observed.config.get("cleanup.policy", "")
    raw_retention = observed.config.get("retention.ms")
    # retention.ms is only in force where the policy deletes old segments.
    time_retained = "delete" in policy and raw_retention is not None
    return TopicRow(
        name=plan.name,
        key=plan.spec.key,
        part=plan.part,
        exists=True,
        partitions=observed.partitions,
        replication_factor=observed.replication_factor,
        cleanup_policy=policy,
        retention_ms=int(raw_retention) if time_retained and raw_retention else None,
        drift=drift,
    )
