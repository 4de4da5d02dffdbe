"""Without a reachable broker, admin calls and the CLI fail fast with the fix in the message."""

from __future__ import annotations

import dataclasses
import socket
import time

import pytest
from click.testing import CliRunner

from cadenza import Settings
from cadenza.cli._topics import topics
from cadenza.topics import TopicAdmin, TopicAdminError


def _closed_port() -> int:
    # Bound then released: nothing listens there for the test's short life.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_external_cluster_that_does_not_answer() -> None:
    servers = f"127.0.0.1:{_closed_port()}"
    settings = dataclasses.replace(Settings.defaults(), bootstrap_servers=servers)
    started = time.monotonic()
    with pytest.raises(TopicAdminError) as err:
        TopicAdmin(settings, timeout=1).create()
    assert time.monotonic() - started < 10
    message = str(err.value)
    assert f"no answer from Kafka at {servers} within 1s" in message
    assert "Connection refused" in message
    assert "CADENZA_BOOTSTRAP_SERVERS" in message and "cadenza kafka start" in message


def test_local_broker_that_is_not_running() -> None:
    settings = dataclasses.replace(Settings.defaults(), kafka_port=_closed_port())
    with pytest.raises(TopicAdminError, match="start the local broker with `cadenza kafka start`"):
        TopicAdmin(settings, timeout=1).verify()


def test_cli_reports_the_error_without_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CADENZA_BOOTSTRAP_SERVERS", raising=False)
    servers = f"127.0.0.1:{_closed_port()}"
    for command in ("create", "verify", "describe"):
        result = CliRunner().invoke(
            topics, [command, "--bootstrap-servers", servers, "--timeout", "0.5"]
        )
        assert result.exit_code == 1, result.output
        assert "Error: could not" in result.output and servers in result.output
        assert "Traceback" not in result.output


def test_cli_rejects_a_bad_task_queue_before_connecting() -> None:
    result = CliRunner().invoke(
        topics, ["create", "--bootstrap-servers", "127.0.0.1:1", "--task-queue", "a.b"]
    )
    assert result.exit_code == 2
    assert "task queue name 'a.b' is not usable" in result.output


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout must be positive"):
        TopicAdmin(Settings.defaults(), timeout=0)


def test_a_wait_that_never_ends_fails_with_its_reason_and_the_fix() -> None:
    admin = TopicAdmin(Settings.defaults(), timeout=0.2)
    steps: list[float] = []

    def step() -> str:
        steps.append(time.monotonic())
        return "3 partitions cannot be written yet"

    with pytest.raises(TopicAdminError) as err:
        admin._poll(step)
    assert str(err.value) == (
        "3 partitions cannot be written yet after 0.2s: check the brokers' health, then run "
        "`cadenza topics verify`"
    )
    assert len(steps) >= 3 and steps[-1] - steps[0] >= 0.2


def test_a_wait_ends_as_soon_as_its_step_is_done() -> None:
    admin = TopicAdmin(Settings.defaults(), timeout=10)
    answers = iter(["not yet", "not yet", None])
    started = time.monotonic()
    admin._poll(lambda: next(answers))
    assert time.monotonic() - started < 0.2  # pauses of 10 and 20 ms
