"""A worker's word that it started a task, sent only once the task has run a moment.

The engine counts a task's timeouts from this word, as Temporal counts them from a
poll: a task no worker has taken waits for one instead of timing out while no
worker runs. Tasks answered sooner (nearly all) need no word, since their answer
says they started, so the word is sent only if the task still runs after a delay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

_log = logging.getLogger("cadenza.worker")

STARTED_ACK_DELAY = 1.0
"""Seconds a task runs before its worker says it started it (less for short timeouts)."""


class StartedWords:
    """The words a worker has scheduled or is sending; all dropped by :meth:`stop`.

    Example::

        words = StartedWords("workflow task")
        handle = words.later(1.0, lambda: send_started(task))   # in the event loop
        try:
            await run(task)
        finally:
            words.cancel(handle)    # answered: the answer says it started
    """

    def __init__(self, what: str) -> None:
        self._what = what
        self._pending: set[asyncio.TimerHandle | asyncio.Task[None]] = set()
        self._stopped = False

    def later(
        self, delay: float, send: Callable[[], Awaitable[None]]
    ) -> asyncio.TimerHandle | None:
        """Call ``send`` after ``delay`` seconds unless :meth:`cancel` comes first."""
        if self._stopped:
            return None
        holder: list[asyncio.TimerHandle] = []
        timer = asyncio.get_running_loop().call_later(delay, self._fire, send, holder)
        holder.append(timer)
        self._pending.add(timer)
        return timer

    def cancel(self, timer: asyncio.TimerHandle | None) -> None:
        """The task ended (or was answered) before its word was due: no word."""
        if timer is not None:
            timer.cancel()
            self._pending.discard(timer)

    def stop(self) -> None:
        """Send no more words, and drop those waiting or on their way."""
        self._stopped = True
        for pending in list(self._pending):
            pending.cancel()
        self._pending.clear()

    def _fire(self, send: Callable[[], Awaitable[None]], timer: list[asyncio.TimerHandle]) -> None:
        self._pending.difference_update(timer)
        if self._stopped:
            return

        async def sending() -> None:
            try:
                await send()
            except Exception as exc:  # a hint: without it the timeout waits for the answer
                _log.warning("The start of a %s was not recorded: %s", self._what, exc)

        task = asyncio.ensure_future(sending())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
