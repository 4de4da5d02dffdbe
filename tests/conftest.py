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


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses: ``CADENZA_TEST_NAMESPACE_PREFIX`` (default ``t``)
    and a random suffix, so a run on a shared broker can find and delete its topics."""
    return f"{os.environ.get('CADENZA_TEST_NAMESPACE_PREFIX', 't')}{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(kafka_settings: Settings, namespace: str) -> Settings:
    """Settings on the session broker, in this test's own namespace, with small topics."""
    return dataclasses.replace(kafka_settings, namespace=namespace, partitions=4)
