"""Shared plumbing of the ``test_sdk_*`` tests: a real engine, a client, history helpers.

Each scenario runs on the real broker in the test's own namespace, against an
engine in a thread (``running_engine``), with workers started by the scenario
itself, so a scenario can stop and replace its workers mid-run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from cadenza import Settings
from cadenza.client import Client, WorkflowHandle
from cadenza.topics import TopicAdmin

from .engine_support import running_engine

T = TypeVar("T")


def run_scenario(
    settings: Settings,
    tmp_path: Path,
    scenario: Callable[[Client], Awaitable[T]],
    *,
    task_queues: Sequence[str],
    timeout: float = 30.0,
) -> T:
    """Create the topics, start an engine, connect a client and run ``scenario`` with it."""
    TopicAdmin(settings).create(task_queues=list(task_queues))

    async def main() -> T:
        client = await Client.connect(settings=settings)
        try:
            return await scenario(client)
        finally:
            await client.close()

    with running_engine(settings, str(tmp_path / "engine")):
        return asyncio.run(asyncio.wait_for(main(), timeout))


def event_name(event: Mapping[str, Any]) -> str:
    """``WorkflowTaskFailed`` for a ``cadenza.history.WorkflowTaskFailed`` event."""
    return str(event["attributes"][0]).rsplit(".", 1)[-1]


def attributes(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The event's attributes record."""
    attrs: Mapping[str, Any] = event["attributes"][1]
    return attrs


async def event_names(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """The names of the run's history events, in order."""
    history = await handle.fetch_history()
    return [event_name(e) for e in history.events]


async def wait_for_event(
    handle: WorkflowHandle[Any, Any],
    name: str,
    *,
    count: int = 1,
    timeout: float = 10.0,
    also: Callable[[Mapping[str, Any]], bool] = lambda _: True,
) -> list[Mapping[str, Any]]:
    """Poll the run's history until it holds ``count`` events called ``name`` (matching
    ``also``); return the whole history then."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        history = await handle.fetch_history()
        events = list(history.events)
        seen = [event_name(e) for e in events]
        if sum(1 for e in events if event_name(e) == name and also(e)) >= count:
            return events
        await asyncio.sleep(0.1)
    raise AssertionError(
        f"no {count}x {name} in the history of {handle.id} within {timeout}s: {seen}"
    )


async def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``predicate`` (from the event loop) until it holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        await asyncio.sleep(0.05)
