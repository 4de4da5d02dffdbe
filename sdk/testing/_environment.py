"""A workflow test environment on the real broker, with a clock that can skip ahead."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import shutil
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from types import TracebackType
from typing import Any

from cadenza._settings import Settings
from cadenza.client import Client
from cadenza.converter import DataConverter

_log = logging.getLogger("cadenza.testing")

__all__ = ["WorkflowEnvironment"]

# Deadlines that belong to work in flight: skipping past them would time out an
# activity or a workflow task that is simply still running.
_IN_FLIGHT = frozenset(
    {
        "WORKFLOW_TASK_START_TO_CLOSE",
        "ACTIVITY_START_TO_CLOSE",
        "ACTIVITY_SCHEDULE_TO_START",
        "ACTIVITY_SCHEDULE_TO_CLOSE",
        "ACTIVITY_HEARTBEAT",
    }
)


class _SkippableClock:
    """Milliseconds since the epoch, plus however far the test has skipped."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def __call__(self) -> int:
        return int(time.time() * 1000) + self.offset_ms


class WorkflowEnvironment:
    """A namespace of its own on a real Kafka broker, with an engine running beside the test.

    Like temporalio's ``WorkflowEnvironment``: use :attr:`client` to start
    workflows and run a ``Worker`` on it. With :meth:`start_time_skipping`,
    durable timers need not be waited out: :meth:`sleep` moves the engine's
    clock forward, and while nothing is in flight (no activity or workflow task
    running) the clock jumps to the next timer by itself, so a workflow that
    sleeps for a month completes in milliseconds.

    Example:
        >>> async def test_reminder():                       # doctest: +SKIP
        ...     async with await WorkflowEnvironment.start_time_skipping() as env:
        ...         async with Worker(env.client, task_queue="q", workflows=[Reminder]):
        ...             await env.client.execute_workflow(Reminder.run, id="r", task_queue="q")
    """

    def __init__(
        self,
        client: Client,
        engine: Any,
        thread: threading.Thread,
        clock: _SkippableClock,
        data_dir: str,
        *,
        time_skipping: bool,
        visibility: tuple[Any, threading.Thread] | None = None,
        own_namespace: bool = False,
    ) -> None:
        self.client = client
        self._own_namespace = own_namespace
        self._engine = engine
        self._thread = thread
        self._visibility = visibility
        self._clock = clock
        self._data_dir = data_dir
        self._time_skipping = time_skipping
        self._skipper: asyncio.Task[None] | None = None
        if time_skipping:
            self._skipper = asyncio.get_running_loop().create_task(self._auto_skip())

    @classmethod
    async def start_local(
        cls,
        *,
        settings: Settings | None = None,
        namespace: str | None = None,
        data_converter: DataConverter = DataConverter.default,
    ) -> WorkflowEnvironment:
        """An environment in real time (timers take as long as they say)."""
        return await cls._start(settings, namespace, data_converter, time_skipping=False)

    @classmethod
    async def start_time_skipping(
        cls,
        *,
        settings: Settings | None = None,
        namespace: str | None = None,
        data_converter: DataConverter = DataConverter.default,
    ) -> WorkflowEnvironment:
        """An environment whose clock skips ahead to the next timer when nothing runs."""
        return await cls._start(settings, namespace, data_converter, time_skipping=True)

    @classmethod
    async def _start(
        cls,
        settings: Settings | None,
        namespace: str | None,
        data_converter: DataConverter,
        *,
        time_skipping: bool,
    ) -> WorkflowEnvironment:
        from cadenza.processors.engine import Engine
        from cadenza.processors.visibility import Visibility
        from cadenza.topics import TopicAdmin

        base = settings or Settings.from_env()
        if base.uses_local_broker:
            from cadenza.localkafka import LocalKafka

            await asyncio.to_thread(LocalKafka(base, progress=lambda _: None).start)
        settings = dataclasses.replace(
            base,
            namespace=namespace or f"test-{uuid.uuid4().hex[:10]}",
            partitions=min(base.partitions, 4),
            reply_partitions=min(base.reply_partitions, 4),
        )
        await asyncio.to_thread(TopicAdmin(settings).create)
        clock = _SkippableClock()
        data_dir = tempfile.mkdtemp(prefix="cadenza-env-")
        engine = Engine(settings, data_dir=data_dir, clock=clock)
        thread = threading.Thread(target=engine.run, name="cadenza-test-engine", daemon=True)
        thread.start()
        # list_workflows and count_workflows answer from the visibility projection.
        projection = Visibility(settings, data_dir=data_dir)
        projection_thread = threading.Thread(
            target=projection.run, name="cadenza-test-visibility", daemon=True
        )
        projection_thread.start()
        client = await Client.connect(settings=settings, data_converter=data_converter)
        return cls(
            client,
            engine,
            thread,
            clock,
            data_dir,
            time_skipping=time_skipping,
            visibility=(projection, projection_thread),
            own_namespace=namespace is None,
        )

    @property
    def supports_time_skipping(self) -> bool:
        return self._time_skipping

    def get_current_time(self) -> dt.datetime:
        """The engine's current time (what ``workflow.now()`` will read)."""
        return dt.datetime.fromtimestamp(self._clock() / 1000, tz=dt.UTC)

    async def sleep(self, duration: timedelta | float) -> None:
        """Let ``duration`` pass: at once with time skipping, else in real time."""
        seconds = duration.total_seconds() if isinstance(duration, timedelta) else duration
        if self._time_skipping:
            self._clock.offset_ms += int(seconds * 1000)
            await asyncio.sleep(0.05)  # let the engine see the new time
        else:
            await asyncio.sleep(seconds)

    async def _auto_skip(self) -> None:
        idle_since: float | None = None
        while True:
            await asyncio.sleep(0.05)
            entries = self._engine.timer_entries()
            now = self._clock()
            if not entries or any(e.kind in _IN_FLIGHT for e in entries):
                idle_since = None
                continue
            soonest = min(e.due_time_ms for e in entries)
            if soonest <= now:
                idle_since = None
                continue
            # Nothing runs and the next thing is a timer: skip to it once things settle.
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= 0.2:
                self._clock.offset_ms += soonest - now
                idle_since = None

    async def shutdown(self) -> None:
        """Stop the engine, the visibility projection and the client, and delete the
        namespace's topics if the environment made the namespace up (none was given).

        A test suite starts many environments: their topics, left on a developer's
        broker, would add up to thousands of partitions, and a one-node broker slows
        down and then runs out of open files. A namespace passed in stays, to look at.
        """
        if self._skipper is not None:
            self._skipper.cancel()
        await self.client.close()
        self._engine.stop()
        if self._visibility is not None:
            self._visibility[0].stop()
            await asyncio.to_thread(self._visibility[1].join, 30)
        await asyncio.to_thread(self._thread.join, 30)
        shutil.rmtree(self._data_dir, ignore_errors=True)
        if self._own_namespace:
            from cadenza.topics import TopicAdmin, TopicAdminError

            try:
                await asyncio.to_thread(TopicAdmin(self.client.settings).delete_namespace)
            except TopicAdminError as exc:
                _log.warning(
                    "could not delete the test namespace %r: %s", self.client.namespace, exc
                )

    async def __aenter__(self) -> WorkflowEnvironment:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()
