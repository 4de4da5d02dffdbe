"""Deterministic replacements for :func:`asyncio.wait` and :func:`asyncio.as_completed`.

The asyncio versions keep futures in sets, whose iteration order depends on
object hashes and so differs between a run and its replay. These keep the
caller's order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Iterable, Iterator
from typing import Any, TypeVar

_T = TypeVar("_T")
_F = TypeVar("_F", bound="asyncio.Future[Any]")

_RETURN_WHEN = (asyncio.FIRST_COMPLETED, asyncio.FIRST_EXCEPTION, asyncio.ALL_COMPLETED)


async def wait(
    fs: Iterable[_F],
    *,
    timeout: float | None = None,
    return_when: str = asyncio.ALL_COMPLETED,
) -> tuple[list[_F], list[_F]]:
    """Wait for tasks or futures, like :func:`asyncio.wait`, returning ordered lists.

    Args:
        fs: Tasks or futures (not coroutines).
        timeout: Seconds to wait at most (a durable timer in workflows).
        return_when: ``FIRST_COMPLETED``, ``FIRST_EXCEPTION`` or ``ALL_COMPLETED``.

    Returns:
        ``(done, pending)``, each in the order of ``fs``.
    """
    if asyncio.isfuture(fs) or asyncio.iscoroutine(fs):
        raise TypeError(f"Expected an iterable of tasks or futures, not {type(fs).__name__}")
    if return_when not in _RETURN_WHEN:
        raise ValueError(f"Invalid return_when value: {return_when!r}")
    futures = list(fs)
    if not futures:
        raise ValueError("Nothing to wait for: the iterable of tasks/futures is empty")
    if any(asyncio.iscoroutine(f) for f in futures):
        raise TypeError("Pass tasks, not coroutines: wrap them with asyncio.create_task")

    loop = asyncio.get_running_loop()
    finished = loop.create_future()
    remaining = sum(1 for f in futures if not f.done())

    def stop_waiting_if_needed(future: asyncio.Future[Any]) -> None:
        nonlocal remaining
        remaining -= 1
        failed = not future.cancelled() and future.exception() is not None
        if (
            remaining == 0
            or return_when == asyncio.FIRST_COMPLETED
            or (return_when == asyncio.FIRST_EXCEPTION and failed)
        ) and not finished.done():
            finished.set_result(None)

    already = [f for f in futures if f.done()]
    done_enough = (
        len(already) == len(futures)
        or (return_when == asyncio.FIRST_COMPLETED and already)
        or (
            return_when == asyncio.FIRST_EXCEPTION
            and any(not f.cancelled() and f.exception() is not None for f in already)
        )
    )
    if not done_enough:
        pending_now = [f for f in futures if not f.done()]
        for f in pending_now:
            f.add_done_callback(stop_waiting_if_needed)

        def on_timeout() -> None:
            if not finished.done():
                finished.set_result(None)

        timer = loop.call_later(timeout, on_timeout) if timeout is not None else None
        try:
            await finished
        finally:
            if timer is not None:
                timer.cancel()
            for f in pending_now:
                f.remove_done_callback(stop_waiting_if_needed)
    done = [f for f in futures if f.done()]
    pending = [f for f in futures if not f.done()]
    return done, pending


def as_completed(
    fs: Iterable[Awaitable[_T]], *, timeout: float | None = None
) -> Iterator[Awaitable[_T]]:
    """Iterate over awaitables that give results in completion order, like
    :func:`asyncio.as_completed`, breaking ties in the order of ``fs``.

    Each yielded awaitable raises :class:`asyncio.TimeoutError` once
    ``timeout`` seconds have passed.
    """
    if asyncio.isfuture(fs) or asyncio.iscoroutine(fs):
        raise TypeError(f"Expected an iterable of awaitables, not {type(fs).__name__}")
    loop = asyncio.get_running_loop()
    todo: list[asyncio.Future[_T]] = [asyncio.ensure_future(f, loop=loop) for f in fs]
    completed: deque[asyncio.Future[_T] | None] = deque()
    waiters: deque[asyncio.Future[None]] = deque()

    def wake_one() -> None:
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def on_completion(future: asyncio.Future[_T]) -> None:
        if future in todo:
            todo.remove(future)
            completed.append(future)
            wake_one()
            if not todo and timer is not None:
                timer.cancel()

    def on_timeout() -> None:
        for future in todo:
            future.remove_done_callback(on_completion)
            completed.append(None)
        todo.clear()
        while waiters:
            wake_one()

    async def next_result() -> _T:
        while not completed:
            waiter = loop.create_future()
            waiters.append(waiter)
            await waiter
        future = completed.popleft()
        if future is None:
            raise TimeoutError()
        return future.result()

    count = len(todo)
    for future in list(todo):
        future.add_done_callback(on_completion)
    timer = loop.call_later(timeout, on_timeout) if todo and timeout is not None else None
    for _ in range(count):
        yield next_result()
