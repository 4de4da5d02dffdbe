"""The quick start's sample workflow: one activity, one durable timer, one signal."""

from __future__ import annotations

from datetime import timedelta

from cadenza import activity, workflow


@activity.defn
async def compose_greeting(name: str) -> str:
    """An activity: anything that talks to the outside world goes here."""
    return f"Hello, {name}!"


@workflow.defn
class GreetingWorkflow:
    """Greets, waits (durably) for an approval signal, and returns the greeting."""

    def __init__(self) -> None:
        self.approved = False

    @workflow.run
    async def run(self, name: str) -> str:
        greeting = await workflow.execute_activity(
            compose_greeting, name, start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.sleep(timedelta(milliseconds=500))
        await workflow.wait_condition(lambda: self.approved, timeout=timedelta(minutes=5))
        return greeting

    @workflow.signal
    def approve(self) -> None:
        self.approved = True
