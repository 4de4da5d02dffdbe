"""Shared fixtures.

Integration tests run against a real Apache Kafka broker: the one
``CADENZA_BOOTSTRAP_SERVERS`` names, or else one the session starts from the
project's cached jars (``cadenza.localkafka``). A broker that cannot be had is
an error that says why, never a skip. Every test gets its own namespace, so
tests never see each other's topics.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cadenza import Settings


@pytest.fixture(scope="session")
def kafka_settings(request: pytest.FixtureRequest) -> Iterator[Settings]:
    """Settings pointing at a running broker for the whole test session."""
    settings = Settings.from_env()
    if not settings.uses_local_broker:
        yield settings
        # A broker that outlives the session (a developer's, or CI's) keeps every
        # topic the tests made, and a one-node broker runs out of open files after
        # a few full runs: delete this session's namespaces.
        _delete_namespaces(settings, _NAMESPACES)
        return
    from cadenza.localkafka import LocalKafka

    # A session broker of its own (own port, own data dir) so a developer's
    # `cadenza kafka start` on the default port is never touched by tests.
    data_dir = Path(tempfile.mkdtemp(prefix="cadenza-test-kafka-"))
    # Free ports unless CADENZA_TEST_KAFKA_PORT names one.
    port = int(os.environ.get("CADENZA_TEST_KAFKA_PORT", "0"))
    broker = LocalKafka(
        dataclasses.replace(settings, data_dir=str(data_dir)),
        port=port,
    )
    try:
        broker.start()
    except Exception as exc:  # a missing broker fails the run loudly, never skips
        pytest.exit(f"could not start the test Kafka broker: {exc}", returncode=3)
    try:
        yield broker.settings
    finally:
        broker.stop()


_NAMESPACES: set[str] = set()
"""The namespaces handed out in this session."""


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses: ``CADENZA_TEST_NAMESPACE_PREFIX`` (default ``t``)
    and a random suffix, so a run on a shared broker can find and delete its topics."""
    name = f"{os.environ.get('CADENZA_TEST_NAMESPACE_PREFIX', 't')}{uuid.uuid4().hex[:12]}"
    _NAMESPACES.add(name)
    return name


def _delete_namespaces(settings: Settings, namespaces: set[str]) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(settings.kafka_config())
    try:
        topics = admin.list_topics(timeout=30).topics
        doomed = [t for t in topics if t.split(".", 1)[0] in namespaces]
        if not doomed:
            return
        for name, future in admin.delete_topics(doomed, operation_timeout=60).items():
            try:
                future.result()
            except Exception as exc:  # one topic's failure must not hide the rest
                print(f"could not delete test topic {name}: {exc}")
    except Exception as exc:  # cleanup is best effort: the tests have run
        print(f"could not delete the test namespaces' topics: {exc}")


@pytest.fixture
def settings(kafka_settings: Settings, namespace: str) -> Settings:
    """Settings on the session broker, in this test's own namespace, with small topics."""
    return dataclasses.replace(kafka_settings, namespace=namespace, partitions=4)
