"""Threads for workflow code that hand results straight to the event loop.

``loop.run_in_executor`` on a ``ThreadPoolExecutor`` builds a
``concurrent.futures.Future`` per call (a ``threading.Condition`` with its
locks), wraps it in an asyncio future and chains the two with callbacks. For
the worker's own default pool that machinery was a tenth of the bench process's
time at 200 workflows in flight; this pool resolves asyncio futures from the
threads directly. Results that finish while the loop has not yet taken the
previous ones join them: one ``call_soon_threadsafe`` (a write to the loop's
self-pipe, and a GIL hand-off) per batch, not per result. A
``workflow_task_executor`` given to the ``Worker`` is still used through
``run_in_executor``.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]
_Settle = tuple["asyncio.Future[Any]", Any, BaseException | None]


class LoopThreads:
    """Up to ``size`` daemon threads, started as work needs them.

    Two threads start as soon as there is work for them; one more only when every
    thread has been on its current work for ``stuck_after`` seconds (checked when
    work is submitted, and again while work waits). Workflow code holds the GIL,
    so more threads than that do not run more of it at once: at 200 workflows in
    flight a thread per busy moment grew the pool to about 95 threads, each
    wake-up a GIL hand-off that the event loop waited behind (BENCHMARKS, entry 44).
    Extra threads are for code that blocks (a deadlocked workflow keeps its
    thread for good) or runs long, so the work queued behind it goes on.

    Args:
        size: Most threads (the worker's ``max_concurrent_workflow_tasks``).
        name: Prefix of the threads' names.
        stuck_after: Seconds on one piece of work after which a thread no longer
            counts as serving the queue.
    """

    EAGER_THREADS = 2
    """Threads started as soon as work finds no idle one."""

    def __init__(self, size: int, name: str, *, stuck_after: float = 0.02) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, not {size}")
        self._size = size
        self._name = name
        self._stuck_after = stuck_after
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._busy_since: list[float | None] = []
        """Per thread, when it took the work it runs (``None``: waiting for work)."""
        self._waiting = 0
        """Threads waiting for work."""
        self._lock = threading.Lock()
        self._check_due = False
        """A later look at the queue is scheduled on an event loop."""
        self._closed = False
        self._settled: dict[asyncio.AbstractEventLoop, list[_Settle]] = {}
        """Per loop, results waiting for it; a loop is a key while its drain is scheduled."""
        self._settled_lock = threading.Lock()

    @property
    def threads(self) -> int:
        """Threads started so far."""
        return len(self._threads)

    def submit(self, fn: Callable[[], T], loop: asyncio.AbstractEventLoop) -> asyncio.Future[T]:
        """Run ``fn`` on a thread; the future (of ``loop``) gets its result or exception.

        Raises:
            RuntimeError: The pool was shut down.
        """
        if self._closed:
            raise RuntimeError("cannot submit to a pool that was shut down")
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, loop, future))
        if self._jobs.qsize() > self._waiting:
            self._grow(loop)
        return future

    def _grow(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start a thread for queued work if the pool may; else look again later."""
        with self._lock:
            count = len(self._threads)
            if count >= self._size or self._closed:
                return
            if count < self.EAGER_THREADS or self._all_stuck():
                self._busy_since.append(None)
                thread = threading.Thread(
                    target=self._work, args=(count,), name=f"{self._name}{count}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
                return
            if self._check_due:
                return
            self._check_due = True
        loop.call_later(self._stuck_after, self._check, loop)

    def _all_stuck(self) -> bool:
        now = time.monotonic()
        return all(
            since is not None and now - since >= self._stuck_after for since in self._busy_since
        )

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._check_due = False
        if not self._closed and self._jobs.qsize() > self._waiting:
            self._grow(loop)

    def shutdown(self, wait: bool = True) -> None:
        """Let the threads finish what they run and stop; queued work is dropped."""
        self._closed = True
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job[1].call_soon_threadsafe(job[2].cancel)
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        if wait:
            for thread in threads:
                thread.join()

    def _work(self, index: int) -> None:
        busy_since = self._busy_since
        with self._lock:
            self._waiting += 1
        while True:
            job = self._jobs.get()
            with self._lock:
                self._waiting -= 1
            if job is None:
                return
            busy_since[index] = time.monotonic()
            fn, loop, future = job
            del job
            settle: _Settle
            try:
                result = fn()
            except BaseException as exc:  # handed to whoever awaits the future
                settle = (future, None, exc)
            else:
                settle = (future, result, None)
            busy_since[index] = None
            # Waiting before the loop can see the result: work it submits on seeing it
            # takes this thread rather than starting another.
            with self._lock:
                self._waiting += 1
            self._hand_over(loop, settle)
            del fn, future, settle

    def _hand_over(self, loop: asyncio.AbstractEventLoop, settle: _Settle) -> None:
        with self._settled_lock:
            waiting = self._settled.get(loop)
            if waiting is not None:  # a drain is scheduled and has not run yet
                waiting.append(settle)
                return
            self._settled[loop] = [settle]
        try:
            loop.call_soon_threadsafe(self._drain, loop)
        except RuntimeError:  # the loop is closed: nobody waits for it any more
            with self._settled_lock:
                self._settled.pop(loop, None)

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._settled_lock:
            settled = self._settled.pop(loop, [])
        for future, result, exc in settled:
            if future.done():  # cancelled: its waiter left (or gave up on the code)
                continue
            if exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(result)
