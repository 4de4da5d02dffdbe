"""The deterministic event loop that workflow code runs on.

Ready callbacks run in FIFO order, nothing does I/O, and :meth:`time` is
workflow time. ``call_later``/``call_at`` become durable timers (``StartTimer``
commands), so plain ``asyncio.sleep``, ``asyncio.wait_for`` and
``asyncio.timeout`` work in workflows. The loop never blocks: the runtime calls
:meth:`_WorkflowEventLoop.run_until_blocked` once per activation and it returns
when every coroutine waits for something only history can bring.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import contextvars
import logging
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Protocol, TypeVar, TypeVarTuple, Unpack

_logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")


class _TimerSink(Protocol):
    """What the loop asks of the runtime for durable timers."""

    def loop_start_timer(self, handle: DurableTimerHandle, delay: float) -> None:
        """Start a durable timer that runs ``handle`` after ``delay`` seconds."""

    def loop_cancel_timer(self, handle: DurableTimerHandle) -> None:
        """Cancel the durable timer of ``handle`` (it was not fired)."""


class DurableTimerHandle(asyncio.TimerHandle):
    """A ``call_later``/``call_at`` callback waiting for a durable timer."""

    timer_id: str = ""
    fired: bool = False
    pending: Any = None
    """The runtime's record of the ``StartTimer`` command."""


class _WorkflowEventLoop(asyncio.AbstractEventLoop):
    """A run-to-quiescence event loop with workflow time and durable timers.

    Only what asyncio's futures, tasks, ``sleep``, ``wait``, ``wait_for``,
    ``timeout``, ``gather`` and ``shield`` need is implemented; anything that
    would do I/O raises ``NotImplementedError`` (the base class's behaviour).
    """

    def __init__(self, timers: _TimerSink) -> None:
        self._timers = timers
        # A list, not a deque: an empty deque costs 760 bytes, for every cached run.
        self._ready: list[asyncio.Handle] = []
        self._time_ms = 0
        self._running = False
        self._closed = False
        self.errors: list[BaseException] = []
        """Exceptions raised by plain callbacks (not tasks), for the runtime to report."""

    # Time.

    def set_time_ms(self, time_ms: int) -> None:
        """Set workflow time (the current workflow task's time)."""
        self._time_ms = time_ms

    @property
    def time_ms(self) -> int:
        """Workflow time in milliseconds since the epoch."""
        return self._time_ms

    def time(self) -> float:
        """Workflow time in seconds since the epoch."""
        return self._time_ms / 1000.0

    # Scheduling.

    def call_soon(
        self,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        """Queue ``callback`` to run in this or the next step, after those queued before."""
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(
        self,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        """Workflows have one thread: the same as :meth:`call_soon`."""
        return self.call_soon(callback, *args, context=context)

    def call_later(
        self,
        delay: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """Run ``callback`` after ``delay`` seconds of workflow time (a durable timer)."""
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_at(
        self,
        when: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """Run ``callback`` at workflow time ``when`` (a durable timer, unless already due)."""
        handle = DurableTimerHandle(when, callback, args, self, context)
        delay = when - self.time()
        if delay <= 0:
            handle.fired = True
            self._ready.append(handle)
        else:
            self._timers.loop_start_timer(handle, delay)
        return handle

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        # Called by TimerHandle.cancel() before it marks itself cancelled.
        if isinstance(handle, DurableTimerHandle) and not handle.fired:
            self._timers.loop_cancel_timer(handle)

    def fire_timer(self, handle: DurableTimerHandle) -> None:
        """Run a timer's callback in the next step (its ``TimerFired`` arrived)."""
        if handle.fired:
            return
        handle.fired = True
        if not handle.cancelled():
            self._ready.append(handle)

    def create_future(self) -> asyncio.Future[Any]:
        """A future bound to this loop."""
        return asyncio.Future(loop=self)

    def create_task(
        self,
        coro: Coroutine[Any, Any, _T] | Generator[Any, None, _T],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[_T]:
        """A task bound to this loop; its first step runs after those already queued."""
        return asyncio.Task(coro, loop=self, name=name, context=context)

    # Running.

    def run_until_blocked(self, after_step: Callable[[], bool]) -> None:
        """Run ready callbacks until none is left and ``after_step()`` queues nothing.

        ``after_step`` runs whenever the queue is empty (to re-check
        ``wait_condition`` predicates); it returns whether it made progress.
        """
        previous = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)
        self._running = True
        try:
            while True:
                while self._ready:
                    # FIFO: what the batch queues runs after the whole batch.
                    batch, self._ready = self._ready, []
                    for index, handle in enumerate(batch):
                        if self._closed:
                            break
                        if handle.cancelled():
                            continue
                        try:
                            handle._run()
                        except BaseException:  # SystemExit, KeyboardInterrupt
                            self._ready[:0] = batch[index + 1 :]
                            raise
                if not after_step() and not self._ready:
                    return
        finally:
            self._running = False
            asyncio.events._set_running_loop(previous)

    def is_running(self) -> bool:
        """Whether :meth:`run_until_blocked` is running."""
        return self._running

    def is_closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Drop every queued callback."""
        self._closed = True
        self._ready.clear()

    def get_debug(self) -> bool:
        """Never in asyncio debug mode (it would capture stacks, which costs time)."""
        return False

    def set_debug(self, enabled: bool) -> None:
        """Ignored."""

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        """Record the exception of a failed callback, for the runtime to report.

        Other reports (a task whose exception nobody retrieved, found when it is
        garbage collected) are logged, as asyncio does: they happen at
        arbitrary times, so they must not change what the workflow does.
        """
        error = context.get("exception")
        if isinstance(error, BaseException) and "handle" in context and "future" not in context:
            self.errors.append(error)
        elif error is None:
            # "Task was destroyed but it is pending": a dropped instance's tasks.
            _logger.debug("%s", context.get("message"))
        else:
            _logger.warning("%s", context.get("message"), exc_info=error)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Same as :meth:`default_exception_handler`."""
        self.default_exception_handler(context)

    def get_exception_handler(self) -> None:
        """No custom exception handler."""
        return None

    def get_task_factory(self) -> None:
        """No custom task factory."""
        return None
