"""Async activity completion end to end (client -> engine -> worker on the real broker):
an activity calls ``activity.raise_complete_async()`` and another party completes,
fails or heartbeats it through ``client.get_async_activity_handle``, by task token or
by ids, as with temporalio."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from cadenza import Settings, activity, workflow
from cadenza.client import (
    AsyncActivityCancelledError,
    CadenzaServiceError,
    Client,
    WorkflowFailureError,
)
from cadenza.common import RetryPolicy
from cadenza.exceptions import ActivityError, ApplicationError
from cadenza.worker import Worker

from .sdk_support import run_scenario

QUEUE = "sdk-async-activities"
TOKENS: dict[str, asyncio.Queue[bytes]] = {}


@activity.defn
async def ask_a_human(question: str) -> str:
    info = activity.info()
    TOKENS[info.workflow_id or ""].put_nowait(info.task_token)
    activity.raise_complete_async()


@workflow.defn
class Asks:
    @workflow.run
    async def run(self, question: str) -> str:
        answer: str = await workflow.execute_activity(
            ask_a_human,
            question,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=1),
            activity_id="ask",
        )
        return answer


def worker(client: Client) -> Worker:
    return Worker(client, task_queue=QUEUE, workflows=[Asks], activities=[ask_a_human])


async def _started(client: Client, workflow_id: str) -> tuple[object, bytes]:
    TOKENS[workflow_id] = asyncio.Queue()
    handle = await client.start_workflow(Asks.run, "ok?", id=workflow_id, task_queue=QUEUE)
    token = await asyncio.wait_for(TOKENS[workflow_id].get(), 20)
    return handle, token


def test_an_activity_completed_by_task_token_and_by_ids(settings: Settings, tmp_path: Path) -> None:
    async def scenario(client: Client) -> None:
        async with worker(client):
            handle, token = await _started(client, "by-token")
            by_token = client.get_async_activity_handle(task_token=token)
            await by_token.heartbeat("thinking")
            await by_token.complete("yes")
            assert await handle.result() == "yes"  # type: ignore[attr-defined]
            # The attempt is over: a second answer is refused, and says why.
            with pytest.raises(CadenzaServiceError, match="NOT_FOUND.*no pending attempt"):
                await by_token.complete("again")
            with pytest.raises(AsyncActivityCancelledError):
                await by_token.heartbeat()

            handle, _ = await _started(client, "by-ids")
            by_ids = client.get_async_activity_handle(workflow_id="by-ids", activity_id="ask")
            await by_ids.complete("by id")
            assert await handle.result() == "by id"  # type: ignore[attr-defined]

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])


def test_an_activity_failed_from_outside(settings: Settings, tmp_path: Path) -> None:
    async def scenario(client: Client) -> None:
        async with worker(client):
            handle, token = await _started(client, "failed")
            await client.get_async_activity_handle(task_token=token).fail(
                ApplicationError("the human said no", type="Refused")
            )
            with pytest.raises(WorkflowFailureError) as failed:
                await handle.result()  # type: ignore[attr-defined]
            cause = failed.value.cause
            assert isinstance(cause, ActivityError), cause
            assert isinstance(cause.cause, ApplicationError) and cause.cause.type == "Refused"

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])


def test_a_handle_needs_a_token_or_ids(settings: Settings, tmp_path: Path) -> None:
    async def scenario(client: Client) -> None:
        with pytest.raises(ValueError, match="task_token, or workflow_id and activity_id"):
            client.get_async_activity_handle(workflow_id="w")
        with pytest.raises(ValueError, match="not both"):
            client.get_async_activity_handle(task_token=b"{}", activity_id="a")
        with pytest.raises(ValueError):
            client.get_async_activity_handle(task_token=b"not a token")

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])
