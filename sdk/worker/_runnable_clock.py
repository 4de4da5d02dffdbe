"""A clock for the deadlock detector that stops while the process cannot run Python code.

Workflow code runs in threads that share the GIL with the event loop, with each
other and with whatever else the process does (a load generator, a C extension
that keeps the GIL, a garbage collection of a big heap); the OS may also not
schedule the process at all. Wall-clock time charges all of that to the
workflow task that happens to be running, so a busy process fails tasks whose
code yields promptly (TMPRL1101).

``RunnableClock.now()`` is wall-clock time minus the time the process was
starved, as a probe thread sees it: the probe sleeps ``tick`` seconds at a time,
and whatever it waits past that (for the GIL, or for a CPU) is starvation.
Under full contention the clock advances about ``tick / sys.getswitchinterval()``
times a waiting thread's own share of the GIL; with none it is the wall clock.
Code that blocks (``time.sleep``, a lock, I/O) still runs out the clock, except
that its detection waits for the process to be idle enough to tell.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class RunnableClock:
    """Seconds during which a thread that wants the GIL could have run.

    Example:
        >>> clock = RunnableClock()
        >>> with clock.measuring():
        ...     before = clock.now()
        ...     time.sleep(0.05)
        ...     0.01 < clock.now() - before < 1
        True
    """

    def __init__(self, *, tick: float | None = None) -> None:
        # Twice the GIL's switch interval: a waiting thread waits about that long per turn.
        self._tick = 2 * sys.getswitchinterval() if tick is None else tick
        self._lock = threading.Lock()
        self._users = 0
        self._wanted = threading.Event()
        self._probe: threading.Thread | None = None
        # (seconds starved so far, when the probe is due to wake): one tuple, so a
        # reader in another thread never sees half of an update.
        self._state: tuple[float, float] = (0.0, math.inf)

    def now(self) -> float:
        """The clock's reading; only differences taken inside ``measuring()`` mean anything."""
        wall = time.monotonic()
        starved, due = self._state
        # A probe past its due time is starved right now (it has not woken to say so).
        return wall - starved - max(0.0, wall - due)

    @contextmanager
    def measuring(self) -> Iterator[None]:
        """Keep the probe running (it sleeps on an event while nobody measures)."""
        with self._lock:
            self._users += 1
            if self._users == 1:
                starved, due = self._state
                if due == math.inf:
                    # A resting probe is due now: until it gets the GIL to say it woke,
                    # it is starved (another thread may hold the GIL from this moment).
                    self._state = (starved, time.monotonic())
                if self._probe is None:
                    self._probe = threading.Thread(
                        target=self._run_probe, name="cadenza-runnable-clock", daemon=True
                    )
                    self._probe.start()
                self._wanted.set()
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._wanted.clear()

    def _run_probe(self) -> None:
        while True:
            with self._lock:
                if not self._wanted.is_set():
                    self._state = (self._state[0], math.inf)
            self._wanted.wait()
            with self._lock:
                # Woken past its due time (by its sleep, or by measuring() setting it):
                # the difference is time the process was starved.
                starved, due = self._state
                now = time.monotonic()
                if due < math.inf:
                    starved += max(0.0, now - due)
                self._state = (starved, now + self._tick)
            time.sleep(self._tick)

    def _forget_probe(self) -> None:
        # In a forked child the probe thread is gone: the next measuring() starts one.
        self._lock = threading.Lock()
        self._users = 0
        self._wanted = threading.Event()
        self._probe = None
        self._state = (0.0, math.inf)


RUNNABLE_CLOCK = RunnableClock()
"""The process's clock: starvation is the whole process's, one probe measures it."""

os.register_at_fork(after_in_child=RUNNABLE_CLOCK._forget_probe)
