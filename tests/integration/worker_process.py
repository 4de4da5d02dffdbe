"""A worker in a process of its own, for tests that kill it with SIGKILL::

    python -m tests.integration.worker_process --bootstrap-servers HOST:PORT \
        --namespace NS --partitions 4 --task-queue QUEUE

It prints ``ready`` once its worker has joined the task queue's consumer groups,
then runs until killed. With ``--eager-start-and-die WORKFLOW_ID`` it starts a
workflow eagerly on its own worker, whose code kills the process in its first
task. The workflow and activity it serves are defined here so the test process
can start the same workflow by its class.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from cadenza import Settings, activity, workflow
from cadenza.client import Client
from cadenza.common import RetryPolicy
from cadenza.worker import Worker

SLOW_STEP_SECONDS = 1.5


@activity.defn
async def slow_step(marker: str) -> str:
    """Appends ``start <pid> <attempt>`` and ``done <pid> <attempt>`` lines to ``marker``."""
    attempt = activity.info().attempt
    with open(marker, "a") as out:
        out.write(f"start {os.getpid()} {attempt}\n")
    await asyncio.sleep(SLOW_STEP_SECONDS)
    with open(marker, "a") as out:
        out.write(f"done {os.getpid()} {attempt}\n")
    return f"done by {os.getpid()} on attempt {attempt}"


@workflow.defn
class CrashProof:
    @workflow.run
    async def run(self, marker: str) -> str:
        return await workflow.execute_activity(
            slow_step,
            marker,
            start_to_close_timeout=timedelta(seconds=3),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )


@workflow.defn(name="EagerStarted")
class DiesOnFirstTask:
    """Kills its own process (SIGKILL) in its first workflow task."""

    @workflow.run
    async def run(self, name: str) -> str:
        os.kill(os.getpid(), signal.SIGKILL)
        return name


async def start_eagerly_and_die(settings: Settings, task_queue: str, workflow_id: str) -> None:
    """Start ``EagerStarted`` eagerly on this process's own worker, which dies in the task."""
    client = await Client.connect(settings=settings)
    async with Worker(client, task_queue=task_queue, workflows=[DiesOnFirstTask]):
        print("ready", flush=True)
        await client.start_workflow(
            DiesOnFirstTask.run,
            "eager",
            id=workflow_id,
            task_queue=task_queue,
            task_timeout=timedelta(seconds=2),
            request_eager_start=True,
        )
        await asyncio.Event().wait()


async def serve(settings: Settings, task_queue: str) -> None:
    client = await Client.connect(settings=settings)
    async with Worker(
        client, task_queue=task_queue, workflows=[CrashProof], activities=[slow_step]
    ):
        print("ready", flush=True)
        await asyncio.Event().wait()


def spawn(settings: Settings, task_queue: str, log: Path, *extra: str) -> subprocess.Popen[str]:
    """Run this module in a process of its own on ``settings``' broker and namespace
    (``extra``: more arguments); its stdout is a pipe, its stderr goes to ``log``."""
    with log.open("w") as stderr:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.worker_process",
                "--bootstrap-servers",
                settings.resolved_bootstrap_servers,
                "--namespace",
                settings.namespace,
                "--partitions",
                str(settings.partitions),
                "--task-queue",
                task_queue,
                *extra,
            ],
            cwd=Path(__file__).resolve().parents[2],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--task-queue", required=True)
    parser.add_argument(
        "--eager-start-and-die",
        metavar="WORKFLOW_ID",
        help="start EagerStarted eagerly and die in its first task instead of serving",
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env(
        bootstrap_servers=args.bootstrap_servers,
        namespace=args.namespace,
        partitions=args.partitions,
    )
    if args.eager_start_and_die:
        asyncio.run(start_eagerly_and_die(settings, args.task_queue, args.eager_start_and_die))
    else:
        asyncio.run(serve(settings, args.task_queue))


if __name__ == "__main__":
    main(sys.argv[1:])
