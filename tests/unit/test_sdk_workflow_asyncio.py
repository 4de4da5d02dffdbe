"""workflow.wait and workflow.as_completed: asyncio's semantics, the caller's order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cadenza import workflow


async def finish_after(ticks: int, value: Any, *, fail: bool = False) -> Any:
    for _ in range(ticks):
        await asyncio.sleep(0)
    if fail:
        raise ValueError(value)
    return value


def test_wait_all_keeps_the_given_order() -> None:
    async def main() -> None:
        tasks = [asyncio.create_task(finish_after(n, n)) for n in (3, 1, 2)]
        done, pending = await workflow.wait(tasks)
        assert done == tasks and pending == []

    asyncio.run(main())


def test_wait_first_completed_and_first_exception() -> None:
    async def main() -> None:
        slow = asyncio.create_task(finish_after(50, "slow"))
        fast = asyncio.create_task(finish_after(1, "fast"))
        done, pending = await workflow.wait([slow, fast], return_when=asyncio.FIRST_COMPLETED)
        assert done == [fast] and pending == [slow]

        boom = asyncio.create_task(finish_after(2, "boom", fail=True))
        later = asyncio.create_task(finish_after(100, "later"))
        done, pending = await workflow.wait([later, boom], return_when=asyncio.FIRST_EXCEPTION)
        assert done == [boom] and pending == [later]
        with pytest.raises(ValueError):
            boom.result()
        await workflow.wait([slow, later])

    asyncio.run(main())


def test_wait_timeout_and_already_done() -> None:
    async def main() -> None:
        never = asyncio.get_running_loop().create_future()
        done, pending = await workflow.wait([never], timeout=0.01)
        assert (done, pending) == ([], [never])
        finished = asyncio.get_running_loop().create_future()
        finished.set_result(1)
        assert await workflow.wait([finished, never], return_when=asyncio.FIRST_COMPLETED) == (
            [finished],
            [never],
        )
        never.cancel()

    asyncio.run(main())


def test_wait_rejects_what_asyncio_rejects() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="empty"):
            await workflow.wait([])
        with pytest.raises(ValueError, match="Invalid return_when"):
            await workflow.wait([asyncio.get_running_loop().create_future()], return_when="SOON")
        coro = finish_after(0, 1)
        with pytest.raises(TypeError, match="not coroutines"):
            await workflow.wait([coro])  # type: ignore[type-var]
        coro.close()

    asyncio.run(main())


def test_as_completed_yields_in_completion_order() -> None:
    async def main() -> list[Any]:
        aws = [finish_after(5, "c"), finish_after(1, "a"), finish_after(3, "b")]
        return [await next_result for next_result in workflow.as_completed(aws)]

    assert asyncio.run(main()) == ["a", "b", "c"]


def test_as_completed_ties_follow_the_given_order() -> None:
    async def main() -> list[Any]:
        aws = [finish_after(2, n) for n in range(5)]
        return [await r for r in workflow.as_completed(aws)]

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]


def test_as_completed_timeout() -> None:
    async def main() -> None:
        never = asyncio.get_running_loop().create_future()
        results = workflow.as_completed([finish_after(1, "quick"), never], timeout=0.01)
        assert await next(results) == "quick"
        with pytest.raises(asyncio.TimeoutError):
            await next(results)
        never.cancel()

    asyncio.run(main())
