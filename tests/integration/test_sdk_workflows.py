"""Workflow behaviour end to end (client -> engine -> worker on the real broker): updates
and their validators, a durable timer across a worker restart, and a saga."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from cadenza import Settings, activity, workflow
from cadenza.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from cadenza.exceptions import ActivityError, ApplicationError
from cadenza.worker import Worker

from .sdk_support import event_names, run_scenario, wait_for_event

QUEUE = "sdk-workflows"

COMPENSATIONS: list[str] = []
"""The saga's compensations, in the order they ran."""


# -- update --------------------------------------------------------------------------------


@workflow.defn
class Cart:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.checked_out = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.checked_out)
        return self.items

    @workflow.update
    def add(self, item: str) -> int:
        self.items.append(item)
        return len(self.items)

    @add.validator
    def validate_add(self, item: str) -> None:
        if not item:
            raise ValueError("an item needs a name")
        if item in self.items:
            raise ApplicationError(f"{item} is already in the cart", type="Duplicate")

    @workflow.signal
    def checkout(self) -> None:
        self.checked_out = True


def test_update_validator_rejects_and_accepted_update_returns(
    settings: Settings, tmp_path: Path
) -> None:
    async def scenario(client: Client) -> None:
        async with Worker(client, task_queue=QUEUE, workflows=[Cart]):
            handle = await client.start_workflow(Cart.run, id="cart", task_queue=QUEUE)
            assert await handle.execute_update(Cart.add, "apple") == 1

            with pytest.raises(WorkflowUpdateFailedError) as rejected:
                await handle.execute_update(Cart.add, "")
            cause = rejected.value.cause
            assert isinstance(cause, ApplicationError), repr(cause)
            assert cause.type == "ValueError" and cause.message == "an item needs a name"

            with pytest.raises(WorkflowUpdateFailedError) as duplicate:
                await handle.execute_update(Cart.add, "apple")
            cause = duplicate.value.cause
            assert isinstance(cause, ApplicationError) and cause.type == "Duplicate", repr(cause)

            assert await handle.execute_update(Cart.add, "pear") == 2
            await handle.signal(Cart.checkout)
            assert await handle.result() == ["apple", "pear"]
            names = await event_names(handle)
        # Only the two accepted updates ran their handler.
        assert names.count("WorkflowExecutionUpdateAccepted") == 2
        assert names.count("WorkflowExecutionUpdateCompleted") == 2

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])


# -- durable sleep -------------------------------------------------------------------------


@workflow.defn
class Sleeper:
    @workflow.run
    async def run(self) -> float:
        began = workflow.now()
        await workflow.sleep(2)
        return (workflow.now() - began).total_seconds()


def test_durable_sleep_survives_a_worker_restart(settings: Settings, tmp_path: Path) -> None:
    async def scenario(client: Client) -> None:
        first = Worker(client, task_queue=QUEUE, workflows=[Sleeper])
        async with first:
            began = time.monotonic()
            handle = await client.start_workflow(Sleeper.run, id="sleeper", task_queue=QUEUE)
            await wait_for_event(handle, "TimerStarted", timeout=5)
        assert first.is_shutdown
        names = await event_names(handle)
        assert "TimerStarted" in names and "TimerFired" not in names, (
            f"the first worker must stop while the workflow sleeps: {names}"
        )
        # A new worker (a new process, as far as the workflow can tell: no cached instance).
        async with Worker(client, task_queue=QUEUE, workflows=[Sleeper]):
            slept = await handle.result()
        elapsed = time.monotonic() - began
        assert slept >= 2.0, f"workflow time advanced {slept}s over a 2 s sleep"
        assert 2.0 <= elapsed < 8, f"the workflow took {elapsed:.2f}s"
        names = await event_names(handle)
        assert names.count("TimerStarted") == 1 and names.count("TimerFired") == 1
        assert names[-1] == "WorkflowExecutionCompleted"

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])


# -- saga ----------------------------------------------------------------------------------


@activity.defn
async def book(step: int) -> str:
    if step == 4:
        raise ApplicationError(f"step {step} cannot be booked", type="SoldOut", non_retryable=True)
    return f"booked {step}"


@activity.defn
async def unbook(step: int) -> None:
    COMPENSATIONS.append(f"unbook {step}")


@workflow.defn
class Trip:
    @workflow.run
    async def run(self) -> list[str]:
        booked: list[int] = []
        results: list[str] = []
        try:
            for step in (1, 2, 3, 4):
                results.append(
                    await workflow.execute_activity(
                        book, step, start_to_close_timeout=timedelta(seconds=5)
                    )
                )
                booked.append(step)
        except ActivityError as err:
            for step in reversed(booked):
                await workflow.execute_activity(
                    unbook, step, start_to_close_timeout=timedelta(seconds=5)
                )
            raise ApplicationError(
                f"trip rolled back after {len(booked)} bookings", type="RolledBack"
            ) from err
        return results


def test_saga_compensates_in_reverse_order(settings: Settings, tmp_path: Path) -> None:
    COMPENSATIONS.clear()

    async def scenario(client: Client) -> None:
        async with Worker(client, task_queue=QUEUE, workflows=[Trip], activities=[book, unbook]):
            with pytest.raises(WorkflowFailureError) as failed:
                await client.execute_workflow(Trip.run, id="trip", task_queue=QUEUE)
        error = failed.value.cause
        assert isinstance(error, ApplicationError), repr(error)
        assert error.type == "RolledBack" and error.message == "trip rolled back after 3 bookings"
        assert isinstance(error.cause, ActivityError), repr(error.cause)
        assert isinstance(error.cause.cause, ApplicationError)
        assert error.cause.cause.type == "SoldOut"
        assert COMPENSATIONS == ["unbook 3", "unbook 2", "unbook 1"]

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])
