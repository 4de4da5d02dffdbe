"""The bench's process lookups: the broker is found by the port it listens on."""

from __future__ import annotations

import ctypes
import os
import socket
import threading
import time
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


def test_the_cpu_of_compiler_threads_is_sampled_apart() -> None:
    # What a JVM's compiler thread looks like in /proc: a thread named (prctl
    # PR_SET_NAME) "C2 CompilerThread0", cut to 15 characters, spending CPU.
    burnt = threading.Event()
    done = threading.Event()

    def compiler() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.prctl(15, ctypes.c_char_p(b"C2 CompilerThre"), 0, 0, 0) == 0
        end = time.thread_time() + 0.3
        while time.thread_time() < end:
            pass
        burnt.set()
        done.wait()  # alive while sampled: a thread's CPU leaves /proc with it

    before = _procs.sample_pid(os.getpid(), jit=True)
    thread = threading.Thread(target=compiler)
    thread.start()
    try:
        assert burnt.wait(10)
        after = _procs.sample_pid(os.getpid(), jit=True)
    finally:
        done.set()
        thread.join()
    assert before is not None and after is not None
    jit = _procs.jit_cpu_seconds(after, before)
    assert jit is not None
    assert 0.2 <= jit <= after.cpu_seconds - before.cpu_seconds + 0.02
    # A compiler thread that ended since is not subtracted: never below zero.
    assert _procs.jit_cpu_seconds(before, after) == 0
    # Only when asked: other processes are sampled without walking their threads.
    plain = _procs.sample_pid(os.getpid())
    assert plain is not None and plain.jit_threads is None
    assert _procs.jit_cpu_seconds(plain, None) is None


def test_the_reference_loop_takes_measurable_time() -> None:
    ms = _procs.reference_loop_ms(repeats=1)
    assert 1 < ms < 60_000
