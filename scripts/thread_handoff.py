"""What handing a workflow activation to a thread costs, against running it inline.

    .venv/bin/python scripts/thread_handoff.py [--calls 20000]

The worker runs workflow code on its own threads (``LoopThreads``,
``sdk/worker/_threads.py``) so that a workflow that blocks cannot stall the
event loop, and so the deadlock detector can see it. This times a small piece of
Python (about 10 us, the size of a one-activity workflow's activation) run
``--calls`` times, from 1 and from 200 concurrent asyncio tasks, either inline
on the event loop, through ``LoopThreads``, or through the workflow worker's
``_in_thread`` (``LoopThreads`` and the deadlock detector's watch, as every
activation runs), and prints the process's CPU and wall microseconds per call.
The difference between the first two is the hand-off: the queue, the thread's
wake-up, the GIL moving twice, and the result's way back to the loop; the
third adds the deadlock watch. No broker needed. BENCHMARKS.md, entries 38 and
41, have its figures.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from types import SimpleNamespace
from typing import Any

from cadenza import Settings
from cadenza.converter import DataConverter
from cadenza.worker._threads import LoopThreads
from cadenza.worker._workflow_worker import WorkflowWorker


def _activation() -> int:
    total = 0
    for i in range(200):
        total += i
    return total


def _worker(pool: LoopThreads) -> WorkflowWorker:
    """A workflow worker with nothing to consume: only its ``_in_thread`` is called."""
    client: Any = SimpleNamespace(
        settings=Settings.defaults(),
        transport=None,
        data_converter=DataConverter.default,
        namespace="handoff",
    )
    return WorkflowWorker(
        client=client,
        task_queue="handoff",
        workflows={},
        max_cached_workflows=1,
        max_concurrent_workflow_tasks=1,
        executor=pool,
        failure_exception_types=(),
        debug_mode=False,
        identity="handoff",
        build_id="",
        on_fatal=lambda exc: None,
    )


async def _run(concurrency: int, calls: int, mode: str) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    pool = LoopThreads(concurrency, "handoff")
    worker = _worker(pool)
    instance: Any = object()
    started = 0

    async def driver() -> None:
        nonlocal started
        while started < calls:
            started += 1
            if mode == "inline":
                _activation()
                await asyncio.sleep(0)
            elif mode == "thread":
                await pool.submit(_activation, loop)
            else:
                await worker._in_thread(_activation, 0, instance)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(driver() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    pool.shutdown()
    return cpu / calls * 1e6, wall / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    for concurrency in (1, 200):
        results = {}
        for mode in ("inline", "thread", "worker"):
            results[mode] = asyncio.run(_run(concurrency, args.calls, mode))
        (cpu_in, wall_in), (cpu_th, wall_th) = results["inline"], results["thread"]
        cpu_wk, wall_wk = results["worker"]
        print(
            f"{concurrency:3d} in flight: inline {cpu_in:5.1f} us CPU ({wall_in:5.1f} wall), "
            f"on a thread {cpu_th:5.1f} us CPU ({wall_th:5.1f} wall): "
            f"hand-off {cpu_th - cpu_in:5.1f} us CPU per call; through the worker "
            f"{cpu_wk:5.1f} us CPU ({wall_wk:5.1f} wall): deadlock watch "
            f"{cpu_wk - cpu_th:5.1f} us CPU per call"
        )


if __name__ == "__main__":
    main()
