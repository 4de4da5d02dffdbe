"""``StartedWords``: a worker's word that a task started, sent only if it still runs."""

from __future__ import annotations

import asyncio

import pytest

from cadenza.worker._started import StartedWords


def test_a_word_is_sent_only_for_a_task_that_still_runs() -> None:
    sent: list[str] = []

    async def send(name: str) -> None:
        sent.append(name)

    async def main() -> None:
        words = StartedWords("task")
        short = words.later(0.05, lambda: send("short"))
        long = words.later(0.05, lambda: send("long"))
        words.cancel(short)  # answered before its word was due
        await asyncio.sleep(0.15)
        assert long is not None and sent == ["long"]
        words.cancel(long)  # after it fired: nothing happens
        waiting = words.later(0.05, lambda: send("dropped"))
        assert waiting is not None
        words.stop()  # the worker shuts down: no more words
        assert words.later(0.01, lambda: send("after stop")) is None
        await asyncio.sleep(0.1)

    asyncio.run(main())
    assert sent == ["long"]


def test_a_word_that_cannot_be_sent_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fail() -> None:
        raise RuntimeError("Kafka is away")

    async def main() -> None:
        words = StartedWords("workflow task")
        words.later(0.01, fail)
        await asyncio.sleep(0.1)

    with caplog.at_level("WARNING", logger="cadenza.worker"):
        asyncio.run(main())
    assert "The start of a workflow task was not recorded: Kafka is away" in caplog.text
