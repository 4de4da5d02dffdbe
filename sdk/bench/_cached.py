"""``cached``: a worker holding ``count`` waiting runs in its cache, and the memory that costs.

The worker runs as a process of its own (:mod:`._worker_proc`), so its RSS is the
worker's alone, not the load generator's. The run:

1. starts the engine and the worker process, runs one workflow end to end
   (the readiness check) and samples the worker's RSS: the *baseline*;
2. starts ``count`` ``CachedWorkflow`` runs (open loop at ``rate``, or closed:
   at most ``concurrency`` started and not yet cached) and waits until the
   worker reports all of them in its workflow cache (each ran its first
   workflow task and waits on ``wait_condition`` for a signal); then samples
   the RSS again: *cached*;
3. signals every run to finish and waits for its result, so the namespace is
   left with no open run, and samples the RSS a last time.

Per-workflow latency runs from the scheduled start to the engine's
``WorkflowTaskCompleted`` of the run's first task (read from ``history``; both
are wall-clock times of this machine).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

from cadenza._settings import Settings
from cadenza.client import Client
from cadenza.topics import TopicAdmin

from . import _workloads as w
from ._harness import (
    _QUEUE,
    BenchOptions,
    Progress,
    _Run,
    _Sample,
    read_history,
    wait_ready_with,
)
from ._procs import ProcSample
from ._workers import WorkerProcess

__all__ = ["DEFAULT_COUNT", "run_cached"]

DEFAULT_COUNT = 10_000
"""Runs ``cached`` keeps in the worker's cache when ``count`` is not given."""
_FINISH_CONCURRENCY = 100
"""Signal-and-wait-for-result calls in flight while finishing, without ``concurrency``."""
_SETTLE_SECONDS = 1.0


class CachedRun(_Run):
    """A ``cached`` run: the engine, the broker, and the worker in its own process."""

    fresh = ("engine", "worker")

    def __init__(self, settings: Settings, options: BenchOptions, progress: Progress | None):
        super().__init__(settings, options, progress)
        count = options.count if options.count is not None else DEFAULT_COUNT
        if count < 1:
            raise ValueError("cached needs a count of at least 1")
        self.count = count
        self.worker = WorkerProcess(
            settings, self.data_dir / "worker.log", _QUEUE, max_cached=count + 100
        )

    def snapshot(self) -> dict[str, ProcSample | None]:
        return {**super().snapshot(), "worker": self.worker.sample()}

    def pids(self) -> dict[str, int | None]:
        return {**super().pids(), "worker_pid": self.worker.pid}


def run_cached(
    settings: Settings, options: BenchOptions, progress: Progress | None
) -> dict[str, Any]:
    """Run ``cached`` in ``settings.namespace`` (its topics created) and return the report."""
    TopicAdmin(settings).create(task_queues=[_QUEUE])
    run = CachedRun(settings, options, progress)
    try:
        if run.engine is not None:
            run.engine.start()
        return asyncio.run(_cached(run))
    finally:
        if run.engine is not None:
            run.engine.stop()


def _mib(sample: ProcSample | None, peak: bool = False) -> float | None:
    if sample is None:
        return None
    return round(sample.peak_rss_mib if peak else sample.rss_mib, 1)


async def _cached(run: CachedRun) -> dict[str, Any]:
    worker = run.worker
    await worker.start()
    client = await Client.connect(settings=run.settings, rpc_timeout=timedelta(seconds=60))
    try:
        await wait_ready_with(run, client, worker)
        await _until_empty(worker, run.options.drain)  # the readiness runs completed
        await asyncio.sleep(_SETTLE_SECONDS)
        baseline = worker.sample()
        run.before = run.snapshot()
        cached_at, at_cached = await _start_and_cache(run, client)
        finish = await _finish(run, client)
        await _until_empty(worker, run.options.drain)
        await asyncio.sleep(_SETTLE_SECONDS)
        after = worker.sample()
        misses = worker.misses
        await worker.stop()
    finally:
        await client.close()
        await worker.stop()
    _latencies(run)
    # The worker caches a run just before it sends the task's completion: the engine
    # records the last WorkflowTaskCompleted a moment after the cache is full.
    done = [s.done for s in run.samples if s.done is not None]
    run.window = (run.t0, max([cached_at, *done]))
    report = run.report()
    per_kib = None
    if baseline is not None and at_cached is not None and run.extra["cached_workflows"]:
        grown = at_cached.rss_mib - baseline.rss_mib
        per_kib = round(grown * 1024 / run.extra["cached_workflows"], 1)
    report.update(
        {
            "worker_process": "own process",
            "worker_rss_mib": {
                "baseline": _mib(baseline),
                "cached": _mib(at_cached),
                "peak_at_cached": _mib(at_cached, peak=True),
                "after_finish": _mib(after),
                "peak": _mib(after, peak=True),
            },
            "rss_per_workflow_kib": per_kib,
            "sticky_cache_misses": misses,
            **finish,
        }
    )
    return report


