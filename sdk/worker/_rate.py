"""``max_activities_per_second``: a worker starts activity attempts at most this often.

As in Temporal, the limit is the worker's own: attempts beyond it wait in the
worker, in the order they came, holding their slots, and are started evenly
spaced (one every ``1 / per_second`` seconds). An eager attempt is taken only
when it could start now; otherwise it goes through the task queue.
"""

from __future__ import annotations

import asyncio
import math
import time

__all__ = ["StartRate"]


class StartRate:
    """Spaces starts at least ``1 / per_second`` seconds apart.

    Example:
        >>> rate = StartRate(2.0)
        >>> [rate.try_take(now) for now in (10.0, 10.1, 10.5, 10.6, 11.0)]
        [True, False, True, False, True]
    """

    def __init__(self, per_second: float) -> None:
        if not math.isfinite(per_second) or per_second <= 0:
            raise ValueError(
                f"max_activities_per_second must be a positive number, not {per_second!r}"
            )
        self._interval = 1.0 / per_second
        self._next = -math.inf

    def try_take(self, now: float | None = None) -> bool:
        """Take a start now if one is free (an eager attempt's)."""
        now = time.monotonic() if now is None else now
        if now < self._next:
            return False
        self._next = now + self._interval
        return True

    async def take(self) -> None:
        """Wait for the next free start (the ones before it are taken first)."""
        now = time.monotonic()
        at = max(now, self._next)
        self._next = at + self._interval
        if at > now:
            await asyncio.sleep(at - now)
