"""The deadlock detector's clock: it stops while the process cannot run Python code."""

from __future__ import annotations

import ctypes
import math
import os
import threading
import time

from cadenza.worker._runnable_clock import RUNNABLE_CLOCK, RunnableClock

_libc = ctypes.PyDLL(None)
"""libc called with the GIL held: ``usleep`` starves every other thread."""


def test_a_blocked_thread_runs_out_the_clock() -> None:
    clock = RunnableClock()
    with clock.measuring():
        before = clock.now()
        time.sleep(0.3)  # releases the GIL: the process could run
        assert clock.now() - before > 0.2


def test_time_the_gil_is_held_elsewhere_does_not_count() -> None:
    clock = RunnableClock()
    with clock.measuring():
        time.sleep(0.05)  # the probe runs
        before, wall = clock.now(), time.monotonic()
        holder = threading.Thread(target=_libc.usleep, args=(500_000,))
        holder.start()
        holder.join()
        assert time.monotonic() - wall >= 0.5
        # Read before the probe wakes (this thread holds the GIL) and after.
        assert clock.now() - before < 0.15
        time.sleep(0.05)
        assert clock.now() - before < 0.25


def test_the_probe_rests_while_nobody_measures() -> None:
    clock = RunnableClock(tick=0.005)
    with clock.measuring(), clock.measuring():
        time.sleep(0.02)
        assert clock._state[1] < math.inf
    deadline = time.monotonic() + 5
    while clock._state[1] < math.inf:
        assert time.monotonic() < deadline, "the probe still ticks"
        time.sleep(0.01)
    # Idle time is not starvation.
    before = clock.now()
    time.sleep(0.05)
    assert clock.now() - before >= 0.05


def test_a_forked_child_starts_a_probe_of_its_own() -> None:
    clock = RUNNABLE_CLOCK
    with clock.measuring():
        time.sleep(0.02)
    pid = os.fork()
    if pid == 0:  # the child: the parent's probe thread did not come along
        with clock.measuring():
            before = clock.now()
            time.sleep(0.2)
            os._exit(0 if clock.now() - before > 0.1 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child's clock stood still"


def test_the_gil_held_before_the_probe_wakes_does_not_count() -> None:
    """Measuring starts; before the resting probe gets the GIL to wake, another thread
    takes it for 0.5 s. That time is starvation too, not the measured code's."""
    for fresh in (True, False):
        clock = RunnableClock()
        if not fresh:  # a probe resting after an earlier measurement
            with clock.measuring():
                time.sleep(0.02)
            time.sleep(0.05)
        with clock.measuring():
            before = clock.now()
            _libc.usleep(500_000)  # this thread keeps the GIL: the probe cannot wake
            assert clock.now() - before < 0.15, "fresh probe" if fresh else "resting probe"
