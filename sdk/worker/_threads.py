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
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]
_Settle = tuple["asyncio.Future[Any]", Any, BaseException | None]


class LoopThreads:
    """Up to ``size`` daemon threads, started as work needs them.

    Args:
        size: Most threads (the worker's ``max_concurrent_workflow_tasks``).
        name: Prefix of the threads' names.
    """

    def __init__(self, size: int, name: str) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, not {size}")
        self._size = size
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False
        self._settled: dict[asyncio.AbstractEventLoop, list[_Settle]] = {}
        """Per loop, results waiting for it; a loop is a key while its drain is scheduled."""
        self._settled_lock = threading.Lock()

    def submit(self, fn: Callable[[], T], loop: asyncio.AbstractEventLoop) -> asyncio.Future[T]:
        """Run ``fn`` on a thread; the future (of ``loop``) gets its result or exception.

        Raises:
            RuntimeError: The pool was shut down.
        """
        if self._closed:
            raise RuntimeError("cannot submit to a pool that was shut down")
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, loop, future))
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if len(self._threads) < self._size:
                    thread = threading.Thread(
                        target=self._work,
                        name=f"{self._name}{len(self._threads)}",
                        daemon=True,
                    )
                    self._threads.append(thread)
                    thread.start()
        return future

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

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, loop, future = job
            del job
            settle: _Settle
            try:
                result = fn()
            except BaseException as exc:  # handed to whoever awaits the future
                settle = (future, None, exc)
            else:
                settle = (future, result, None)
            # Idle before the loop can see the result: work it submits on seeing it
            # takes this thread rather than starting another.
            self._idle.release()
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
