"""The local broker's error paths: each message names the fix. No broker needed."""

import dataclasses
import socket
import stat
from pathlib import Path

import pytest

from cadenza import Settings
from cadenza.localkafka import LocalKafka, LocalKafkaError


@pytest.fixture
def isolated(tmp_path: Path) -> Settings:
    return dataclasses.replace(
        Settings.defaults(), cache_dir=str(tmp_path / "cache"), data_dir=str(tmp_path / "data")
    )


def _fake_java(tmp_path: Path, version_line: str) -> Path:
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    return home


def test_missing_java_names_the_fix(
    isolated: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(
        LocalKafkaError, match="no Java found.*openjdk-17.*CADENZA_BOOTSTRAP_SERVERS"
    ):
        LocalKafka(isolated, progress=lambda _: None).check_java()


def test_old_java_names_the_fix(
    isolated: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(_fake_java(tmp_path, 'openjdk version "11.0.21" 2023')))
    with pytest.raises(LocalKafkaError, match="is Java 11; Kafka .* needs Java 17 or newer"):
        LocalKafka(isolated, progress=lambda _: None).check_java()
    monkeypatch.setenv("JAVA_HOME", str(_fake_java(tmp_path / "b", 'java version "1.8.0_302"')))
    with pytest.raises(LocalKafkaError, match="is Java 8"):
        LocalKafka(isolated, progress=lambda _: None).check_java()


def test_missing_maven_names_the_fix(isolated: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(LocalKafkaError, match="`mvn` is not on PATH.*apt-get install maven"):
        LocalKafka(isolated, progress=lambda _: None).fetch()


def test_port_in_use_names_the_fix(isolated: Settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        broker = LocalKafka(isolated, port=port, progress=lambda _: None)
        with pytest.raises(LocalKafkaError, match=f"port {port} .* in use.*CADENZA_KAFKA_PORT"):
            broker._choose_ports()
