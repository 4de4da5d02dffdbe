"""A bench worker in a process of its own: ``cached``'s (so that its RSS is the worker's
alone), and the client-driven workloads' with ``--worker-processes``.

``python -m cadenza.bench._worker_proc --task-queue Q --max-cached N``, with the
namespace and bootstrap servers from the environment (``CADENZA_*``, as the
engine process gets them), runs one :class:`~cadenza.worker.Worker` with every
workload of :mod:`._workloads` and writes a JSON line to stdout every
``--report-every`` seconds: ``{"cached": <runs in the workflow cache>,
"misses": <sticky cache misses>}``. SIGTERM or SIGINT shut it down cleanly.

Nothing else runs in it (no load generator, no client calls beyond the worker's
own), so its memory and CPU are the worker's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence

from cadenza._settings import Settings
from cadenza.client import Client
from cadenza.worker import Worker

from . import _workloads as w

__all__ = ["WORKFLOWS", "main"]

WORKFLOWS: tuple[type, ...] = (
    w.EchoWorkflow,
    w.TenStepsWorkflow,
    w.FanOutWorkflow,
    w.SignalsWorkflow,
    w.SleepWorkflow,
    w.CachedWorkflow,
)
"""Every workload's workflow class (the bench's readiness check runs ``EchoWorkflow``)."""


def _report(worker: Worker) -> None:
    part = worker._workflow_worker
    line = {
        "cached": len(part.cache) if part is not None else 0,
        "misses": part.sticky_cache_misses if part is not None else 0,
    }
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


async def _serve(
    task_queue: str, max_cached: int, every: float, slots: int | None, eager_activities: bool
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    client = await Client.connect(settings=Settings.from_env())
    try:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=WORKFLOWS,
            activities=[w.echo],
            max_cached_workflows=max_cached,
            disable_eager_activity_execution=not eager_activities,
            max_concurrent_workflow_tasks=slots,
            max_concurrent_activities=slots,
        ) as worker:
            while not stop.is_set():
                _report(worker)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every)
            _report(worker)
    finally:
        await client.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the worker until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m cadenza.bench._worker_proc")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--max-cached", type=int, required=True)
    parser.add_argument("--report-every", type=float, default=0.1)
    parser.add_argument("--slots", type=int, default=None, help="workflow task and activity slots")
    parser.add_argument("--no-eager-activities", action="store_true")
    args = parser.parse_args(argv)
    asyncio.run(
        _serve(
            args.task_queue,
            args.max_cached,
            args.report_every,
            args.slots,
            not args.no_eager_activities,
        )
    )


if __name__ == "__main__":
    main()
