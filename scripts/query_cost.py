"""How long a query takes on a workflow with a long history.

A workflow runs ``--steps`` activities one after another (about four history
events each), then waits; the script then sends ``--queries`` queries, one at a
time, and prints their latency. Runs on the local broker (or
``CADENZA_BOOTSTRAP_SERVERS``) in a namespace of its own, deleted at the end.

    python scripts/query_cost.py --steps 500 --queries 30
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import timedelta

from cadenza import activity, workflow
from cadenza.testing import WorkflowEnvironment
from cadenza.worker import Worker


@activity.defn
async def step(n: int) -> int:
    return n


@workflow.defn
class LongHistory:
    def __init__(self) -> None:
        self.done = 0
        self.finish = False

    @workflow.run
    async def run(self, steps: int) -> int:
        for n in range(steps):
            self.done = await workflow.execute_activity(
                step, n + 1, start_to_close_timeout=timedelta(seconds=30)
            )
        await workflow.wait_condition(lambda: self.finish)
        return self.done

    @workflow.query
    def progress(self) -> int:
        return self.done

    @workflow.signal
    def stop(self) -> None:
        self.finish = True


async def main(steps: int, queries: int) -> None:
    env = await WorkflowEnvironment.start_local()
    try:
        async with Worker(
            env.client, task_queue="query-cost", workflows=[LongHistory], activities=[step]
        ):
            handle = await env.client.start_workflow(
                LongHistory.run, steps, id="long-history", task_queue="query-cost"
            )
            began = time.monotonic()
            while await handle.query(LongHistory.progress) < steps:
                await asyncio.sleep(0.2)
            print(f"{steps} steps in {time.monotonic() - began:.1f} s", flush=True)
            await asyncio.sleep(1.0)  # the last task's completion recorded
            events = len((await handle.fetch_history()).events)
            latencies = []
            for _ in range(queries):
                t0 = time.perf_counter()
                assert await handle.query(LongHistory.progress) == steps
                latencies.append((time.perf_counter() - t0) * 1000)
            latencies.sort()
            p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
            print(
                f"history {events} events; {queries} queries: p50 {p(0.5):.1f} ms, "
                f"p90 {p(0.9):.1f} ms, max {latencies[-1]:.1f} ms, "
                f"mean {statistics.mean(latencies):.1f} ms"
            )
            await handle.signal(LongHistory.stop)
            assert await handle.result() == steps
    finally:
        await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--queries", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.steps, args.queries))
