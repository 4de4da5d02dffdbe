"""The bench's process lookups: the broker is found by the port it listens on."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from cadenza.bench import _procs


@pytest.fixture
def listener() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_the_listening_process_is_found(listener: int) -> None:
    assert _procs.find_listener_pid(listener) == os.getpid()


def test_a_descriptor_closed_during_the_scan_does_not_hide_the_process(
    listener: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A broker opens and closes segment files all the time: one of its descriptors
    # vanishing between the listing and the readlink must not skip the broker.
    readlink = os.readlink
    mine = f"/proc/{os.getpid()}/fd/"
    vanished: list[str] = []

    def flaky(path: os.PathLike[str] | str) -> str:
        text = str(path)
        if text.startswith(mine) and not vanished:
            vanished.append(text)
            raise FileNotFoundError(text)
        return readlink(path)

    monkeypatch.setattr(_procs.os, "readlink", flaky)
    assert _procs.find_listener_pid(listener) == os.getpid()
    assert vanished


def test_no_listener_is_none() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]  # bound, never listening
    try:
        assert _procs.find_listener_pid(port) is None
    finally:
        sock.close()
