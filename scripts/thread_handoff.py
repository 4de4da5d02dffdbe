"""What handing a workflow activation to a thread costs, against running it inline.

    .venv/bin/python scripts/thread_handoff.py [--calls 20000]

The worker runs workflow code on its own threads (``LoopThreads``,
``sdk/worker/_threads.py``) so that a workflow that blocks cannot stall the
event loop, and so the deadlock detector can see it. This times a small piece of
Python (about 10 us, the size of a one-activity workflow's activation) run
``--calls`` times, from 1 and from 200 concurrent asyncio tasks, either inline
on the event loop or through ``LoopThreads``, and prints the process's CPU and
wall microseconds per call. The difference is the hand-off: the queue, the
thread's wake-up, the GIL moving twice, and the result's way back to the loop.
No broker needed. BENCHMARKS.md, entry 38, has its figures.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from cadenza.worker._threads import LoopThreads


def _activation() -> int:
    total = 0
    for i in range(200):
        total += i
    return total


async def _run(concurrency: int, calls: int, inline: bool) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    pool = LoopThreads(concurrency, "handoff")
    started = 0

    async def driver() -> None:
        nonlocal started
        while started < calls:
            started += 1
            if inline:
                _activation()
                await asyncio.sleep(0)
            else:
                await pool.submit(_activation, loop)

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
        for inline in (True, False):
            results[inline] = asyncio.run(_run(concurrency, args.calls, inline))
        (cpu_in, wall_in), (cpu_th, wall_th) = results[True], results[False]
        print(
            f"{concurrency:3d} in flight: inline {cpu_in:5.1f} us CPU ({wall_in:5.1f} wall), "
            f"on a thread {cpu_th:5.1f} us CPU ({wall_th:5.1f} wall): "
            f"hand-off {cpu_th - cpu_in:5.1f} us CPU per call"
        )


if __name__ == "__main__":
    main()
