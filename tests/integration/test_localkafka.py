"""The project's own broker: start, status, stop, and a start that fails with its log."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from cadenza import Settings
from cadenza.localkafka import KAFKA_VERSION, LocalKafka, LocalKafkaError

CLI = [sys.executable, "-m", "cadenza.cli"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CADENZA_BOOTSTRAP_SERVERS"}
    env["CADENZA_DATA_DIR"] = str(tmp_path / "data")
    return env


def _free_port() -> int:
    """A client port whose neighbour (the controller's port) is free as well."""
    import socket

    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two adjacent free ports on 127.0.0.1")


def test_cli_start_status_stop_and_produce(tmp_path: Path) -> None:
    env = _env(tmp_path)
    port = str(_free_port())
    start = subprocess.run(
        [*CLI, "kafka", "start", "--port", port], env=env, capture_output=True, text=True
    )
    try:
        assert start.returncode == 0, start.stderr
        assert f"Kafka {KAFKA_VERSION} up on 127.0.0.1:{port}" in start.stdout
        status = subprocess.run([*CLI, "kafka", "status"], env=env, capture_output=True, text=True)
        assert status.returncode == 0 and "running" in status.stdout
        again = subprocess.run(
            [*CLI, "kafka", "start", "--port", port], env=env, capture_output=True, text=True
        )
        assert again.returncode == 0 and "already running" in again.stdout

        # It is a real broker: a transactional write is read back (needs the one-node settings).
        servers = f"127.0.0.1:{port}"
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": servers})
        admin.create_topics([NewTopic("t", 1, 1)])["t"].result()
        producer = Producer({"bootstrap.servers": servers, "transactional.id": "probe"})
        producer.init_transactions(30)
        producer.begin_transaction()
        producer.produce("t", b"committed")
        producer.commit_transaction(30)
        consumer = Consumer(
            {
                "bootstrap.servers": servers,
                "group.id": "g",
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
            }
        )
        consumer.subscribe(["t"])
        msg = None
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                break
        consumer.close()
        assert msg is not None and msg.value() == b"committed"
    finally:
        stop = subprocess.run([*CLI, "kafka", "stop"], env=env, capture_output=True, text=True)
    assert stop.returncode == 0 and "Kafka stopped" in stop.stdout
    status = subprocess.run([*CLI, "kafka", "status"], env=env, capture_output=True, text=True)
    assert status.returncode == 1 and "cadenza kafka start" in status.stderr


def test_a_broker_that_dies_while_starting_shows_its_log(tmp_path: Path) -> None:
    # A jar cache marked complete but empty: java starts and exits at once.
    settings = dataclasses.replace(
        Settings.defaults(), cache_dir=str(tmp_path / "cache"), data_dir=str(tmp_path / "data")
    )
    broker = LocalKafka(settings, port=0, progress=lambda _: None)
    broker.jar_dir.mkdir(parents=True)
    (broker.jar_dir / ".complete").write_text(KAFKA_VERSION)
    with pytest.raises(LocalKafkaError) as err:
        broker.start()
    assert "formatting Kafka storage failed" in str(err.value) or "exited with status" in str(
        err.value
    )
    assert broker.info() is None
