"""The worker's default threads for workflow code (``LoopThreads``), without Kafka."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from cadenza.worker._threads import LoopThreads


def test_results_and_exceptions_come_back_to_the_loop() -> None:
    pool = LoopThreads(2, "t_")

    def boom() -> int:
        raise ValueError("bad")

    async def main() -> tuple[int, str, str]:
        loop = asyncio.get_running_loop()
        value = await pool.submit(lambda: 21 * 2, loop)
        with pytest.raises(ValueError, match="bad"):
            await pool.submit(boom, loop)
        name = await pool.submit(lambda: threading.current_thread().name, loop)
        return value, name, threading.current_thread().name

    value, worker_thread, loop_thread = asyncio.run(main())
    pool.shutdown()
    assert value == 42
    assert worker_thread.startswith("t_") and worker_thread != loop_thread


def test_threads_start_as_needed_up_to_the_size() -> None:
    pool = LoopThreads(3, "t_")
    release = threading.Event()
    running = threading.Semaphore(0)

    def hold() -> str:
        running.release()
        release.wait(10)
        return threading.current_thread().name

    async def main() -> set[str]:
        loop = asyncio.get_running_loop()
        futures = [pool.submit(hold, loop) for _ in range(5)]
        for _ in range(3):  # three run at once, two wait for a thread
            await asyncio.to_thread(running.acquire, True, 10)
        assert not any(f.done() for f in futures)
        release.set()
        return set(await asyncio.gather(*futures))

    names = asyncio.run(main())
    pool.shutdown()
    assert names == {"t_0", "t_1", "t_2"}


def test_one_idle_thread_serves_work_one_after_another() -> None:
    pool = LoopThreads(4, "t_")

    async def main() -> set[str]:
        loop = asyncio.get_running_loop()
        names = set()
        for _ in range(20):
            names.add(await pool.submit(lambda: threading.current_thread().name, loop))
        return names

    assert len(asyncio.run(main())) == 1
    pool.shutdown()


def test_shutdown_drops_queued_work_and_refuses_more() -> None:
    pool = LoopThreads(1, "t_")
    release = threading.Event()
    started = threading.Event()

    def hold() -> None:
        started.set()
        release.wait(10)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        running = pool.submit(hold, loop)
        await asyncio.to_thread(started.wait, 10)
        queued = pool.submit(lambda: None, loop)
        pool.shutdown(wait=False)
        release.set()
        await running
        await asyncio.sleep(0.05)
        assert queued.cancelled()
        with pytest.raises(RuntimeError, match="shut down"):
            pool.submit(lambda: None, loop)

    asyncio.run(main())


def test_results_that_finish_together_wake_the_loop_once() -> None:
    pool = LoopThreads(4, "t_")
    finished = threading.Semaphore(0)

    def job(n: int) -> int:
        finished.release()
        return n * n

    async def main() -> tuple[list[int], int]:
        loop = asyncio.get_running_loop()
        wakes = 0
        call_soon_threadsafe = loop.call_soon_threadsafe

        def counting(*args: object) -> object:
            nonlocal wakes
            wakes += 1
            return call_soon_threadsafe(*args)  # type: ignore[arg-type]

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        futures = [pool.submit(lambda n=n: job(n), loop) for n in range(8)]
        for _ in range(8):  # the loop is busy while every job finishes
            assert finished.acquire(timeout=10)
        # A job signals just before it returns: give the last results the time to be
        # handed over while the loop is still busy (a slow machine needed it).
        time.sleep(0.2)
        results = await asyncio.gather(*futures)
        return results, wakes

    results, wakes = asyncio.run(main())
    pool.shutdown()
    assert results == [n * n for n in range(8)]
    assert wakes <= 2, f"{wakes} wake-ups for 8 results that finished while the loop was busy"


def test_a_burst_of_short_work_keeps_to_two_threads() -> None:
    # Workflow code holds the GIL: a thread per queued activation only adds hand-offs.
    pool = LoopThreads(100, "t_", stuck_after=5.0)

    async def main() -> set[str]:
        loop = asyncio.get_running_loop()
        futures = [pool.submit(lambda: threading.current_thread().name, loop) for _ in range(200)]
        return set(await asyncio.gather(*futures))

    names = asyncio.run(main())
    pool.shutdown()
    assert names <= {"t_0", "t_1"} and pool.threads == LoopThreads.EAGER_THREADS


def test_work_behind_stuck_threads_gets_a_thread_without_more_submits() -> None:
    # Two threads blocked for good (a deadlocked workflow keeps its thread): the work
    # queued behind them must still run, though nothing else is submitted.
    pool = LoopThreads(4, "t_", stuck_after=0.05)
    release = threading.Event()
    running = threading.Semaphore(0)

    def hold() -> None:
        running.release()
        release.wait(10)

    async def main() -> str:
        loop = asyncio.get_running_loop()
        held = [pool.submit(hold, loop) for _ in range(2)]
        for _ in range(2):
            await asyncio.to_thread(running.acquire, True, 10)
        name = await asyncio.wait_for(pool.submit(lambda: threading.current_thread().name, loop), 5)
        assert not any(f.done() for f in held)
        release.set()
        await asyncio.gather(*held)
        return name

    assert asyncio.run(main()) == "t_2"
    pool.shutdown()
    assert pool.threads == 3
