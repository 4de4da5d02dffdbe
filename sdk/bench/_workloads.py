"""The benchmark workloads, written once against the Temporal-style API.

Only ``activity.defn``, ``workflow.defn``, ``workflow.run``, ``workflow.signal``,
``workflow.execute_activity``, ``workflow.sleep`` and ``workflow.wait_condition``
are used, so swapping the ``cadenza`` imports for ``temporalio`` runs the same
definitions against a Temporal server: ``_temporal.py`` compiles this file again
with that one swap, so ``from cadenza import activity, workflow`` must stay the
only import from Cadenza here.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from cadenza import activity, workflow

__all__ = [
    "FAN_OUT",
    "SIGNALS",
    "STEPS",
    "CachedWorkflow",
    "EchoWorkflow",
    "FanOutWorkflow",
    "SignalsWorkflow",
    "SleepWorkflow",
    "TenStepsWorkflow",
    "echo",
]

STEPS = 10
"""Sequential activities of ``ten-steps``."""
FAN_OUT = 100
"""Parallel activities of ``fan-out``."""
SIGNALS = 10
"""Signals ``signals`` waits for."""

_TIMEOUT = timedelta(seconds=60)


@activity.defn
async def echo(value: str) -> str:
    """Return the input: the activity costs nothing, so the figures measure the platform."""
    return value


@workflow.defn
class EchoWorkflow:
    """``one-activity``: one activity that returns its input."""

    @workflow.run
    async def run(self, value: str) -> str:
        return await workflow.execute_activity(echo, value, start_to_close_timeout=_TIMEOUT)


@workflow.defn
class TenStepsWorkflow:
    """``ten-steps``: ten sequential activities."""

    @workflow.run
    async def run(self, value: str) -> str:
        for _ in range(STEPS):
            value = await workflow.execute_activity(echo, value, start_to_close_timeout=_TIMEOUT)
        return value


@workflow.defn
class FanOutWorkflow:
    """``fan-out``: one hundred activities in parallel, gathered."""

    @workflow.run
    async def run(self, value: str) -> int:
        results = await asyncio.gather(
            *(
                workflow.execute_activity(echo, f"{value}-{i}", start_to_close_timeout=_TIMEOUT)
                for i in range(FAN_OUT)
            )
        )
        return len(results)


@workflow.defn
class SignalsWorkflow:
    """``signals``: waits until the client has sent ten signals."""

    def __init__(self) -> None:
        self.received = 0

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.received >= SIGNALS)
        return self.received

    @workflow.signal
    def poke(self) -> None:
        self.received += 1


@workflow.defn
class SleepWorkflow:
    """``timers``: one durable timer of the given number of seconds."""

    @workflow.run
    async def run(self, seconds: float) -> float:
        await workflow.sleep(seconds)
        return seconds


@workflow.defn
class CachedWorkflow:
    """``cached``: runs its first workflow task, then waits for ``finish``.

    Between the two the run stays in the worker's cache: what ``cached`` measures
    is the memory such a waiting run costs the worker.
    """

    def __init__(self) -> None:
        self.finished = False

    @workflow.run
    async def run(self, value: str) -> str:
        await workflow.wait_condition(lambda: self.finished)
        return value

    @workflow.signal
    def finish(self) -> None:
        self.finished = True
