"""The bench's progress line: completed, failed and in-flight counts and the p50 of
the measured window, warm-up samples and out-of-order completions included."""

from __future__ import annotations

import asyncio
import re

from cadenza.bench import BenchOptions
from cadenza.bench._harness import LoadRun, _Sample


def _figures(line: str) -> dict[str, float]:
    pairs = re.findall(r"(completed|failed|in flight|rate)\s+([\d.]+)", line)
    figures = {name: float(value) for name, value in pairs}
    p50 = re.search(r"p50\s+([\d.]+) ms", line)
    figures["p50"] = float(p50.group(1)) if p50 else -1.0
    return figures


def test_the_progress_line_counts_every_sample_once() -> None:
    lines: list[str] = []
    run = LoadRun(BenchOptions("one-activity", concurrency=4), lines.append)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        run.t0, run.window = now - 10, (now - 5, now + 30)
        start = now - 5
        warm = _Sample("warm", start - 1, done=start - 0.5)  # before the window
        ok = [_Sample(f"ok{i}", start + i, done=start + i + 0.010) for i in range(3)]
        failed = _Sample("failed", start + 3, done=start + 3.5, error="boom")
        flying = _Sample("flying", start + 4)
        early = _Sample("early", start + 4.1, done=start + 4.120)  # done before `flying`
        run.samples.extend([warm, *ok, failed, flying, early])
        progress = asyncio.create_task(run.show_progress())
        await asyncio.sleep(1.2)
        flying.done = start + 4.030
        late = _Sample("late", start + 5)
        run.samples.append(late)
        await asyncio.sleep(1.0)
        progress.cancel()

    asyncio.run(main())
    first, second = (_figures(line) for line in lines[:2])
    assert (first["completed"], first["failed"], first["in flight"]) == (4, 1, 1)
    assert (second["completed"], second["failed"], second["in flight"]) == (5, 1, 1)
    assert first["p50"] == 10.0  # of 10, 10, 10, 20 ms (nearest rank)
    assert second["p50"] == 10.0  # of 10, 10, 10, 30, 20 ms