async def _until_empty(worker: WorkerProcess, timeout: float) -> None:
    """Until the worker's cache is empty (every run it held has completed), or ``timeout``."""
    deadline = time.monotonic() + timeout
    while worker.cached and time.monotonic() < deadline:
        await worker.next_report()


async def _start_and_cache(run: CachedRun, client: Client) -> tuple[float, ProcSample | None]:
    """Start ``run.count`` runs and wait until the worker holds them all (or stalls)."""
    options = run.options
    worker = run.worker
    loop = asyncio.get_running_loop()
    prefix = uuid.uuid4().hex[:6]
    tasks: set[asyncio.Task[None]] = set()
    wall_offset = time.time() - loop.time()
    run.extra["_wall_offset"] = wall_offset

    async def start(sample: _Sample) -> None:
        try:
            await client.start_workflow(
                w.CachedWorkflow.run, sample.workflow_id, id=sample.workflow_id, task_queue=_QUEUE
            )
        except Exception as exc:
            sample.error = f"start: {type(exc).__name__}: {exc}"

    run.t0 = loop.time()
    last_show = run.t0
    started_all: float | None = None
    for i in range(run.count):
        if options.rate is not None:
            due = run.t0 + i / options.rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        else:
            # Closed loop: at most ``concurrency`` runs started and not yet cached.
            while i - worker.cached >= (options.concurrency or 1):
                await worker.next_report()
            due = loop.time()
        sample = _Sample(f"cached-{prefix}-{i}", due)
        run.samples.append(sample)
        task = asyncio.create_task(start(sample))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if run.progress is not None and loop.time() - last_show >= 1.0:
            last_show = loop.time()
            _show(run, i + 1)
    if tasks:
        await asyncio.wait(set(tasks))
    started_all = loop.time()
    run.extra["start_seconds"] = round(started_all - run.t0, 2)
    # Wait for the worker to cache them all; give up after ``drain`` s without progress.
    best, progressed = worker.cached, loop.time()
    while worker.cached < run.count and loop.time() - progressed < options.drain:
        await worker.next_report()
        if worker.cached > best:
            best, progressed = worker.cached, loop.time()
        if run.progress is not None and loop.time() - last_show >= 1.0:
            last_show = loop.time()
            _show(run, run.count)
    cached_at = loop.time()
    run.extra["cached_workflows"] = worker.cached
    run.extra["seconds_to_start_and_cache"] = round(cached_at - run.t0, 2)
    return cached_at, worker.sample()


def _show(run: CachedRun, started: int) -> None:
    assert run.progress is not None
    now = run.worker.sample()
    rss = f"{now.rss_mib:6.0f} MiB" if now is not None else "     - MiB"
    elapsed = asyncio.get_running_loop().time() - run.t0
    run.progress(
        f"[{elapsed:6.1f}s] started {started:6d} / {run.count}  cached {run.worker.cached:6d}"
        f"  worker rss {rss}"
    )


async def _finish(run: CachedRun, client: Client) -> dict[str, Any]:
    """Signal every started run to finish and wait for its result."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(run.options.concurrency or _FINISH_CONCURRENCY)
    results: dict[str, str | None] = {}

    async def finish(sample: _Sample) -> None:
        async with gate:
            handle = client.get_workflow_handle(sample.workflow_id)
            try:
                await handle.signal(w.CachedWorkflow.finish)
                got = await handle.result()
                results[sample.workflow_id] = (
                    None if got == sample.workflow_id else f"returned {got!r}"
                )
            except Exception as exc:
                results[sample.workflow_id] = f"finish: {type(exc).__name__}: {exc}"

    started = loop.time()
    pending = {asyncio.create_task(finish(s)) for s in run.samples if s.error is None}
    done_before, progressed = 0, loop.time()
    while pending and loop.time() - progressed < run.options.drain:
        _, pending = await asyncio.wait(pending, timeout=1.0)
        if len(results) > done_before:
            done_before, progressed = len(results), loop.time()
        if run.progress is not None:
            run.progress(
                f"[{loop.time() - started:6.1f}s] finishing: {len(results):6d} / "
                f"{len(run.samples)}  cached {run.worker.cached:6d}"
            )
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    for sample in run.samples:
        if sample.error is None:
            outcome = results.get(sample.workflow_id, "finish: no result in time")
            sample.error = outcome
    return {"finish_seconds": round(loop.time() - started, 2)}


def _latencies(run: CachedRun) -> None:
    """Each sample's ``done``: its first ``WorkflowTaskCompleted``, on the loop's clock."""
    offset = float(run.extra.pop("_wall_offset", 0.0))
    first: dict[str, float] = {}
    ids = {s.workflow_id for s in run.samples}
    for wid, events in read_history(run.settings).items():
        if wid not in ids:
            continue
        for event in events:
            if str(event["attributes"][0]).endswith("WorkflowTaskCompleted"):
                first[wid] = event["event_time_ms"] / 1000 - offset
                break
    for sample in run.samples:
        sample.done = first.get(sample.workflow_id)
        if sample.done is None and sample.error is None:
            sample.error = "its first workflow task did not complete"
